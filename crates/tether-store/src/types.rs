//! Records, write operations and errors of the storage contract.

use serde::{Deserialize, Serialize};
use serde_json::Value;
#[allow(unused_imports)] // for the docs
use tether_core::event::ThreadInfo;
use tether_core::event::{CommandIndex, ErrorInfo, Event, EventBody, RunStatus};

/// A run as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The run id.
    pub run_id: String,
    /// Registered workflow name.
    pub workflow: String,
    /// Lifecycle status.
    pub status: RunStatus,
    /// The input it was started with.
    pub input: Value,
    /// The output, once completed.
    pub output: Option<Value>,
    /// The error, once failed or cancelled; also set (with a non-terminal status) when the run
    /// is blocked by a non-determinism error.
    pub error: Option<ErrorInfo>,
    /// Creation time, ms since the Unix epoch.
    pub created_at_ms: u64,
    /// Last update time, ms since the Unix epoch.
    pub updated_at_ms: u64,
    /// Sequence number of the last journal entry.
    pub last_seq: u64,
    /// When the run's earliest pending timer is due, if it has one.
    pub wake_at_ms: Option<u64>,
    /// The node holding the run's lease, if any (see [`WriteOp::Claim`]).
    pub owner: Option<String>,
    /// The run that started this one as a child run (`None`: not a child run).
    pub parent_run_id: Option<String>,
    /// The task queue the run is on ([`DEFAULT_QUEUE`] unless it was started on another):
    /// only nodes serving it claim the run (see [`QueuePolicy`]).
    pub queue: String,
}

/// Proof of ownership a node attaches to its writes for a run: the node id and the epoch its
/// [`WriteOp::Claim`] returned. A write whose fence no longer matches the run (another node
/// claimed it since) is refused with [`OpRejected::Fenced`], so a node that lost its lease
/// cannot commit for that run any more.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fence {
    /// The node id.
    pub node: String,
    /// The epoch of the claim.
    pub epoch: u64,
}

/// The claim a run is created with (see [`WriteOp::CreateRun`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirstClaim {
    /// The node that will run it.
    pub node: String,
    /// End of the lease.
    pub lease_until_ms: u64,
}

/// The epoch of a run's first claim (a run created unclaimed has epoch 0; every claim adds 1).
pub const FIRST_EPOCH: u64 = 1;

/// The lease columns a [`WriteOp::CreateRun`] starts the run with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewRunRow<'a> {
    /// `running` when claimed, else `pending`.
    pub status: RunStatus,
    /// The claiming node.
    pub owner: Option<&'a str>,
    /// End of its lease.
    pub lease_until_ms: Option<u64>,
    /// [`FIRST_EPOCH`] when claimed, else 0.
    pub epoch: u64,
}

impl FirstClaim {
    /// The row a run created with `claim` starts with (every backend writes the same).
    pub fn new_run_row(claim: Option<&FirstClaim>) -> NewRunRow<'_> {
        match claim {
            Some(c) => NewRunRow {
                status: RunStatus::Running,
                owner: Some(&c.node),
                lease_until_ms: Some(c.lease_until_ms),
                epoch: FIRST_EPOCH,
            },
            None => NewRunRow {
                status: RunStatus::Pending,
                owner: None,
                lease_until_ms: None,
                epoch: 0,
            },
        }
    }
}

/// The journal entry 1 a [`WriteOp::CreateRun`] writes: the engine builds a run it just
/// created from it without reading it back, so every backend must write exactly this.
pub fn run_started(workflow: String, input: Value, at_ms: u64) -> Event {
    Event {
        seq: 1,
        at_ms,
        body: EventBody::RunStarted {
            workflow,
            input,
            thread: None,
        },
    }
}

/// A run's journal grew (committed by any process sharing the store). See
/// [`crate::Store::subscribe`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunChanged {
    /// The run.
    pub run_id: String,
    /// Its last `seq` after the commit.
    pub last_seq: u64,
    /// The commit went through the very store instance that reports it: its own process
    /// already knows (the engine hands its own commits to its runs directly and skips these).
    pub local: bool,
}

