//! What a write operation did, or why it was refused.

use tether_core::event::{CommandIndex, Event, RunStatus};

/// A hook identified by its run and command index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookRef {
    /// The run.
    pub run_id: String,
    /// The hook's command index.
    pub hook_cmd: CommandIndex,
}

/// What a write op did.
// `Resumed` holds its entry inline: an outcome lives in one batch's answer for a moment, and
// boxing the entry would cost an allocation on every resume, the hot path.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum OpOutcome {
    /// Entries were appended to a run's journal (as written, with their `seq`).
    Appended {
        /// The run.
        run_id: String,
        /// The entries as written.
        events: Vec<Event>,
    },
    /// A payload was accepted for a hook.
    Resumed {
        /// The run that received it.
        run_id: String,
        /// The `HookReceived` entry, or `None` when the idempotency key had been used before.
        event: Option<Event>,
        /// The node whose lease on the run was live when the entry was committed
        /// ([`crate::plan::RunRow::lease_holder`]): a node that is not the holder leaves the
        /// entry to it (the holder learns of it from the store) instead of claiming the run.
        /// `None` for a repeated key, or when no node holds the run.
        lease_holder: Option<String>,
        /// The claim the resume made (its op asked for one and no node held the run).
        claimed: Option<crate::Claimed>,
    },
    /// The run was updated; nothing was appended.
    Updated,
    /// No hook holds the token: the payload is kept for the first hook registered with it
    /// (or was kept before, for a repeated idempotency key).
    Kept,
    /// The lease was taken; writes for the run carry this epoch in their [`Fence`](crate::Fence).
    Claimed {
        /// The run's new epoch.
        epoch: u64,
    },
    /// A [`WriteOp::Signal`](crate::WriteOp::Signal) with an idempotency key used before, with the same payload:
    /// nothing was written; the first send's answer.
    SignalRepeated {
        /// The run the first send was delivered to, or `None` if it was kept.
        delivered_to: Option<String>,
    },
    /// Leases were extended.
    Renewed {
        /// How many runs the node holds.
        count: u64,
    },
}

/// Why a write op was refused. A refused op writes nothing; the others in the batch proceed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpRejected {
    /// No active hook holds the token: the last one expired
    /// ([`tether_core::HookOptions::expires_in`]), and its run takes no payload on it.
    #[error("the hook holding this token expired; it takes no more payloads")]
    HookExpired {
        /// The token.
        token: String,
    },
    /// No active hook holds the token, and it is reserved by the run whose hook held it
    /// ([`tether_core::HookOptions::reserve_for`]) until `until_ms`.
    #[error("this token's hook has ended and the token is reserved by its run until {until_ms} (ms since the Unix epoch)")]
    TokenReserved {
        /// The token.
        token: String,
        /// The run that reserved it.
        run_id: String,
        /// End of the reservation, ms since the Unix epoch.
        until_ms: u64,
    },
    /// No such run.
    #[error("run not found: {run_id}")]
    RunNotFound {
        /// The run id asked for.
        run_id: String,
    },
    /// The run has finished and takes no more entries.
    #[error("run {run_id} has already finished ({status})")]
    RunFinished {
        /// The run.
        run_id: String,
        /// Its terminal status.
        status: RunStatus,
    },
    /// No active hook holds the token.
    #[error("hook not found: no active hook holds this token")]
    HookNotFound {
        /// The token asked for.
        token: String,
    },
    /// The idempotency key was first used for this token with another payload; nothing was
    /// written. A retry must send the same payload; a new payload needs a new key.
    #[error(
        "idempotency key reused: this key was first used with another payload; \
         use a new key for a new payload"
    )]
    IdempotencyKeyReused {
        /// The token (for a [`WriteOp::Signal`](crate::WriteOp::Signal): the signal id).
        token: String,
        /// The key.
        key: String,
    },
    /// A run with that id exists already.
    #[error("run {run_id} already exists")]
    RunExists {
        /// The run id.
        run_id: String,
    },
    /// The write's fence is stale: another node (or a newer claim) owns the run now.
    #[error("run {run_id} is owned by another claim now; this write was fenced off")]
    Fenced {
        /// The run.
        run_id: String,
    },
    /// A schedule with that id exists already.
    #[error("schedule {id} already exists")]
    ScheduleExists {
        /// The schedule id.
        id: String,
    },
    /// No such schedule.
    #[error("schedule not found: {id}")]
    ScheduleNotFound {
        /// The schedule id asked for.
        id: String,
    },
    /// The tick fired is no longer the schedule's next one (another node fired it, or the
    /// schedule was paused or resumed since); nothing was written.
    #[error("schedule {id} has moved past this tick")]
    ScheduleMoved {
        /// The schedule id.
        id: String,
    },
    /// Another node holds a live lease on the run.
    #[error("run {run_id} is leased by node {owner}")]
    Owned {
        /// The run.
        run_id: String,
        /// The node holding it.
        owner: String,
    },
    /// The claiming node does not serve the run's queue; a node that serves it runs it.
    #[error("run {run_id} is on queue {queue}, which this node does not serve")]
    NotServed {
        /// The run.
        run_id: String,
        /// Its queue.
        queue: String,
    },
    /// The run's queue has as many admitted, unfinished runs as its concurrency limit: the
    /// run waits until one of them ends.
    #[error("queue {queue} is full ({limit} runs running); run {run_id} waits")]
    QueueFull {
        /// The run.
        run_id: String,
        /// Its queue.
        queue: String,
        /// The queue's concurrency limit.
        limit: u64,
    },
    /// The run's queue admitted as many runs as its rate limit allows in the current period:
    /// the run waits.
    #[error("queue {queue} reached its rate limit; run {run_id} waits")]
    QueueRate {
        /// The run.
        run_id: String,
        /// Its queue.
        queue: String,
    },
}

/// The result of one write op.
pub type OpResult = Result<OpOutcome, OpRejected>;
