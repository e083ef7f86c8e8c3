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
//! without waiting for it ([`crate::pipeline`]), and so are `BEGIN` (ahead of the first
//! statement) and `COMMIT` (behind the last). A batch of resumes whose runs were locked up
//! front waits for the server twice: for the lock, and for the replies up to the commit.

use std::time::Duration;

use deadpool_postgres::{Client, Pool};
use tether_store::plan::batch::apply_batch;
use tether_store::{OpResult, StoreError, WriteOp};

pub(crate) use crate::batch::Batch;
use crate::error::pool_err;

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
        let client = pool.get().await.map_err(|e| pool_err("commit", &e))?;
        match run_batch(client, ops, channel, instance).await {
            Ok(results) => return Ok(results),
            Err(error @ StoreError::Conflict(_)) if attempt < MAX_ATTEMPTS => {
                tracing::debug!(%error, attempt, "batch aborted by a conflict with another writer; running it again");
                tokio::time::sleep(Duration::from_millis(u64::from(attempt * attempt) * 5)).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// One attempt at a batch, in a transaction on `client`.
async fn run_batch(
    client: Client,
    ops: &[WriteOp],
    channel: &str,
    instance: &str,
) -> Result<Vec<OpResult>, StoreError> {
    let mut conn = InTransaction(Some(client));
    let Some(client) = conn.0.as_deref() else {
        return Err(StoreError::unavailable("the batch lost its connection"));
    };
    let mut batch = Batch::new(client);
    let applied = apply_all(&mut batch, ops, channel, instance).await;
    let commit_sent = batch.commit_sent();
    drop(batch);
    if applied.is_ok() || commit_sent {
        // The transaction is over on the server: committed, or rolled back at the `COMMIT`
        // (a statement before it failed, or the commit did).
        conn.release();
    } else {
        conn.roll_back().await;
    }
    applied
}

/// Apply every op in order with the one executor, then send the notifications (sent by the
/// server at commit) and the `COMMIT`.
async fn apply_all(
    batch: &mut Batch<'_>,
    ops: &[WriteOp],
    channel: &str,
    instance: &str,
) -> Result<Vec<OpResult>, StoreError> {
    batch.begin().await?;
    batch.prelock(ops).await?;
    // No savepoint per op: every op decides a refusal from reads (and row locks), before it
    // writes. A savepoint would cost a round trip per op and a subtransaction per written op
    // (past 64 of them, every snapshot in the database gets slower). Checked by `end_op`: a
    // refused op that wrote fails the whole batch rather than keep a trace of the refused op.
    // Row locks a refused op took stay held until the batch ends, which is harmless.
    let results = apply_batch(batch, ops).await?;
    batch.finish(channel, instance).await?;
    Ok(results)
}

/// A pooled connection that may have a transaction open. Dropped before [`release`] (a batch
/// whose future was dropped half way, a panic, a rollback that failed), it takes the connection
/// out of the pool and closes it, so that no later batch inherits the open transaction: the
/// server rolls it back when the connection goes.
///
/// [`release`]: InTransaction::release
struct InTransaction(Option<Client>);

impl InTransaction {
    /// The transaction is over: the connection goes back to the pool.
    fn release(&mut self) {
        self.0.take();
    }

    /// End the open transaction with `ROLLBACK` and release the connection; if the rollback
    /// fails, the connection is left to be closed (the server then rolls back on its own).
    async fn roll_back(&mut self) {
        let Some(client) = self.0.as_deref() else {
            return;
        };
        match client.batch_execute("ROLLBACK").await {
            Ok(()) => self.release(),
            Err(error) => tracing::debug!(%error, "rollback of a failed batch failed"),
        }
    }
}

impl Drop for InTransaction {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            drop(deadpool_postgres::Object::take(client));
        }
    }
}
