//! Group commit on SQLite: a batch of [`WriteOp`]s applied in order in one immediate
//! transaction by the one executor ([`tether_store::plan::batch`]), with this connection as
//! its [`BatchBackend`]: the SQL of each row primitive. Every op decides whether it is refused
//! from reads alone, before it writes anything, so a refused op leaves no trace without a
//! savepoint per op (checked by [`BatchBackend::end_op`] on the connection's change count).

use futures::executor::block_on;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde_json::Value;
use tether_core::event::{ErrorInfo, Event, EventBody};
use tether_store::plan::batch::{apply_batch, BatchBackend};
use tether_store::plan::{
    self, AppendPlan, NewThread, QueueBackend, QueueLoad, RunChange, RunQueue, RunRow,
};
use tether_store::{Ending, Fence, FirstClaim, OpRejected, OpResult, StoreError, WriteOp};

use crate::append::Tx;
use crate::error::Ctx;
use crate::rows::{encode_body, encode_error_info, encode_value, parse_status};
use crate::threads;

/// Apply `ops` in one transaction. A logical refusal rolls back that op only; a database error
/// rolls back the whole batch and is returned.
pub(crate) fn commit(
    conn: &mut Connection,
    ops: Vec<WriteOp>,
) -> Result<Vec<OpResult>, StoreError> {
    if !conn.is_autocommit() {
        // A previous batch failed in a way that left its transaction open: drop it.
        conn.execute_batch("ROLLBACK")
            .ctx("roll back a stale transaction")?;
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .ctx("begin write transaction")?;
    // SQLite never pends: the executor's future finishes on its first poll.
    let results = block_on(apply_batch(&mut Tx(&tx), &ops))?;
    tx.commit().ctx("commit write transaction")?;
    Ok(results)
}

impl BatchBackend for Tx<'_> {
    fn begin_op(&mut self) -> u64 {
        self.0.total_changes()
    }

    fn end_op(
        &mut self,
        op: &WriteOp,
        result: &OpResult,
        writes_before: u64,
    ) -> Result<(), StoreError> {
        if result.is_err() && self.0.total_changes() != writes_before {
            return Err(StoreError::corrupt(format!(
                "a refused op ({op:?}) changed rows; the batch was rolled back (a bug in \
                 tether-store-sqlite: refusals must be decided before writing)"
            )));
        }
        Ok(())
    }

    async fn insert_run(
        &mut self,
        run_id: &str,
        input: &Value,
        claim: Option<&FirstClaim>,
        queue: &str,
        started: &Event,
    ) -> Result<bool, StoreError> {
        let EventBody::RunStarted { workflow, .. } = &started.body else {
            return Err(StoreError::corrupt(
                "a run's first entry must be RunStarted",
            ));
        };
        let input_json = encode_value(input, "run input")?;
        let row = FirstClaim::new_run_row(claim);
        let inserted = self
            .0
            .prepare_cached(
                "INSERT INTO runs (id, workflow, status, input, created_at, updated_at, last_seq,
                                   owner, lease_until, epoch, queue, admitted_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, 1, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (id) DO NOTHING",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    run_id,
                    workflow,
                    row.status.as_str(),
                    input_json,
                    started.at_ms,
                    row.owner,
                    row.lease_until_ms,
                    row.epoch,
                    queue,
                    claim.map(|_| started.at_ms)
                ])
            })
            .ctx("insert run")?;
        if inserted == 0 {
            return Ok(false);
        }
        insert_event(self.0, run_id, started)?;
        Ok(true)
    }

    async fn write_append(
        &mut self,
        run_id: &str,
        run: &RunRow,
        plan: &AppendPlan,
        change: RunChange,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        let conn = self.0;
        for event in &plan.written {
            insert_event(conn, run_id, event)?;
        }
        let seq = plan.last_seq(run.last_seq);
        if let Some(end) = &plan.ending {
            return finish_run(conn, run_id, end, seq, at_ms);
        }
        // Name only the columns that change: SQLite rewrites the entry of every index on a
        // column the UPDATE names, changed or not (status and wake_at are indexed).
        let result = match (change.status, change.wake_at) {
            (None, None) => conn
                .prepare_cached("UPDATE runs SET last_seq = ?2, updated_at = ?3 WHERE id = ?1")
                .and_then(|mut stmt| stmt.execute(params![run_id, seq, at_ms])),
            (Some(status), None) => conn
                .prepare_cached(
                    "UPDATE runs SET status = ?2, last_seq = ?3, updated_at = ?4 WHERE id = ?1",
                )
                .and_then(|mut stmt| stmt.execute(params![run_id, status.as_str(), seq, at_ms])),
            (None, Some(wake_at)) => conn
                .prepare_cached(
                    "UPDATE runs SET wake_at = ?2, last_seq = ?3, updated_at = ?4 WHERE id = ?1",
                )
                .and_then(|mut stmt| stmt.execute(params![run_id, wake_at, seq, at_ms])),
            (Some(status), Some(wake_at)) => conn
                .prepare_cached(
                    "UPDATE runs SET status = ?2, wake_at = ?3, last_seq = ?4, updated_at = ?5
                     WHERE id = ?1",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![run_id, status.as_str(), wake_at, seq, at_ms])
                }),
        };
        result.ctx("update run")?;
        Ok(())
    }

    async fn write_blocked(
        &mut self,
        run_id: &str,
        error: &ErrorInfo,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        let error = encode_error_info(error)?;
        self.0
            .prepare_cached("UPDATE runs SET error = ?2, updated_at = ?3 WHERE id = ?1")
            .and_then(|mut stmt| stmt.execute(params![run_id, error, at_ms]))
            .ctx("mark run blocked")?;
        Ok(())
    }

    async fn checkpoint(&mut self, run_id: &str, applied_seq: u64) -> Result<bool, StoreError> {
        let n = self
            .0
            .prepare_cached("UPDATE runs SET applied_seq = MAX(applied_seq, ?2) WHERE id = ?1")
            .and_then(|mut stmt| stmt.execute(params![run_id, applied_seq as i64]))
            .ctx("record checkpoint")?;
        Ok(n > 0)
    }

    async fn write_claim(
        &mut self,
        run_id: &str,
        node: &str,
        lease_until_ms: u64,
        epoch: u64,
        admitted_at: Option<u64>,
    ) -> Result<(), StoreError> {
        let result = match admitted_at {
            None => self
                .0
                .prepare_cached(
                    "UPDATE runs SET owner = ?2, lease_until = ?3, epoch = ?4 WHERE id = ?1",
                )
                .and_then(|mut stmt| stmt.execute(params![run_id, node, lease_until_ms, epoch])),
            Some(at) => self
                .0
                .prepare_cached(
                    "UPDATE runs SET owner = ?2, lease_until = ?3, epoch = ?4, admitted_at = ?5
                     WHERE id = ?1",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![run_id, node, lease_until_ms, epoch, at])
                }),
        };
        result.ctx("claim run")?;
        Ok(())
    }

    async fn release(&mut self, run_id: &str, fence: &Fence) -> Result<bool, StoreError> {
        if read_run(self.0, run_id)?.is_none() {
            return Ok(false);
        }
        self.0
            .prepare_cached(
                "UPDATE runs SET owner = NULL, lease_until = NULL
                 WHERE id = ?1 AND owner = ?2 AND epoch = ?3",
            )
            .and_then(|mut stmt| stmt.execute(params![run_id, fence.node, fence.epoch]))
            .ctx("release run")?;
        Ok(true)
    }

    async fn renew(&mut self, node: &str, lease_until_ms: u64) -> Result<u64, StoreError> {
        let count = self
            .0
            .prepare_cached("UPDATE runs SET lease_until = ?2 WHERE owner = ?1")
            .and_then(|mut stmt| stmt.execute(params![node, lease_until_ms]))
            .ctx("renew leases")?;
        Ok(count as u64)
    }

    async fn root_of(&mut self, run_id: &str) -> Result<String, StoreError> {
        threads::root_of(self.0, run_id)
    }

    async fn insert_thread(&mut self, thread: NewThread<'_>) -> Result<Option<Event>, StoreError> {
        threads::create_thread(self.0, thread)
    }
}

