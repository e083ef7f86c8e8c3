//! The write operations of the storage contract: what a group commit asks of a store.

use serde_json::Value;
use tether_core::event::{ErrorInfo, EventBody, RunStatus};

use crate::*;

/// One write in a group commit. Ops are applied in order; each sees the effects of the ones
/// before it in the same batch.
#[derive(Clone, Debug, PartialEq)]
pub enum WriteOp {
    /// Create a run with status `pending` and journal entry 1 = `RunStarted`; with `claim`,
    /// the run starts `running` and claimed instead (owner `claim.node`, lease until
    /// `claim.lease_until_ms`, epoch [`FIRST_EPOCH`]), as if a `Claim` and a status change had
    /// followed in the same transaction.
    /// Refused with [`OpRejected::RunExists`](crate::OpRejected::RunExists) if the id is taken.
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
        /// its queue without checking [`QueuePolicy`](crate::QueuePolicy): a caller claims at creation only runs of
        /// queues it serves that have no limit (the engine does), else it creates the run
        /// unclaimed and a [`WriteOp::Claim`](crate::WriteOp::Claim) admits it.
        claim: Option<FirstClaim>,
        /// The run's task queue ([`DEFAULT_QUEUE`](crate::DEFAULT_QUEUE) for the default one).
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
    /// `expect` is set and a different hook holds it now. With `claim`, an accepted payload
    /// also claims its run when no node's lease on it is live ([`ClaimIfFree`]).
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
        /// Claim the run in the same transaction if no node holds it.
        claim: Option<crate::ClaimIfFree>,
        /// Commit time.
        at_ms: u64,
    },
    /// [`WriteOp::Resume`](crate::WriteOp::Resume) when an active hook holds `token`; when none does, the payload is
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
    /// [`WriteOp::Append`](crate::WriteOp::Append) of it does). Refused with `RunNotFound` / `RunFinished`.
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
    /// `workflow` with input `args`, whose `RunStarted` carries its [`ThreadInfo`](tether_core::event::ThreadInfo) (root = the
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
        /// The thread's task queue ([`DEFAULT_QUEUE`](crate::DEFAULT_QUEUE) for the default one).
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