/// An active hook: a token that currently resumes a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HookRecord {
    /// The token.
    pub token: String,
    /// The run that holds it.
    pub run_id: String,
    /// Command index of the hook in that run.
    pub hook_cmd: CommandIndex,
    /// `hook` (or `webhook` later).
    pub kind: String,
    /// User metadata.
    pub metadata: Value,
    /// Name of the hook definition whose validation runs at resume time.
    pub definition: Option<String>,
    /// Creation time, ms since the Unix epoch.
    pub created_at_ms: u64,
    /// When the hook expires, ms since the Unix epoch, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
    /// How long its token stays reserved once the hook lets it go, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserve_ms: Option<u64>,
}

/// How the last hook holding a token ended, kept while it matters (see
/// [`crate::plan::hook_end`]): the hook expired (a payload sent to the token is refused as
/// expired), or its token is reserved for a while after the hook let it go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookEnd {
    /// The token.
    pub token: String,
    /// The run whose hook held it.
    pub run_id: String,
    /// Command index of that hook.
    pub hook_cmd: CommandIndex,
    /// Whether the hook expired (rather than being disposed or ending with its run).
    pub expired: bool,
    /// When the hook let the token go, ms since the Unix epoch.
    pub ended_at_ms: u64,
    /// Until when no other run may take the token, if it is reserved.
    pub reserved_until_ms: Option<u64>,
}

/// Which runs [`crate::Store::list_runs`] returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Only runs with this status.
    pub status: Option<RunStatus>,
    /// Only runs of this workflow.
    pub workflow: Option<String>,
    /// At most this many (the backend caps it at 1,000; 0 means 100).
    pub limit: usize,
    /// Only runs listed after this one in the newest-first order (the next page: pass the
    /// cursor of the last run of the previous page, [`RunCursor::of`]).
    pub before: Option<RunCursor>,
}

/// A position in the newest-first order of [`crate::Store::list_runs`]: creation time, then id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunCursor {
    /// The run's creation time, ms since the Unix epoch.
    pub created_at_ms: u64,
    /// The run's id.
    pub run_id: String,
}

impl RunCursor {
    /// The cursor just past `run` (the next page starts after it).
    pub fn of(run: &RunRecord) -> RunCursor {
        RunCursor {
            created_at_ms: run.created_at_ms,
            run_id: run.run_id.clone(),
        }
    }
}

/// How an [`WriteOp::Append`] changes the run's `wake_at`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WakeAt {
    /// Leave it as it is.
    #[default]
    Keep,
    /// Set it (or clear it with `None`).
    Set(Option<u64>),
}

