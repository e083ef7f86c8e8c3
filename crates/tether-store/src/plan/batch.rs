//! The one executor of a group commit: walks a batch's ops in order, decides each with the
//! planner and has the backend's transaction ([`BatchBackend`]) read and write the rows. A
//! refused op writes nothing (checked after each op by the backend's write count); every
//! backend runs this same loop, crash points included.

use serde_json::Value;
use tether_core::event::{ErrorInfo, Event, EventBody, ThreadInfo};
use tether_core::RetryPolicy;

use super::append::{plan_append, AppendBackend, AppendPlan, NewThread};
use super::keep::{self, PendingBackend};
use super::queue::{self, QueueBackend};
use super::resume::{self, Delivery, ResumeBackend};
use super::run::{self, RunChange, RunRow};
use super::schedule::{self, ScheduleBackend};
use super::signal::{self, SignalBackend};
use crate::{
    Claimed, Fence, FirstClaim, OpOutcome, OpRejected, OpResult, StoreError, WakeAt, WriteOp,
};

/// A backend's write transaction, as the executor drives it: the row primitives of every op
/// (on top of those of appends, resumes and signals). Each is a few statements of SQL.
#[allow(async_fn_in_trait)] // generic use only: the caller's concrete future keeps its `Send`
pub trait BatchBackend:
    AppendBackend + ResumeBackend + SignalBackend + PendingBackend + ScheduleBackend + QueueBackend
{
    /// Before an op: a count of what the transaction has written so far.
    fn begin_op(&mut self) -> u64;

    /// After an op: fail the batch if the op was refused but wrote (`writes_before`: what
    /// [`BatchBackend::begin_op`] said), and forget whatever the backend cached about it.
    fn end_op(
        &mut self,
        op: &WriteOp,
        result: &OpResult,
        writes_before: u64,
    ) -> Result<(), StoreError>;

    /// Insert a new run on `queue` with the lease columns of `claim` (a claimed run is
    /// admitted at its creation time) and its entry 1 `started`; `false` (nothing written)
    /// when the id is taken.
    async fn insert_run(
        &mut self,
        run_id: &str,
        input: &Value,
        claim: Option<&FirstClaim>,
        queue: &str,
        started: &Event,
    ) -> Result<bool, StoreError>;

    /// Write an append's entries and update the run: its ending when the plan has one, else
    /// `last_seq`, `updated_at` and the columns in `change`.
    async fn write_append(
        &mut self,
        run_id: &str,
        run: &RunRow,
        plan: &AppendPlan,
        change: RunChange,
        at_ms: u64,
    ) -> Result<(), StoreError>;

    /// Record `error` on the run (status and journal unchanged).
    async fn write_blocked(
        &mut self,
        run_id: &str,
        error: &ErrorInfo,
        at_ms: u64,
    ) -> Result<(), StoreError>;

    /// Raise the run's checkpoint mark to `applied_seq` (never lower); `false` if there is no
    /// such run.
    async fn checkpoint(&mut self, run_id: &str, applied_seq: u64) -> Result<bool, StoreError>;

    /// Write a granted claim: owner, lease end, epoch, and the admission time when the claim
    /// admits the run to its queue (`admitted_at`).
    async fn write_claim(
        &mut self,
        run_id: &str,
        node: &str,
        lease_until_ms: u64,
        epoch: u64,
        admitted_at: Option<u64>,
    ) -> Result<(), StoreError>;

    /// Clear owner and lease if `fence` matches them; `false` if there is no such run.
    async fn release(&mut self, run_id: &str, fence: &Fence) -> Result<bool, StoreError>;

    /// Extend every lease of `node`; how many runs it holds.
    async fn renew(&mut self, node: &str, lease_until_ms: u64) -> Result<u64, StoreError>;

    /// The namespace (root run) of `run_id`, without locking its state.
    async fn root_of(&mut self, run_id: &str) -> Result<String, StoreError>;

    /// Create a hook thread and its entry 1; `None` (nothing written) when the id is taken.
    async fn insert_thread(&mut self, thread: NewThread<'_>) -> Result<Option<Event>, StoreError>;
}

/// Apply `ops` in order in the backend's transaction; one result per op. On `Err` the caller
/// rolls the transaction back.
pub async fn apply_batch<B: BatchBackend>(
    b: &mut B,
    ops: &[WriteOp],
) -> Result<Vec<OpResult>, StoreError> {
    let mut results = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        if i > 0 {
            crate::crash_point!("store.mid_batch");
        }
        // No savepoint per op: every op decides a refusal from reads, before it writes.
        let before = b.begin_op();
        let result = apply_op(b, op).await?;
        b.end_op(op, &result, before)?;
        results.push(result);
    }
    Ok(results)
}

