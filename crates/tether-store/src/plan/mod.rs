//! The planner: the pure, I/O-free half of every write. Given the rows a backend read (and
//! locked), it decides what an op does and when it is refused; the backend only reads, writes
//! and appends what it is told.
//!
//! - [`batch`]: the one executor of a group commit ([`batch::apply_batch`]), over the
//!   [`batch::BatchBackend`] primitives of a backend's transaction.
//! - [`run`]: a run row as the write path sees it ([`RunRow`]), the checks every op makes on
//!   it (not found, fenced off, finished), the lease rules (claim) and which run columns an
//!   append changes.
//! - [`append`]: what an append writes, entry by entry (hook registration or
//!   `HookConflict`, dispose release, state ops, spawns, signal send / wait / release with the
//!   given-back rule, the ending), over the small [`append::AppendBackend`] trait a backend's
//!   transaction implements.
//! - [`child`]: child runs: created with their start, their end delivered to the parent, a
//!   cancel request passed on to the children ([`child::ChildBackend`]).
//! - [`resume`]: a payload for the hook holding a token (idempotency key first, the race with
//!   another writer moving the hook looked at again, up to [`resume::MAX_HOOK_RACES`] times).
//! - [`hook_end`]: what a token keeps once its hook lets it go (expired, reserved), over
//!   [`hook_end::HookEndBackend`].
//! - [`keep`]: a payload for a token no hook holds yet, kept until a hook registers it
//!   ([`keep::PendingBackend`]).
//! - [`queue`]: task queues: which node may claim a run, and when a first claim admits it
//!   under its queue's limits ([`queue::QueueBackend`]).
//! - [`state`]: the shared-state entries of an append, over [`state::StateBackend`].
//! - [`signal`]: where a signal goes (its idempotency key checked first, under the signal's
//!   lock), what a wait takes, what a released wait gives back, over
//!   the row primitives of [`signal::SignalBackend`].
//! - [`schedule`]: durable cron schedules (create, delete, pause, resume, and firing a tick
//!   exactly once: the tick's run and the schedule's next tick in one transaction, a
//!   compare-and-set on the tick), over [`schedule::ScheduleBackend`].

pub mod append;
pub mod batch;
pub mod child;
pub mod hook_end;
pub mod keep;
pub mod queue;
pub mod resume;
pub mod run;
pub mod schedule;
pub mod signal;
pub mod state;

pub use append::{plan_append, AppendBackend, AppendPlan, NewHook, NewThread};
pub use child::{ChildBackend, NewChild, ParentLink};
pub use hook_end::{HookEndBackend, HookRelease};
pub use keep::{KeptPayload, PendingBackend};
pub use queue::{QueueBackend, QueueLoad, RunQueue};
pub use run::{claim, fenced, open, RunChange, RunRow};
pub use schedule::{FirePlan, ScheduleBackend, ScheduleRow};
pub use signal::{Released, SignalBackend, SignalKey, SignalOutcome};
pub use state::StateBackend;