/// One write in a group commit. Ops are applied in order; each sees the effects of the ones
/// before it in the same batch.
#[derive(Clone, Debug, PartialEq)]
pub enum WriteOp {
    /// Create a run with status `pending` and journal entry 1 = `RunStarted`; with `claim`,
    /// the run starts `running` and claimed instead (owner `claim.node`, lease until
    /// `claim.lease_until_ms`, epoch [`FIRST_EPOCH`]), as if a `Claim` and a status change had
    /// followed in the same transaction.
    /// Refused with [`OpRejected::RunExists`] if the id is taken.
    /// Outcome: [`OpOutcome::Appended`] with the `RunStarted` event.
    CreateRun {
        /// New run id.
        run_id: String,
        /// Workflow name.
        workflow: String,
        /// Input.
        input: Value,
        /// Commit time.
        at_ms: u64,
        /// Create the run claimed by the node that will run it. The claim admits the run to
        /// its queue without checking [`QueuePolicy`]: a caller claims at creation only runs of
        /// queues it serves that have no limit (the engine does), else it creates the run
        /// unclaimed and a [`WriteOp::Claim`] admits it.
        claim: Option<FirstClaim>,
        /// The run's task queue ([`DEFAULT_QUEUE`] for the default one).
        queue: String,
    },
    /// Append entries to a run's journal, each at the next `seq`, stamped `at_ms`, and update
    /// its status / wake-up time. Refused with `RunNotFound` or `RunFinished` (a finished run
    /// takes no more entries). Side effects, in the same transaction:
    /// - `HookCreated`: registers the token. If another active hook holds it, the entry is
    ///   written as `HookConflict { cmd, token, holder_run }` instead (the database enforces
    ///   one active hook per token; no check-then-insert race);
    ///   A token reserved by another run ([`HookEnd::reserved_until_ms`] after `at_ms`) is a
    ///   conflict too (`holder_run`: the reserving run); a hook registered in place of an
    ///   ended one clears the token's [`HookEnd`];
    /// - `HookDisposed`: releases the token if this run's hook `hook_cmd` holds it;
    /// - `HookExpired`: the same, and records the token's [`HookEnd`] as expired;
    ///   a released hook with a reservation (disposed, expired, or its run ended) records its
    ///   reservation (see [`crate::plan::hook_end`]);
    /// - `RunCompleted` / `RunFailed` / `RunCancelled`: sets the terminal status, the output or
    ///   error, clears `wake_at` and releases every hook of the run (`status` is then ignored);
    ///   when the run is a child run, appends `ChildEnded` to its parent unless the parent has
    ///   ended (see [`crate::plan::child`]);
    /// - `ChildStarted`: creates the child run (nothing if its id is taken);
    /// - `CancelRequested`: appends `CancelRequested` to every unfinished child not started
    ///   detached, and to theirs.
    ///
    /// Refused with `Fenced` (writing nothing) when `fence` is set and the run's owner or epoch
    /// differ. Outcome: [`OpOutcome::Appended`] with the entries as written (conflicts
    /// substituted). A terminal entry also clears the run's owner.
    Append {
        /// The run.
        run_id: String,
        /// Entries to append, in order (may be empty to update status only).
        events: Vec<EventBody>,
        /// New non-terminal status, if it changes.
        status: Option<RunStatus>,
        /// New wake-up time, if it changes.
        wake_at: WakeAt,
        /// The writer's claim on the run; `None` writes without checking ownership.
        fence: Option<Fence>,
        /// Commit time.
        at_ms: u64,
    },
    /// Deliver a payload to the active hook holding `token`: append
    /// `HookReceived { hook_cmd, payload }` to its run. When no active hook holds it, the
    /// token's [`HookEnd`] decides the refusal ([`crate::plan::hook_end::refusal`]):
    /// `HookExpired`, `TokenReserved`, else `HookNotFound`. With an `idempotency_key` already used
    /// for this token, nothing is written, even if the hook has been released since (checked
    /// first): with the same payload (the same [`payload_digest`](crate::payload_digest)) the
    /// first answer is returned (`event: None`); with another payload the op is refused with
    /// `IdempotencyKeyReused`. A key recorded without a digest (before the schema stored
    /// one) matches any payload. Otherwise the key is recorded with the digest of the accepted
    /// payload. Refused with `HookNotFound` when no active hook holds the token, or when
    /// `expect` is set and a different hook holds it now.
    /// Outcome: [`OpOutcome::Resumed`].
    Resume {
        /// The hook token.
        token: String,
        /// The payload.
        payload: Value,
        /// Optional idempotency key (scoped to the token).
        idempotency_key: Option<String>,
        /// The hook the caller validated the payload against.
        expect: Option<HookRef>,
        /// Commit time.
        at_ms: u64,
    },
    /// [`WriteOp::Resume`] when an active hook holds `token`; when none does, the payload is
    /// *kept* for the token instead, last in line, and delivered (as `HookReceived`, oldest
    /// first, in the same transaction) by the append that registers a hook with that token
    /// first, whichever run it belongs to. An `idempotency_key` used before for this token,
    /// kept or delivered, answers the first answer with the same payload and is refused with
    /// `IdempotencyKeyReused` with another. A kept payload is checked against no hook
    /// definition: only the workflow decoding it checks it.
    /// Outcome: [`OpOutcome::Resumed`], or [`OpOutcome::Kept`].
    ResumeOrKeep {
        /// The hook token.
        token: String,
        /// The payload.
        payload: Value,
        /// Optional idempotency key (scoped to the token).
        idempotency_key: Option<String>,
        /// Commit time.
        at_ms: u64,
    },
    /// Append `CancelRequested` to a run (and to its attached unfinished children, as an
    /// [`WriteOp::Append`] of it does). Refused with `RunNotFound` / `RunFinished`.
    /// Outcome: [`OpOutcome::Appended`].
    RequestCancel {
        /// The run.
        run_id: String,
        /// Optional reason.
        reason: Option<String>,
        /// Commit time.
        at_ms: u64,
    },
    /// Record that the live run has applied its journal up to `applied_seq`, so that after a
    /// crash only runs with entries past their mark need rebuilding (see
    /// [`crate::Store::runs_needing_work`]). Never lowers the mark; a no-op on finished runs.
    /// Outcome: [`OpOutcome::Updated`]; refused with `RunNotFound`.
    Checkpoint {
        /// The run.
        run_id: String,
        /// The last journal entry the run has applied.
        applied_seq: u64,
    },
    /// Record an error on a run without changing its journal or status (used when the current
    /// code no longer matches the journal: the run is blocked, not corrupted).
    /// Outcome: [`OpOutcome::Updated`]; refused with `RunNotFound`.
    MarkBlocked {
        /// The run.
        run_id: String,
        /// Why.
        error: ErrorInfo,
        /// The writer's claim on the run (refused with `Fenced` when stale).
        fence: Option<Fence>,
        /// Commit time.
        at_ms: u64,
    },
    /// Take (or take again) the lease of a run for `node` until `lease_until_ms`. Succeeds when
    /// the run has no owner, when `node` owns it, or when the owner's lease ended before
    /// `now_ms`; every success increments the run's epoch (so an older claim, even by the same
    /// node, is fenced off). Refused with `Owned` when another node holds a live lease, and
    /// with `RunNotFound` / `RunFinished`. Then the run's queue is checked against `queues`
    /// (decided in [`crate::plan::queue`]): `NotServed` when the node does not serve it; the
    /// first claim of a run *admits* it to its queue, refused with `QueueFull` / `QueueRate`
    /// when the queue's limits leave no room (counted cluster-wide in this transaction).
    /// Outcome: [`OpOutcome::Claimed`] with the new epoch.
    Claim {
        /// The run.
        run_id: String,
        /// The claiming node.
        node: String,
        /// End of the lease, ms since the Unix epoch.
        lease_until_ms: u64,
        /// The claimer's clock, to judge whether the current lease has ended.
        now_ms: u64,
        /// The queues the claiming node serves and their limits.
        queues: std::sync::Arc<QueuePolicy>,
    },
    /// Give a run's lease up (the run was evicted from memory or its actor stopped). A no-op
    /// unless `fence` matches the run's owner and epoch. Outcome: [`OpOutcome::Updated`];
    /// refused with `RunNotFound`.
    Release {
        /// The run.
        run_id: String,
        /// The claim being released.
        fence: Fence,
    },
    /// Send a signal from outside a run (client, HTTP, the engine): to the oldest run waiting
    /// on `signal_id` (appending `SignalReceived { wait_cmd, payload }` to it; outcome
    /// [`OpOutcome::Appended`] for that run), or kept until a wait comes (outcome
    /// [`OpOutcome::Updated`]). Kept signals are delivered oldest first. Within a run's append,
    /// `SignalSent` does the same and records the recipient in `delivered_to`; `SignalWaited`
    /// takes the oldest kept signal at once (its `SignalReceived` follows in the same append)
    /// or registers the wait. `SignalReleased { wait_cmd, signal_id }` forgets that wait of
    /// the run if it is still registered; otherwise, if the wait took a payload in the run's
    /// current attempt (a `SignalReceived { wait_cmd }` after the wait's own `SignalWaited`
    /// and after the last `AttemptFailed`, in the journal or earlier in the same append), it
    /// gives that payload back: to the oldest wait on `signal_id` (as a send would; a wait of
    /// the same run gets its `SignalReceived` right after the release), else kept *first* in
    /// line of the signals with that id. The store fills `returned` and `delivered_to`. A
    /// finished run's waits are dropped.
    ///
    /// With an `idempotency_key` (scoped to `signal_id`) already used, nothing is written:
    /// with the same payload (the same [`payload_digest`](crate::payload_digest)) the first
    /// answer is given again, [`OpOutcome::SignalRepeated`] naming the run the first send was
    /// delivered to (or `None` if it was kept, whoever took it since); with another payload
    /// the op is refused with `IdempotencyKeyReused` (its `token` is the signal id).
    /// Otherwise the key is recorded, with the payload's digest and where the signal went, in
    /// the same transaction as the delivery.
    Signal {
        /// The signal id.
        signal_id: String,
        /// The payload.
        payload: Value,
        /// Optional idempotency key (scoped to the signal id).
        idempotency_key: Option<String>,
        /// Commit time.
        at_ms: u64,
    },
    /// Start a hook thread from outside in the namespace of `run_id`: a run `hook_id` of
    /// `workflow` with input `args`, whose `RunStarted` carries its [`ThreadInfo`] (root = the
    /// namespace of `run_id`, parent = `run_id`). Within a run's append, `HookSpawned` does the
    /// same in the same transaction. Refused with `RunNotFound` / `RunFinished`, and with
    /// `RunExists` if `hook_id` is taken. Outcome: [`OpOutcome::Appended`] for the thread.
    ///
    /// Shared state: within an append, `StateGet` / `StateSet` / `StateIncr` / `StateDelete`
    /// act on the namespace of the run (its root run) and are written with their outputs
    /// filled in (`value`, `existed`); `StateIncr` on a non-integer leaves it and records
    /// `value: None`.
    SpawnHook {
        /// The run whose namespace the thread works in.
        run_id: String,
        /// The new thread's id.
        hook_id: String,
        /// The workflow it runs.
        workflow: String,
        /// Its input.
        args: Value,
        /// Its retry policy.
        retry: tether_core::RetryPolicy,
        /// The thread's task queue ([`DEFAULT_QUEUE`] for the default one).
        queue: String,
        /// Commit time.
        at_ms: u64,
    },
    /// A write to a durable cron schedule: create, delete, pause, resume, or fire one tick
    /// (exactly one run per tick, see [`crate::FireTick`]).
    Schedule(crate::ScheduleOp),
    /// Heartbeat: extend the lease of every run owned by `node` to `lease_until_ms`.
    /// Outcome: [`OpOutcome::Renewed`] with how many runs it holds.
    RenewLeases {
        /// The node.
        node: String,
        /// New end of its leases.
        lease_until_ms: u64,
    },
}

