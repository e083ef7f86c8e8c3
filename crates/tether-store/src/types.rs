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
    /// The node holding the run's lease, if any (see [`WriteOp::Claim`](crate::WriteOp::Claim)).
    pub owner: Option<String>,
    /// The run that started this one as a child run (`None`: not a child run).
    pub parent_run_id: Option<String>,
    /// The task queue the run is on ([`DEFAULT_QUEUE`](crate::DEFAULT_QUEUE) unless it was started on another):
    /// only nodes serving it claim the run (see [`QueuePolicy`](crate::QueuePolicy)).
    pub queue: String,
}

/// Proof of ownership a node attaches to its writes for a run: the node id and the epoch its
/// [`WriteOp::Claim`](crate::WriteOp::Claim) returned. A write whose fence no longer matches the run (another node
/// claimed it since) is refused with [`OpRejected::Fenced`](crate::OpRejected::Fenced), so a node that lost its lease
/// cannot commit for that run any more.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fence {
    /// The node id.
    pub node: String,
    /// The epoch of the claim.
    pub epoch: u64,
}

/// The claim a run is created with (see [`WriteOp::CreateRun`](crate::WriteOp::CreateRun)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirstClaim {
    /// The node that will run it.
    pub node: String,
    /// End of the lease.
    pub lease_until_ms: u64,
}

/// A claim a [`WriteOp::Resume`](crate::WriteOp::Resume) makes for `node` in the same
/// transaction when no node holds the run's lease: the node that takes the payload of a run
/// not live anywhere (evicted, or never loaded since a restart) needs no claim commit of its
/// own before rebuilding it. Decided by the same rules as a
/// [`WriteOp::Claim`](crate::WriteOp::Claim) (`crate::plan::batch`), queue admission included;
/// a claim those rules refuse is simply not made (the resume stands).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimIfFree {
    /// The node claiming.
    pub node: String,
    /// End of the lease.
    pub lease_until_ms: u64,
    /// The queues the node serves and their limits.
    pub queues: std::sync::Arc<crate::QueuePolicy>,
}

/// The claim a resume made ([`ClaimIfFree`]; [`crate::OpOutcome::Resumed`]'s `claimed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claimed {
    /// The run's new epoch: writes for the run carry it in their [`Fence`].
    pub epoch: u64,
    /// Whether another node owned the run before (its lease had ended).
    pub took_over: bool,
}

/// The epoch of a run's first claim (a run created unclaimed has epoch 0; every claim adds 1).
pub const FIRST_EPOCH: u64 = 1;

/// The lease columns a [`WriteOp::CreateRun`](crate::WriteOp::CreateRun) starts the run with.
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

/// The journal entry 1 a [`WriteOp::CreateRun`](crate::WriteOp::CreateRun) writes: the engine builds a run it just
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

/// How an [`WriteOp::Append`](crate::WriteOp::Append) changes the run's `wake_at`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WakeAt {
    /// Leave it as it is.
    #[default]
    Keep,
    /// Set it (or clear it with `None`).
    Set(Option<u64>),
}

/// How a terminal journal entry leaves its run (the contract of `RunCompleted`, `RunFailed`,
/// `RunCancelled` in [`WriteOp::Append`](crate::WriteOp::Append)); every backend applies it the same way.
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
