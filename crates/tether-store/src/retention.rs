//! What retention may delete: the one rule every backend implements in its own SQL
//! ([`crate::Store::delete_ended_before`], [`crate::Store::delete_keys_before`]).
//!
//! # Ended runs
//!
//! Runs are deleted by **namespace**: a main run (the *root*) together with every hook thread
//! started in it, at any depth. A namespace may be deleted at `cutoff_ms` when
//!
//! - its root and every thread in it have ended (status `completed`, `failed` or `cancelled`,
//!   see [`ENDED_STATUSES`]), and
//! - each of them was last updated (for an ended run: when it ended) **before** `cutoff_ms`.
//!
//! So a thread whose root is still alive is never deleted, nor a root whose threads are still
//! going or ended too recently. [`namespace_may_be_deleted`] states the rule in Rust; the
//! backends' SQL must select exactly the namespaces it accepts (the conformance case
//! `retention_deletes_ended_namespaces_only` checks them against it).
//!
//! Deleting a namespace removes, in one transaction: its runs, their journals, their hooks
//! (an ended run has none left, but nothing may point at a deleted run), the idempotency keys
//! that point at its runs (resume keys, and the keys of signals delivered to them), their
//! registered signal waits, the namespace's shared state, and the kept signals addressed to
//! its `exec_hook` threads (signal id `{thread id}/done`, which nobody can wait for any more).
//!
//! A token's end ([`crate::HookEnd`]: its hook expired, or it is reserved) goes with its
//! run's namespace, unless its reservation runs past the cutoff: then it stays (the token stays
//! reserved after its run is deleted) and goes in the first call whose cutoff is past the
//! reservation's end.
//!
//! # Idempotency keys
//!
//! A key is remembered for a window: [`crate::Store::delete_keys_before`] forgets what
//! [`WINDOWED`] lists, recorded before `cutoff_ms`, in that order, oldest first within each
//! kind, with one budget of `max_keys` rows for all of them: the keys of resumes (and of kept
//! payloads delivered since), the keys of signals sent from outside (scoped to their signal
//! id; a kept signal's key has no run to go with, so only the window removes it), and the
//! payloads kept by `ResumeOrKeep` for a token no hook registered within the window (with
//! their keys: the payload is dropped, nobody will take it). A retry with a forgotten key is
//! treated as a new request.
//!
//! # Batches
//!
//! Both methods delete at most a given number of namespaces (keys) per call, in one short
//! transaction, so a large backlog never holds a long write lock: callers loop until a call
//! deletes fewer than asked ([`RETENTION_BATCH`] is the engine's batch size).

use tether_core::event::RunStatus;

use crate::RunRecord;

/// The statuses of a run that has ended for good: only such runs are ever deleted.
pub const ENDED_STATUSES: [RunStatus; 3] = [
    RunStatus::Completed,
    RunStatus::Failed,
    RunStatus::Cancelled,
];

/// How many namespaces (or idempotency keys) one retention transaction deletes at most.
pub const RETENTION_BATCH: usize = 500;

/// What the idempotency window forgets (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Windowed {
    /// The idempotency keys of resumes (and of kept payloads delivered since).
    HookKey,
    /// The idempotency keys of signals sent from outside ([`crate::WriteOp::Signal`]).
    SignalKey,
    /// Payloads kept for a token no hook has registered ([`crate::WriteOp::ResumeOrKeep`]).
    KeptPayload,
}

/// The order in which [`crate::Store::delete_keys_before`] spends its budget: each kind gets
/// what the kinds before it left.
pub const WINDOWED: [Windowed; 3] = [
    Windowed::HookKey,
    Windowed::SignalKey,
    Windowed::KeptPayload,
];

/// Whether `run` has ended and was last updated before `cutoff_ms`.
pub fn run_is_expired(run: &RunRecord, cutoff_ms: u64) -> bool {
    ENDED_STATUSES.contains(&run.status) && run.updated_at_ms < cutoff_ms
}

/// The rule of the module documentation: whether the namespace of `root` (a main run) and
/// `threads` (every hook thread started in it, at any depth) may be deleted at `cutoff_ms`.
pub fn namespace_may_be_deleted(root: &RunRecord, threads: &[RunRecord], cutoff_ms: u64) -> bool {
    run_is_expired(root, cutoff_ms) && threads.iter().all(|t| run_is_expired(t, cutoff_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn run(status: RunStatus, updated_at_ms: u64) -> RunRecord {
        RunRecord {
            run_id: "r".into(),
            workflow: "w".into(),
            status,
            input: Value::Null,
            output: None,
            error: None,
            created_at_ms: 0,
            updated_at_ms,
            last_seq: 1,
            wake_at_ms: None,
            owner: None,
            parent_run_id: None,
            queue: crate::DEFAULT_QUEUE.into(),
        }
    }

    #[test]
    fn only_ended_namespaces_past_the_cutoff_go() {
        let old_done = run(RunStatus::Completed, 10);
        assert!(namespace_may_be_deleted(&old_done, &[], 11));
        assert!(
            !namespace_may_be_deleted(&old_done, &[], 10),
            "strictly before"
        );
        assert!(!namespace_may_be_deleted(
            &run(RunStatus::Suspended, 1),
            &[],
            11
        ));
        let running_thread = run(RunStatus::Running, 1);
        assert!(!namespace_may_be_deleted(&old_done, &[running_thread], 11));
        let recent_thread = run(RunStatus::Failed, 20);
        assert!(!namespace_may_be_deleted(&old_done, &[recent_thread], 11));
        let old_thread = run(RunStatus::Cancelled, 5);
        assert!(namespace_may_be_deleted(&old_done, &[old_thread], 11));
    }
}