/// Apply one op.
async fn apply_op<B: BatchBackend>(b: &mut B, op: &WriteOp) -> Result<OpResult, StoreError> {
    match op {
        WriteOp::CreateRun {
            run_id,
            workflow,
            input,
            at_ms,
            claim,
            queue,
        } => {
            let started = crate::run_started(workflow.clone(), input.clone(), *at_ms);
            if !b
                .insert_run(run_id, input, claim.as_ref(), queue, &started)
                .await?
            {
                return Ok(Err(OpRejected::RunExists {
                    run_id: run_id.clone(),
                }));
            }
            Ok(Ok(OpOutcome::Appended {
                run_id: run_id.clone(),
                events: vec![started],
            }))
        }
        WriteOp::Append {
            run_id,
            events,
            status,
            wake_at,
            fence,
            at_ms,
        } => {
            let change = Change {
                status: *status,
                wake_at: *wake_at,
                fence: fence.as_ref(),
                at_ms: *at_ms,
            };
            append(b, run_id, events.clone(), change).await
        }
        WriteOp::RequestCancel {
            run_id,
            reason,
            at_ms,
        } => {
            let cancel = vec![EventBody::CancelRequested {
                reason: reason.clone(),
            }];
            let change = Change {
                status: None,
                wake_at: WakeAt::Keep,
                fence: None,
                at_ms: *at_ms,
            };
            append(b, run_id, cancel, change).await
        }
        WriteOp::Resume {
            token,
            payload,
            idempotency_key,
            expect,
            claim,
            at_ms,
        } => {
            let delivery = Delivery {
                token,
                payload,
                key: idempotency_key.as_deref(),
                expect: expect.as_ref(),
                at_ms: *at_ms,
            };
            let (mut result, run) = resume::resume_row(b, delivery).await?;
            if let (
                Some(want),
                Some(run),
                Ok(OpOutcome::Resumed {
                    run_id,
                    lease_holder: None,
                    claimed,
                    ..
                }),
            ) = (claim, run, &mut result)
            {
                // Nobody holds the run: the node taking the payload claims it now, under the
                // claim's own rules; a refused claim leaves the resume as it is.
                let by = Claimer {
                    node: &want.node,
                    lease_until_ms: want.lease_until_ms,
                    now_ms: *at_ms,
                    queues: &want.queues,
                };
                if let Ok(epoch) = claim_run(b, run_id, Some(&run), by).await? {
                    *claimed = Some(Claimed {
                        epoch,
                        took_over: run.owner.as_deref().is_some_and(|o| o != want.node),
                    });
                }
            }
            Ok(result)
        }
        WriteOp::ResumeOrKeep {
            token,
            payload,
            idempotency_key,
            at_ms,
        } => {
            let delivery = Delivery {
                token,
                payload,
                key: idempotency_key.as_deref(),
                expect: None,
                at_ms: *at_ms,
            };
            keep::resume_or_keep(b, delivery).await
        }
        WriteOp::MarkBlocked {
            run_id,
            error,
            fence,
            at_ms,
        } => {
            let row = b.lock_run(run_id).await?;
            if let Err(refused) = run::fenced(row, run_id, fence.as_ref()) {
                return Ok(Err(refused));
            }
            b.write_blocked(run_id, error, *at_ms).await?;
            Ok(Ok(OpOutcome::Updated))
        }
        WriteOp::Checkpoint {
            run_id,
            applied_seq,
        } => Ok(if b.checkpoint(run_id, *applied_seq).await? {
            Ok(OpOutcome::Updated)
        } else {
            Err(not_found(run_id))
        }),
        WriteOp::Claim {
            run_id,
            node,
            lease_until_ms,
            now_ms,
            queues,
        } => {
            let row = b.lock_run(run_id).await?;
            let by = Claimer {
                node,
                lease_until_ms: *lease_until_ms,
                now_ms: *now_ms,
                queues,
            };
            Ok(claim_run(b, run_id, row.as_ref(), by)
                .await?
                .map(|epoch| OpOutcome::Claimed { epoch }))
        }
        WriteOp::Release { run_id, fence } => Ok(if b.release(run_id, fence).await? {
            Ok(OpOutcome::Updated)
        } else {
            Err(not_found(run_id))
        }),
        WriteOp::RenewLeases {
            node,
            lease_until_ms,
        } => {
            let count = b.renew(node, *lease_until_ms).await?;
            Ok(Ok(OpOutcome::Renewed { count }))
        }
        WriteOp::Signal {
            signal_id,
            payload,
            idempotency_key,
            at_ms,
        } => signal::signal_op(b, signal_id, payload, idempotency_key.as_deref(), *at_ms).await,
        WriteOp::SpawnHook {
            run_id,
            hook_id,
            workflow,
            args,
            retry,
            queue,
            at_ms,
        } => {
            let spawn = Spawn {
                hook_id,
                workflow,
                args,
                retry,
                queue,
                at_ms: *at_ms,
            };
            spawn_hook(b, run_id, spawn).await
        }
        WriteOp::Schedule(op) => schedule::schedule_op(b, op).await,
    }
}

