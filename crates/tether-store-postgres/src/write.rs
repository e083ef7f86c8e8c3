//! Group commit: a batch of [`WriteOp`]s applied in order in one transaction by the one
//! executor ([`tether_store::plan::batch`]); an op decides a refusal before it writes, so a
//! refused op leaves no trace (checked per op); the run rows an op writes are locked
//! (`FOR UPDATE`) first, so nodes sharing the database never hand out one `seq` twice. The
//! SQL of each op's rows is in `ops`, `hooks`, `signals` and `threads`.
//!
//! Round trips and statements are what a batch costs on PostgreSQL, so: the rows and hook
//! holders a batch names are locked and read with two statements up front (and reused by the
//! ops); journal entries, run updates and hook releases are kept in a write buffer and written
//! with one statement per kind ([`crate::buffer`]); writes whose answer no op needs are sent
//! without waiting for it ([`crate::pipeline`]). A batch of resumes whose runs were locked up
//! front waits for the server only at the start and at commit.

use std::time::Duration;

use deadpool_postgres::{Pool, Transaction};
use tether_store::plan::batch::apply_batch;
use tether_store::{OpResult, StoreError, WriteOp};

pub(crate) use crate::batch::Batch;
use crate::error::{pool_err, Ctx};

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

/// Apply every op in order with the one executor, then queue the notifications (sent by the
/// server at commit).
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
    let results = apply_batch(&mut batch, ops).await?;
    batch.finish(channel, instance).await?;
    Ok(results)
}
