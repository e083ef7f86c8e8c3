//! Group commit: a batch of [`WriteOp`]s applied in order in one transaction; an op decides a
//! refusal before it writes, so a refused op leaves no trace (checked per op); the run rows an op writes are locked
//! (`FOR UPDATE`) first, so nodes sharing the database never hand out one `seq` twice. The
//! ops themselves live in `journal`, `hooks` and `lease`.
//!
//! Round trips and statements are what a batch costs on PostgreSQL, so: the rows and hook
//! holders a batch names are locked and read with two statements up front (and reused by the
//! ops); journal entries, run updates and hook releases are kept in a write buffer and written
//! with one statement per kind ([`crate::buffer`]); writes whose answer no op needs are sent
//! without waiting for it ([`crate::pipeline`]). A batch of resumes whose runs were locked up
//! front waits for the server only at the start and at commit.

use std::time::Duration;

use deadpool_postgres::{Pool, Transaction};
use tether_core::event::EventBody;
use tether_store::{OpResult, StoreError, WakeAt, WriteOp};

pub(crate) use crate::batch::Batch;
use crate::error::{pool_err, Ctx};
use crate::journal::{self, Change};
use crate::lease;
use crate::threads;
use tether_store::plan::resume::{self, Delivery};

/// How many times a batch the server aborted to break a deadlock (or a serialization
/// conflict) with another node is run again before its error is returned.
const MAX_ATTEMPTS: u32 = 5;

/// Apply `ops` in one transaction on a pooled connection, announcing on `channel` the runs
/// whose journal grew. A refusal rolls back that op only; a database error rolls back the
/// whole batch and is returned (after a few new attempts when the server aborted the batch to
/// break a deadlock with another writer).
pub(crate) async fn commit(
    pool: &Pool,
    ops: &[WriteOp],
    channel: &str,
    instance: &str,
) -> Result<Vec<OpResult>, StoreError> {
    let mut attempt = 1;
    loop {
        let mut client = pool.get().await.map_err(|e| pool_err("commit", &e))?;
        match run_batch(&mut client, ops, channel, instance).await {
            Ok(results) => return Ok(results),
            Err(error @ StoreError::Conflict(_)) if attempt < MAX_ATTEMPTS => {
                tracing::debug!(%error, attempt, "batch aborted by a conflict with another writer; running it again");
                drop(client);
                tokio::time::sleep(Duration::from_millis(u64::from(attempt * attempt) * 5)).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// One attempt at a batch.
async fn run_batch(
    client: &mut deadpool_postgres::Client,
    ops: &[WriteOp],
    channel: &str,
    instance: &str,
) -> Result<Vec<OpResult>, StoreError> {
    let tx = client.transaction().await.ctx("begin write transaction")?;
    let applied = apply_all(&tx, ops, channel, instance).await;
    match applied {
        Ok(results) => {
            tx.commit().await.ctx("commit write transaction")?;
            Ok(results)
        }
        Err(e) => {
            // Best effort: the server rolls back on its own if the connection is gone.
            if let Err(rollback) = tx.rollback().await {
                tracing::debug!(error = %rollback, "rollback of a failed batch failed");
            }
            Err(e)
        }
    }
}

/// Apply every op in order, then queue the notifications (sent by the server at commit).
async fn apply_all(
    tx: &Transaction<'_>,
    ops: &[WriteOp],
    channel: &str,
    instance: &str,
) -> Result<Vec<OpResult>, StoreError> {
    let mut batch = Batch::new(tx);
    batch.prelock(ops).await?;
    // No savepoint per op: every op decides a refusal from reads (and row locks), before it
    // writes. A savepoint would cost a round trip per op and a subtransaction per written op
    // (past 64 of them, every snapshot in the database gets slower). Checked by `end_op`: a
    // refused op that wrote fails the whole batch rather than keep a trace of the refused op.
    // Row locks a refused op took stay held until the batch ends, which is harmless.
    let mut results = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        if i > 0 {
            tether_store::crash_point!("store.mid_batch");
        }
        let writes_before = batch.begin_op();
        let result = apply(&mut batch, op).await?;
        batch.end_op(op, &result, writes_before)?;
        results.push(result);
    }
    batch.finish(channel, instance).await?;
    Ok(results)
}

/// Apply one op.
async fn apply(b: &mut Batch<'_, '_>, op: &WriteOp) -> Result<OpResult, StoreError> {
    match op {
        WriteOp::CreateRun {
            run_id,
            workflow,
            input,
            at_ms,
            claim,
        } => journal::create_run(b, run_id, workflow, input, *at_ms, claim.as_ref()).await,
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
            journal::append(b, run_id, events, change).await
        }
        WriteOp::Resume {
            token,
            payload,
            idempotency_key,
            expect,
            at_ms,
        } => {
            let delivery = Delivery {
                token,
                payload,
                key: idempotency_key.as_deref(),
                expect: expect.as_ref(),
                at_ms: *at_ms,
            };
            resume::resume(b, delivery).await
        }
        WriteOp::RequestCancel {
            run_id,
            reason,
            at_ms,
        } => {
            let change = Change {
                status: None,
                wake_at: WakeAt::Keep,
                fence: None,
                at_ms: *at_ms,
            };
            let cancel = [EventBody::CancelRequested {
                reason: reason.clone(),
            }];
            journal::append(b, run_id, &cancel, change).await
        }
        WriteOp::MarkBlocked {
            run_id,
            error,
            fence,
            at_ms,
        } => journal::mark_blocked(b, run_id, error, fence.as_ref(), *at_ms).await,
        WriteOp::Checkpoint {
            run_id,
            applied_seq,
        } => journal::checkpoint(b, run_id, *applied_seq).await,
        WriteOp::Claim {
            run_id,
            node,
            lease_until_ms,
            now_ms,
        } => lease::claim(b, run_id, node, *lease_until_ms, *now_ms).await,
        WriteOp::Release { run_id, fence } => lease::release(b, run_id, fence).await,
        WriteOp::RenewLeases {
            node,
            lease_until_ms,
        } => lease::renew(b, node, *lease_until_ms).await,
        WriteOp::Signal {
            signal_id,
            payload,
            at_ms,
        } => tether_store::plan::signal::signal_op(b, signal_id, payload, *at_ms).await,
        WriteOp::SpawnHook {
            run_id,
            hook_id,
            workflow,
            args,
            retry,
            at_ms,
        } => {
            let spawn = threads::SpawnHookOp {
                run_id,
                hook_id,
                workflow,
                args,
                retry,
                at_ms: *at_ms,
            };
            threads::spawn_hook(b, spawn).await
        }
    }
}