/// Who claims a run, until when, by whose clock and under which queue policy.
struct Claimer<'a> {
    node: &'a str,
    lease_until_ms: u64,
    now_ms: u64,
    queues: &'a crate::QueuePolicy,
}

/// Claim `run_id` (`run`: its row, read and locked) for `by` — the one claim rule, for a
/// [`WriteOp::Claim`] and for a resume that claims ([`crate::ClaimIfFree`]): the lease
/// ([`run::claim`]), then queue admission ([`queue::admit`]), then the owner, lease and epoch
/// written. The new epoch, or the refusal (nothing written).
async fn claim_run<B: BatchBackend>(
    b: &mut B,
    run_id: &str,
    run: Option<&RunRow>,
    by: Claimer<'_>,
) -> Result<Result<u64, OpRejected>, StoreError> {
    let epoch = match run::claim(run, run_id, by.node, by.now_ms) {
        Ok(epoch) => epoch,
        Err(refused) => return Ok(Err(refused)),
    };
    let Some(run_queue) = b.run_queue(run_id).await? else {
        return Ok(Err(not_found(run_id)));
    };
    let admitted_at = match queue::admit(b, by.queues, run_id, &run_queue, by.now_ms).await? {
        Ok(admitted_at) => admitted_at,
        Err(refused) => return Ok(Err(refused)),
    };
    b.write_claim(run_id, by.node, by.lease_until_ms, epoch, admitted_at)
        .await?;
    Ok(Ok(epoch))
}

/// How an append changes the run besides its journal.
struct Change<'a> {
    status: Option<tether_core::RunStatus>,
    wake_at: WakeAt,
    fence: Option<&'a Fence>,
    at_ms: u64,
}

/// An append (or a cancel request): checks, the plan of its entries, the writes.
async fn append<B: BatchBackend>(
    b: &mut B,
    run_id: &str,
    events: Vec<EventBody>,
    change: Change<'_>,
) -> Result<OpResult, StoreError> {
    let row = b.lock_run(run_id).await?;
    let run = match run::open(row, run_id, change.fence) {
        Ok(run) => run,
        Err(refused) => return Ok(Err(refused)),
    };
    let plan = plan_append(b, run_id, events, &run, change.at_ms).await?;
    let columns = RunChange::of(&run, change.status, change.wake_at);
    b.write_append(run_id, &run, &plan, columns, change.at_ms)
        .await?;
    Ok(Ok(OpOutcome::Appended {
        run_id: run_id.to_owned(),
        events: plan.written,
    }))
}

/// A [`WriteOp::SpawnHook`]'s thread.
struct Spawn<'a> {
    hook_id: &'a str,
    workflow: &'a str,
    args: &'a Value,
    retry: &'a RetryPolicy,
    queue: &'a str,
    at_ms: u64,
}

/// A hook thread started from outside in the namespace of `run_id`.
async fn spawn_hook<B: BatchBackend>(
    b: &mut B,
    run_id: &str,
    spawn: Spawn<'_>,
) -> Result<OpResult, StoreError> {
    let Spawn {
        hook_id,
        workflow,
        args,
        retry,
        queue,
        at_ms,
    } = spawn;
    let row = b.lock_run(run_id).await?;
    if let Err(refused) = run::open(row, run_id, None) {
        return Ok(Err(refused));
    }
    let info = ThreadInfo {
        root_run: b.root_of(run_id).await?,
        parent_run: run_id.to_owned(),
        retry: retry.clone(),
        fail_signal: None,
    };
    let thread = NewThread {
        hook_id,
        workflow,
        args,
        info,
        queue,
        at_ms,
    };
    Ok(match b.insert_thread(thread).await? {
        Some(event) => Ok(OpOutcome::Appended {
            run_id: hook_id.to_owned(),
            events: vec![event],
        }),
        None => Err(OpRejected::RunExists {
            run_id: hook_id.to_owned(),
        }),
    })
}

fn not_found(run_id: &str) -> OpRejected {
    OpRejected::RunNotFound {
        run_id: run_id.to_owned(),
    }
}