/// A hook identified by its run and command index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookRef {
    /// The run.
    pub run_id: String,
    /// The hook's command index.
    pub hook_cmd: CommandIndex,
}

/// What a write op did.
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
    },
    /// The run was updated; nothing was appended.
    Updated,
    /// No hook holds the token: the payload is kept for the first hook registered with it
    /// (or was kept before, for a repeated idempotency key).
    Kept,
    /// The lease was taken; writes for the run carry this epoch in their [`Fence`].
    Claimed {
        /// The run's new epoch.
        epoch: u64,
    },
    /// A [`WriteOp::Signal`] with an idempotency key used before, with the same payload:
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
        /// The token (for a [`WriteOp::Signal`]: the signal id).
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

/// How a terminal journal entry leaves its run (the contract of `RunCompleted`, `RunFailed`,
/// `RunCancelled` in [`WriteOp::Append`]); every backend applies it the same way.
#[derive(Clone, Debug, PartialEq)]
pub struct Ending {
    /// The terminal status.
    pub status: RunStatus,
    /// The output (completed runs).
    pub output: Option<Value>,
    /// The error (failed runs; `cancelled` with the reason for cancelled ones).
    pub error: Option<ErrorInfo>,
}

impl Ending {
    /// The ending a journal entry states, if it is terminal.
    pub fn of(body: &EventBody) -> Option<Ending> {
        let (status, output, error) = match body {
            EventBody::RunCompleted { output } => {
                (RunStatus::Completed, Some(output.clone()), None)
            }
            EventBody::RunFailed { error } => (RunStatus::Failed, None, Some(error.clone())),
            EventBody::RunCancelled { reason } => {
                let message = reason.clone().unwrap_or_else(|| "run cancelled".to_owned());
                (
                    RunStatus::Cancelled,
                    None,
                    Some(ErrorInfo::new("cancelled", message)),
                )
            }
            _ => return None,
        };
        Some(Ending {
            status,
            output,
            error,
        })
    }
}

