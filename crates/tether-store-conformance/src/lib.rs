//! The conformance suite of Tether's storage contract: the one set of cases every
//! [`Store`] backend must pass. A test kit: backends use it as a dev-dependency, so it is
//! never compiled into a release build.
//!
//! Each case is a public `async fn(store: &dyn Store)` that expects an **empty** store and
//! panics, with a message saying what went wrong, when the backend breaks the contract
//! written on [`WriteOp`](tether_store::WriteOp) and [`Store`]. A backend runs all of them, one test
//! per case and a fresh store per test, with [`conformance_tests!`](crate::conformance_tests)
//! in one of its integration tests:
//!
//! ```ignore
//! // crates/my-backend/tests/conformance.rs (needs `tokio` and `tether-store-conformance`
//! // as dev-dependencies)
//! tether_store_conformance::conformance_tests!(async { my_backend::MyStore::open("...").await.unwrap() });
//! ```
//!
//! The expression is evaluated once per test and yields either a store or a
//! [`Guarded`] store (a store plus something it needs to outlive, such as a temporary
//! directory). A backend that is only testable in some environments (a database server) puts
//! attributes before `store:`; they go on every generated test, so
//! `#[cfg_attr(not(tether_postgres), ignore = "needs PostgreSQL ...")]` makes cargo list each
//! case as ignored, with its reason, when there is no server (the rule is in
//! `tether-test-env`).
//!
//! The cases only use ids and tokens they create themselves, and every time they stamp is
//! relative to a fixed base, so their expectations never depend on the clock.

mod checkpoints;
mod children;
mod counts;
mod endings;
mod hook_expiry;
mod hook_idempotency;
mod hook_keep;
mod hook_resume;
mod hooks;
mod journal;
mod leases;
mod payloads;
mod queues;
mod retention;
mod runs;
mod schedules;
mod signal_keys;
mod support;
mod threads;

pub use checkpoints::*;
pub use children::*;
pub use counts::*;
pub use endings::*;
pub use hook_expiry::*;
pub use hook_idempotency::*;
pub use hook_keep::*;
pub use hook_resume::*;
pub use hooks::*;
pub use journal::*;
pub use leases::*;
pub use payloads::*;
pub use queues::*;
pub use retention::*;
pub use runs::*;
pub use schedules::*;
pub use signal_keys::*;
pub use threads::*;

use tether_store::Store;

/// What a conformance factory may produce: any [`Store`], or a [`Guarded`] one.
pub trait StoreUnderTest {
    /// The store to run a case against.
    fn store(&self) -> &dyn Store;
}

impl<S: Store> StoreUnderTest for S {
    fn store(&self) -> &dyn Store {
        self
    }
}

/// A store together with something that must live as long as it does: a temporary directory
/// holding its files, a handle that drops a test database, ... The store is dropped first.
#[derive(Debug)]
pub struct Guarded<S, G> {
    /// The store under test.
    pub store: S,
    /// Kept alive until the store has been dropped.
    pub guard: G,
}

impl<S: Store, G> StoreUnderTest for Guarded<S, G> {
    fn store(&self) -> &dyn Store {
        &self.store
    }
}

