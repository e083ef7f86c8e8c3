//! The storage contract of Tether.
//!
//! A [`Store`] keeps runs, their journals, the token → hook index and idempotency keys. The
//! engine talks to it in two ways:
//!
//! - **writes** go through [`Store::commit`], one call per *group commit*: a batch of
//!   [`WriteOp`]s applied in order in one durable transaction. Each op gets its own
//!   [`OpResult`]: a logical refusal (unknown token, finished run) refuses that op only; a
//!   backend failure ([`StoreError`]) fails the whole batch and nothing of it is kept.
//! - **reads** (`get_run`, `load_journal`, `get_hook`, ...) are plain queries.
//!
//! The semantics every backend must implement are written down on [`WriteOp`] and checked by
//! the one conformance suite, the `tether-store-conformance` test kit, which each backend runs
//! against itself as a dev-dependency.

#![warn(missing_docs)]

pub mod crash;
mod digest;
mod error;
pub mod migrate;
mod outcome;
pub mod plan;
mod queue;
mod redact;
pub mod retention;
mod schedule;
mod schema;
mod types;
mod write_op;

pub use digest::{payload_digest, payload_digest_bytes};
pub use error::{Detail, ErrorSource, StoreError};
pub use outcome::*;
pub use queue::*;
pub use redact::redact_url;
pub use schedule::{
    schedule_of, schedule_run_id, CatchUp, FireTick, Overlap, ScheduleOp, ScheduleRecord,
    ScheduleSpec, SCHEDULE_RUN_PREFIX,
};
pub use schema::check_read_only_schema;
pub use types::*;
pub use write_op::*;

use async_trait::async_trait;
use tether_core::event::Event;