/// How many runs of one workflow have one status (see [`crate::Store::count_runs`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunCount {
    /// The workflow name.
    pub workflow: String,
    /// The status.
    pub status: RunStatus,
    /// How many runs (hook threads included) have it.
    pub count: u64,
}

/// The name of the default task queue: the queue of a run started without one.
pub const DEFAULT_QUEUE: &str = "default";

/// How many runs of one queue wait to be admitted (see [`crate::Store::queue_depths`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueDepth {
    /// The queue.
    pub queue: String,
    /// Its unfinished runs not yet admitted (never claimed).
    pub waiting: u64,
}

/// At most `count` admissions per `per_ms` milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueRate {
    /// Admissions allowed per period (at least 1).
    pub count: u64,
    /// The period, in milliseconds (at least 1).
    pub per_ms: u64,
}

/// The limits of one queue, cluster-wide.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueLimit {
    /// At most this many admitted, unfinished runs of the queue at once.
    pub concurrency: Option<u64>,
    /// At most this many admissions per period.
    pub rate: Option<QueueRate>,
}

impl QueueLimit {
    /// Whether this limits anything.
    pub fn is_none(&self) -> bool {
        self.concurrency.is_none() && self.rate.is_none()
    }
}

/// The queues a node serves and the limits it admits runs under (passed with every
/// [`WriteOp::Claim`]). `Default`: every queue, no limits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueuePolicy {
    /// The queues served; `None`: all of them.
    pub serves: Option<std::collections::BTreeSet<String>>,
    /// Limits per queue; a queue not named here has none.
    pub limits: std::collections::BTreeMap<String, QueueLimit>,
}