impl QueueBackend for Tx<'_> {
    async fn run_queue(&mut self, run_id: &str) -> Result<Option<RunQueue>, StoreError> {
        self.0
            .prepare_cached("SELECT queue, admitted_at FROM runs WHERE id = ?1")
            .and_then(|mut stmt| {
                stmt.query_row([run_id], |r| {
                    Ok(RunQueue {
                        queue: r.get(0)?,
                        admitted_at: r.get(1)?,
                    })
                })
                .optional()
            })
            .ctx("load run queue")
    }

    async fn queue_load(
        &mut self,
        queue: &str,
        since_ms: Option<u64>,
    ) -> Result<QueueLoad, StoreError> {
        // One writer per file: the immediate transaction is the queue's lock.
        let running: u64 = self
            .0
            .prepare_cached(
                "SELECT COUNT(*) FROM runs
                 WHERE queue = ?1 AND admitted_at IS NOT NULL
                   AND status <> 'completed' AND status <> 'failed' AND status <> 'cancelled'",
            )
            .and_then(|mut stmt| stmt.query_row([queue], |r| r.get(0)))
            .ctx("count running runs of a queue")?;
        let admitted_since: u64 = match since_ms {
            None => 0,
            Some(since) => self
                .0
                .prepare_cached("SELECT COUNT(*) FROM runs WHERE queue = ?1 AND admitted_at >= ?2")
                .and_then(|mut stmt| {
                    stmt.query_row(params![queue, crate::read::bound(since)], |r| r.get(0))
                })
                .ctx("count recent admissions of a queue")?,
        };
        Ok(QueueLoad {
            running,
            admitted_since,
        })
    }
}