/// Generates one `#[tokio::test]` per conformance case, in a module named `conformance`, each
/// running against a fresh store.
///
/// ```ignore
/// tether_store_conformance::conformance_tests!(async { MyStore::open_temp().await.unwrap() });
/// // or, with attributes put on every generated test (here: ignored, with a reason, unless
/// // the package's build script set `tether_postgres`):
/// tether_store_conformance::conformance_tests!(
///     #[cfg_attr(not(tether_postgres), ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES")]
///     store: async { MyStore::from_env().await }
/// );
/// ```
///
/// The expression is awaited once per test. It yields a value implementing
/// [`StoreUnderTest`](crate::StoreUnderTest) (any `Store`, or a
/// [`Guarded`](crate::Guarded) store). There is no way to skip a case at run time: a case
/// that cannot run is ignored (cargo counts and names it), never passed. Items of the calling
/// module are in scope inside the expression. The calling crate needs `tokio` (with the
/// `macros` and `rt` features) as a dev-dependency, nothing else.
#[macro_export]
macro_rules! conformance_tests {
    ($(#[$attr:meta])+ store: $make:expr $(,)?) => {
        $crate::__conformance_cases! { [$(#[$attr])+] $make }
    };
    ($make:expr $(,)?) => {
        $crate::__conformance_cases! { [] $make }
    };
}

/// The list of conformance cases, passed to a test generator (not public API).
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($attrs:tt $make:expr) => {
        #[allow(unused_imports)]
        mod conformance {
            use super::*;

            $crate::__conformance_test! { $attrs $make;
                // runs
                create_run_then_read_it_back,
                duplicate_run_id_is_refused,
                list_runs_filters_newest_first_and_limits,
                list_runs_default_limit_and_cap,
                list_runs_cursor_breaks_ties_by_id,
                status_and_wake_at_updates,
                runs_needing_work_selects_due_runs_oldest_first,
                checkpoint_marks_the_applied_journal,
                unknown_run_is_refused,
                mark_blocked_sets_error_and_keeps_status,
                // journal
                append_assigns_dense_seq_and_returns_events,
                load_journal_after_seq,
                load_run_reads_the_run_and_its_journal,
                ops_in_one_batch_see_each_other,
                every_event_kind_round_trips,
                refused_op_does_not_stop_the_batch,
                completion_sets_output_releases_hooks_and_ends_the_run,
                failure_and_cancellation_set_error,
                request_cancel_appends_cancel_requested,
                // hooks
                hook_created_is_indexed_by_token,
                hook_conflict_across_runs_names_the_holder,
                hook_conflict_in_one_batch_has_one_winner,
                dispose_releases_the_token,
                dispose_with_wrong_hook_does_nothing,
                resume_unknown_token_is_refused_and_writes_nothing,
                resume_appends_hook_received_in_acceptance_order,
                resume_with_mismatched_expect_is_refused,
                idempotency_key_returns_first_answer,
                resume_after_run_finished_is_refused,
                resumes_around_a_run_ending_in_the_same_batch,
                used_idempotency_key_is_checked_before_the_hook,
                idempotency_key_with_the_same_payload_gets_the_first_answer,
                idempotency_key_with_another_payload_is_refused,
                // payloads kept for a token no hook holds yet
                kept_payloads_follow_the_hook_that_registers_their_token,
                a_kept_payloads_key_is_deduplicated,
                resume_or_keep_to_an_active_hook_resumes,
                an_expiry_releases_the_token_and_refuses_later_resumes,
                a_reserved_token_refuses_other_runs_until_the_reservation_ends,
                retention_removes_old_token_ends,
                // leases
                claims_fence_off_older_claims,
                a_run_created_claimed_is_running_and_owned,
                a_resume_names_the_live_lease_holder,
                a_resume_claims_a_run_nobody_holds,
                live_leases_are_respected_and_expired_ones_taken_over,
                release_needs_the_current_fence,
                renew_extends_only_the_nodes_own_leases,
                runs_needing_work_leave_out_runs_leased_elsewhere,
                finished_runs_have_no_owner_and_cannot_be_claimed,
                // task queues
                a_node_never_gets_runs_of_a_queue_it_does_not_serve,
                a_concurrency_limit_refuses_admissions_until_a_run_ends,
                a_rate_limit_counts_admissions_in_the_last_period,
                a_thread_is_on_its_spawns_task_queue,
                // threads, state, signals
                state_commands_are_completed_by_the_store,
                spawned_threads_share_the_root_namespace,
                spawn_from_outside,
                signals_are_kept_until_a_wait_takes_them,
                signals_sent_by_runs_are_delivered_in_the_same_transaction,
                finished_runs_drop_their_waits,
                a_released_wait_is_forgotten,
                a_released_wait_gives_its_payload_back_first_in_line,
                a_payload_given_back_goes_to_a_waiting_run,
                a_release_only_looks_at_the_current_attempt,
                // signal idempotency keys
                a_delivered_signals_key_answers_the_same_run,
                a_kept_signals_key_answers_kept,
                a_signal_key_with_another_payload_is_refused,
                // child runs
                a_child_is_created_once_in_its_parents_append,
                a_childs_end_is_delivered_to_its_parent_in_the_same_transaction,
                a_parents_cancel_reaches_attached_unfinished_children_only,
                // counts
                count_runs_groups_by_workflow_and_status,
                // payloads (found by the differential test)
                a_payload_with_a_nul_character_can_be_given_back,
                // retention
                retention_deletes_ended_namespaces_only,
                retention_deletes_in_capped_batches,
                idempotency_keys_are_forgotten_after_the_window,
                signal_keys_are_forgotten_after_the_window,
                kept_payloads_are_dropped_after_the_window,
                // schedules
                schedules_are_created_read_listed_and_deleted,
                a_tick_fires_once_when_two_fires_race,
                a_paused_schedule_does_not_fire,
                skip_overlap_skips_while_the_last_run_goes_on,
                catch_up_fires_run_the_tick_they_name,
                retention_keeps_schedules,
            }
        }
    };
}

/// Generates one test per case (not public API).
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_test {
    ($attrs:tt $make:expr; $($case:ident),* $(,)?) => {
        $(
            $crate::__conformance_one_test! { $attrs $make; $case }
        )*
    };
}

/// Generates the test of one case, with the given attributes (not public API).
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_one_test {
    ([$($attr:tt)*] $make:expr; $case:ident) => {
        #[::tokio::test]
        $($attr)*
        async fn $case() {
            let under_test = $make.await;
            $crate::$case($crate::StoreUnderTest::store(&under_test)).await;
        }
    };
}