impl QueuePolicy {
    /// Whether the node serves `queue`.
    pub fn serves(&self, queue: &str) -> bool {
        self.serves.as_ref().is_none_or(|s| s.contains(queue))
    }

    /// The limits of `queue`, if it has any.
    pub fn limit(&self, queue: &str) -> Option<&QueueLimit> {
        self.limits.get(queue).filter(|l| !l.is_none())
    }

    /// Whether a run of `queue` may be created already claimed by this node (it serves the
    /// queue and the queue has no limit): else it is created unclaimed and admitted by a
    /// [`WriteOp::Claim`].
    pub fn claims_at_creation(&self, queue: &str) -> bool {
        self.serves(queue) && self.limit(queue).is_none()
    }

    /// The served queues as a list (`None`: all), for [`crate::Store::runs_needing_work`].
    pub fn served(&self) -> Option<Vec<String>> {
        self.serves.as_ref().map(|s| s.iter().cloned().collect())
    }
}

/// Longest queue name.
pub const MAX_QUEUE_NAME_LEN: usize = 128;

/// Check a queue name: 1 to [`MAX_QUEUE_NAME_LEN`] ASCII letters, digits, `_`, `-`, `.` or
/// `:` (so that `--queues a,b` and `--queue-limit a=10` can name any queue). The reason when
/// it is not one.
pub fn check_queue_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_QUEUE_NAME_LEN {
        return Err(format!(
            "a queue name must be 1 to {MAX_QUEUE_NAME_LEN} characters"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')))
    {
        return Err(format!(
            "a queue name may only hold ASCII letters, digits, `_`, `-`, `.` and `:` (not {c:?})"
        ));
    }
    Ok(())
}