/// The run's row as the planner reads it, `None` if there is no such run.
pub(crate) fn read_run(conn: &Connection, run_id: &str) -> Result<Option<RunRow>, StoreError> {
    type Row = (
        String,
        u64,
        Option<u64>,
        Option<String>,
        Option<u64>,
        u64,
        Option<String>,
        Option<u32>,
    );
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT status, last_seq, wake_at, owner, lease_until, epoch, parent_run_id, parent_cmd
             FROM runs WHERE id = ?1",
        )
        .and_then(|mut stmt| {
            stmt.query_row([run_id], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            })
            .optional()
        })
        .ctx("load run")?;
    let Some((status, last_seq, wake_at, owner, lease_until, epoch, parent, parent_cmd)) = row
    else {
        return Ok(None);
    };
    Ok(Some(RunRow {
        status: parse_status(&status, run_id)?,
        last_seq,
        wake_at,
        owner,
        lease_until,
        epoch,
        parent: parent
            .zip(parent_cmd)
            .map(|(run_id, cmd)| tether_store::plan::ParentLink { run_id, cmd }),
    }))
}

/// The run if it exists and is not finished, else the refusal.
pub(crate) fn open_run(
    conn: &Connection,
    run_id: &str,
) -> Result<Result<RunRow, OpRejected>, StoreError> {
    Ok(plan::open(read_run(conn, run_id)?, run_id, None))
}

/// Write one journal entry.
pub(crate) fn insert_event(
    conn: &Connection,
    run_id: &str,
    event: &Event,
) -> Result<(), StoreError> {
    let body = encode_body(&event.body)?;
    conn.prepare_cached(
        "INSERT INTO events (run_id, seq, at, kind, body) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            run_id,
            event.seq,
            event.at_ms,
            event.body.kind(),
            body
        ])
    })
    .ctx("insert journal entry")?;
    Ok(())
}

/// Set the terminal status, output and error, clear `wake_at` and release every hook.
fn finish_run(
    conn: &Connection,
    run_id: &str,
    end: &Ending,
    last_seq: u64,
    at_ms: u64,
) -> Result<(), StoreError> {
    let output = match &end.output {
        Some(v) => Some(encode_value(v, "run output")?),
        None => None,
    };
    let error = match &end.error {
        Some(e) => Some(encode_error_info(e)?),
        None => None,
    };
    conn.prepare_cached(
        "UPDATE runs SET status = ?2, output = ?3, error = ?4, wake_at = NULL,
                         last_seq = ?5, updated_at = ?6, owner = NULL, lease_until = NULL
         WHERE id = ?1",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            run_id,
            end.status.as_str(),
            output,
            error,
            last_seq,
            at_ms
        ])
    })
    .ctx("finish run")?;
    crate::hooks::release_hooks_of_run(conn, run_id, at_ms)?;
    conn.prepare_cached("DELETE FROM signal_waits WHERE run_id = ?1")
        .and_then(|mut stmt| stmt.execute([run_id]))
        .ctx("drop signal waits of finished run")?;
    Ok(())
}

/// Append one delivery entry (a payload, a signal) to a run that is not the one being written.
pub(crate) fn append_delivery(
    conn: &Connection,
    run_id: &str,
    body: EventBody,
    at_ms: u64,
) -> Result<Result<Event, OpRejected>, StoreError> {
    let run = match open_run(conn, run_id)? {
        Ok(run) => run,
        Err(refused) => return Ok(Err(refused)),
    };
    let event = Event {
        seq: run.last_seq + 1,
        at_ms,
        body,
    };
    insert_event(conn, run_id, &event)?;
    conn.prepare_cached("UPDATE runs SET last_seq = ?2, updated_at = ?3 WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute(params![run_id, event.seq, at_ms]))
        .ctx("update run")?;
    Ok(Ok(event))
}