/// A storage backend. See the crate documentation for the contract.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Apply `ops` in order in one durable transaction (group commit). The result has one entry
    /// per op, in the same order. On `Err`, nothing of the batch was kept.
    async fn commit(&self, ops: Vec<WriteOp>) -> Result<Vec<OpResult>, StoreError>;

    /// One run, or `None` if there is no such run.
    async fn get_run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError>;

    /// Runs matching `filter`, newest first.
    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError>;

    /// The journal of a run, entries with `seq > after_seq`, in order.
    async fn load_journal(&self, run_id: &str, after_seq: u64) -> Result<Vec<Event>, StoreError>;

    /// A run and its whole journal, or `None` if there is no such run: what rebuilding a run
    /// this node has claimed reads. The journal is read after the run, so it may hold entries
    /// committed since (as a [`Store::load_journal`] after a [`Store::get_run`] would). The
    /// default makes the two reads one after the other; a backend that can makes them one
    /// (one connection, one round trip).
    async fn load_run(&self, run_id: &str) -> Result<Option<(RunRecord, Vec<Event>)>, StoreError> {
        let Some(run) = self.get_run(run_id).await? else {
            return Ok(None);
        };
        let journal = self.load_journal(run_id, 0).await?;
        Ok(Some((run, journal)))
    }

    /// The active hook holding `token`, if any.
    async fn get_hook(&self, token: &str) -> Result<Option<HookRecord>, StoreError>;

    /// How the last hook holding `token` ended, if that still matters (it expired, or its
    /// token is reserved); `None` when an active hook holds the token or nothing is recorded.
    /// The default: nothing is ever recorded.
    async fn get_hook_end(&self, token: &str) -> Result<Option<HookEnd>, StoreError> {
        let _ = token;
        Ok(None)
    }

    /// The active hooks of a run, in creation order.
    async fn list_hooks(&self, run_id: &str) -> Result<Vec<HookRecord>, StoreError>;

    /// Ids of unfinished runs that have work to do without any outside event: status
    /// `pending` or `running`, a `wake_at` at or before `now_ms`, or journal entries past
    /// their [`WriteOp::Checkpoint`] mark (a payload accepted just before a crash) — and that
    /// `node` may take: no owner, owned by `node`, or a lease that ended before `now_ms`; and
    /// on one of `queues` (`None`: any queue). At most `limit`, oldest first.
    async fn runs_needing_work(
        &self,
        now_ms: u64,
        node: &str,
        queues: Option<&[String]>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;

    /// Per queue, how many unfinished runs wait to be admitted (never claimed: a limit leaves
    /// no room, or no node serving the queue took them yet), one entry per queue that has
    /// any, ordered by queue. The default refuses: a backend must implement it.
    async fn queue_depths(&self) -> Result<Vec<QueueDepth>, StoreError> {
        Err(StoreError::config(format!(
            "the {} store cannot count queued runs",
            self.backend_name()
        )))
    }

    /// Notifications of journal growth committed by *any* process sharing this store, for
    /// backends that several processes share (PostgreSQL: `LISTEN/NOTIFY`). `None` (the
    /// default) means only this process writes, so there is nothing to hear.
    fn subscribe(&self) -> Option<futures::stream::BoxStream<'static, RunChanged>> {
        None
    }

    /// The shared state of the namespace `run_id` belongs to, as a JSON object; `None` if
    /// there is no such run.
    async fn get_state(
        &self,
        run_id: &str,
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>, StoreError>;

    /// The hook threads started in the namespace of `run_id` (all of them, at any depth),
    /// oldest first.
    async fn list_threads(&self, run_id: &str) -> Result<Vec<RunRecord>, StoreError>;

    /// The child runs `run_id` started (`ChildStarted`), oldest first. The default refuses:
    /// a backend must implement it.
    async fn list_children(&self, run_id: &str) -> Result<Vec<RunRecord>, StoreError> {
        let _ = run_id;
        Err(StoreError::config(format!(
            "the {} store cannot list child runs",
            self.backend_name()
        )))
    }

    /// How many runs there are per workflow and status (hook threads included, under their
    /// own workflow), one entry per pair that has at least one run, ordered by workflow then
    /// status name. One grouped query: metrics scrapes call it.
    async fn count_runs(&self) -> Result<Vec<RunCount>, StoreError>;

    /// Delete up to `max_runs` ended namespaces (a main run and its hook threads) that
    /// [`retention`] allows deleting at `cutoff_ms` (ms since the Unix epoch), with their
    /// journals, hooks, idempotency keys, waits, shared state and kept signals, in one
    /// transaction; returns how many runs (threads included) were deleted. On a store shared
    /// by several nodes, one node at a time deletes: a call made while another node is
    /// deleting returns `Ok(0)`. The default refuses: a backend must implement the rule.
    async fn delete_ended_before(
        &self,
        cutoff_ms: u64,
        max_runs: usize,
    ) -> Result<u64, StoreError> {
        let _ = (cutoff_ms, max_runs);
        Err(StoreError::config(format!(
            "the {} store cannot delete ended runs; run without --retention",
            self.backend_name()
        )))
    }

    /// Forget up to `max_keys` idempotency keys recorded before `cutoff_ms`, in one
    /// transaction; returns how many were forgotten (see [`retention`]). The default refuses.
    async fn delete_keys_before(&self, cutoff_ms: u64, max_keys: usize) -> Result<u64, StoreError> {
        let _ = (cutoff_ms, max_keys);
        Err(StoreError::config(format!(
            "the {} store cannot forget idempotency keys; run with --idempotency-window off",
            self.backend_name()
        )))
    }

    /// One schedule, or `None` if there is no such schedule.
    async fn get_schedule(&self, id: &str) -> Result<Option<ScheduleRecord>, StoreError> {
        let _ = id;
        Err(self.no_schedules())
    }

    /// Every schedule, by id (schedules are few: the engine reads them all to find the next
    /// tick).
    async fn list_schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError> {
        Err(self.no_schedules())
    }

    /// The refusal of a backend without schedules (the default of the schedule reads).
    #[doc(hidden)]
    fn no_schedules(&self) -> StoreError {
        StoreError::config(format!(
            "the {} store does not keep schedules",
            self.backend_name()
        ))
    }

    /// A short name of the backend (`sqlite`, `postgres`).
    fn backend_name(&self) -> &'static str;
}
