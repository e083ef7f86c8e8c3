//! Group commit: a batch of [`WriteOp`]s applied in order in one immediate transaction. Every
//! op decides whether it is refused from reads alone, before it writes anything, so a refused
//! op leaves no trace without a savepoint per op (checked in [`commit`]).

use futures::executor::block_on;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde_json::Value;
use tether_core::event::{ErrorInfo, Event, EventBody, RunStatus};
use tether_store::plan::{self, plan_append, RunChange, RunRow};
use tether_store::{
    run_started, Ending, Fence, FirstClaim, OpOutcome, OpRejected, OpResult, StoreError, WakeAt,
    WriteOp,
};

use crate::append::Tx;
use crate::error::Ctx;
use crate::hooks::resume;
use crate::lease::{check_fence, claim, release, renew};
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
    let mut results = Vec::with_capacity(ops.len());
    for (i, op) in ops.into_iter().enumerate() {
        if i > 0 {
            tether_store::crash_point!("store.mid_batch");
        }
        // No savepoint per op: every op decides a refusal from reads, before it writes (a
        // savepoint would copy each page the op touches into a sub-journal). Checked here: a
        // refused op that changed rows is a bug, and fails the whole batch rather than keep a
        // trace of the refused op.
        let before = tx.total_changes();
        let what = op_name(&op);
        let result = apply(&tx, op)?;
        if result.is_err() && tx.total_changes() != before {
            return Err(StoreError::corrupt(format!(
                "a refused {what} op changed rows; the batch was rolled back (a bug in \
                 tether-store-sqlite: refusals must be decided before writing)"
            )));
        }
        results.push(result);
    }
    tx.commit().ctx("commit write transaction")?;
    Ok(results)
}

/// The op's kind, for error messages.
fn op_name(op: &WriteOp) -> &'static str {
    match op {
        WriteOp::CreateRun { .. } => "create_run",
        WriteOp::Append { .. } => "append",
        WriteOp::Resume { .. } => "resume",
        WriteOp::RequestCancel { .. } => "request_cancel",
        WriteOp::MarkBlocked { .. } => "mark_blocked",
        WriteOp::Checkpoint { .. } => "checkpoint",
        WriteOp::Claim { .. } => "claim",
        WriteOp::Release { .. } => "release",
        WriteOp::RenewLeases { .. } => "renew_leases",
        WriteOp::Signal { .. } => "signal",
        WriteOp::SpawnHook { .. } => "spawn_hook",
    }
}

/// Apply one op.
fn apply(conn: &Connection, op: WriteOp) -> Result<OpResult, StoreError> {
    match op {
        WriteOp::CreateRun {
            run_id,
            workflow,
            input,
            at_ms,
            claim,
        } => create_run(conn, run_id, workflow, input, at_ms, claim.as_ref()),
        WriteOp::Append {
            run_id,
            events,
            status,
            wake_at,
            fence,
            at_ms,
        } => append(conn, run_id, events, status, wake_at, fence.as_ref(), at_ms),
        WriteOp::Resume {
            token,
            payload,
            idempotency_key,
            expect,
            at_ms,
        } => resume(conn, token, payload, idempotency_key, expect, at_ms),
        WriteOp::RequestCancel {
            run_id,
            reason,
            at_ms,
        } => append(
            conn,
            run_id,
            vec![EventBody::CancelRequested { reason }],
            None,
            WakeAt::Keep,
            None,
            at_ms,
        ),
        WriteOp::MarkBlocked {
            run_id,
            error,
            fence,
            at_ms,
        } => match check_fence(conn, &run_id, fence.as_ref())? {
            Some(refused) => Ok(Err(refused)),
            None => mark_blocked(conn, run_id, &error, at_ms),
        },
        WriteOp::Claim {
            run_id,
            node,
            lease_until_ms,
            now_ms,
        } => claim(conn, run_id, &node, lease_until_ms, now_ms),
        WriteOp::Release { run_id, fence } => release(conn, run_id, &fence),
        WriteOp::RenewLeases {
            node,
            lease_until_ms,
        } => renew(conn, &node, lease_until_ms),
        WriteOp::Checkpoint {
            run_id,
            applied_seq,
        } => checkpoint(conn, run_id, applied_seq),
        WriteOp::Signal {
            signal_id,
            payload,
            at_ms,
        } => block_on(plan::signal::signal_op(
            &mut Tx(conn),
            &signal_id,
            &payload,
            at_ms,
        )),
        WriteOp::SpawnHook {
            run_id,
            hook_id,
            workflow,
            args,
            retry,
            at_ms,
        } => threads::spawn_hook(
            conn,
            threads::SpawnHookOp {
                run_id,
                hook_id,
                workflow,
                args,
                retry,
                at_ms,
            },
        ),
    }
}

/// The run's row as the planner reads it, `None` if there is no such run.
pub(crate) fn read_run(conn: &Connection, run_id: &str) -> Result<Option<RunRow>, StoreError> {
    type Row = (String, u64, Option<u64>, Option<String>, Option<u64>, u64);
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT status, last_seq, wake_at, owner, lease_until, epoch FROM runs WHERE id = ?1",
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
                ))
            })
            .optional()
        })
        .ctx("load run")?;
    let Some((status, last_seq, wake_at, owner, lease_until, epoch)) = row else {
        return Ok(None);
    };
    Ok(Some(RunRow {
        status: parse_status(&status, run_id)?,
        last_seq,
        wake_at,
        owner,
        lease_until,
        epoch,
    }))
}

/// The run if it exists and is not finished, else the refusal.
pub(crate) fn open_run(
    conn: &Connection,
    run_id: &str,
) -> Result<Result<RunRow, OpRejected>, StoreError> {
    open_fenced_run(conn, run_id, None)
}

/// The run if the planner lets an op write to it (it exists, `fence` holds, it is not
/// finished), else the refusal.
fn open_fenced_run(
    conn: &Connection,
    run_id: &str,
    fence: Option<&Fence>,
) -> Result<Result<RunRow, OpRejected>, StoreError> {
    let run = read_run(conn, run_id)?;
    Ok(plan::open(run, run_id, fence))
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

fn create_run(
    conn: &Connection,
    run_id: String,
    workflow: String,
    input: Value,
    at_ms: u64,
    claim: Option<&FirstClaim>,
) -> Result<OpResult, StoreError> {
    let input_json = encode_value(&input, "run input")?;
    let row = FirstClaim::new_run_row(claim);
    let inserted = conn
        .prepare_cached(
            "INSERT INTO runs (id, workflow, status, input, created_at, updated_at, last_seq,
                               owner, lease_until, epoch)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, 1, ?6, ?7, ?8)
             ON CONFLICT (id) DO NOTHING",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                run_id,
                workflow,
                row.status.as_str(),
                input_json,
                at_ms,
                row.owner,
                row.lease_until_ms,
                row.epoch
            ])
        })
        .ctx("insert run")?;
    if inserted == 0 {
        return Ok(Err(OpRejected::RunExists { run_id }));
    }
    let event = run_started(workflow, input, at_ms);
    insert_event(conn, &run_id, &event)?;
    Ok(Ok(OpOutcome::Appended {
        run_id,
        events: vec![event],
    }))
}

fn append(
    conn: &Connection,
    run_id: String,
    events: Vec<EventBody>,
    status: Option<RunStatus>,
    wake_at: WakeAt,
    fence: Option<&Fence>,
    at_ms: u64,
) -> Result<OpResult, StoreError> {
    let run = match open_fenced_run(conn, &run_id, fence)? {
        Ok(run) => run,
        Err(refused) => return Ok(Err(refused)),
    };
    let planned = block_on(plan_append(
        &mut Tx(conn),
        &run_id,
        events,
        run.last_seq,
        at_ms,
    ))?;
    for event in &planned.written {
        insert_event(conn, &run_id, event)?;
    }
    let seq = planned.last_seq(run.last_seq);
    match planned.ending {
        Some(end) => finish_run(conn, &run_id, &end, seq, at_ms)?,
        None => {
            // Name only the columns that change: SQLite rewrites the entry of every index on
            // a column the UPDATE names, changed or not (status and wake_at are indexed).
            let change = RunChange::of(&run, status, wake_at);
            let result = match (change.status, change.wake_at) {
                (None, None) => conn
                    .prepare_cached("UPDATE runs SET last_seq = ?2, updated_at = ?3 WHERE id = ?1")
                    .and_then(|mut stmt| stmt.execute(params![run_id, seq, at_ms])),
                (Some(status), None) => conn
                    .prepare_cached(
                        "UPDATE runs SET status = ?2, last_seq = ?3, updated_at = ?4 WHERE id = ?1",
                    )
                    .and_then(|mut stmt| {
                        stmt.execute(params![run_id, status.as_str(), seq, at_ms])
                    }),
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
        }
    }
    Ok(Ok(OpOutcome::Appended {
        run_id,
        events: planned.written,
    }))
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
    conn.prepare_cached("DELETE FROM hooks WHERE run_id = ?1")
        .and_then(|mut stmt| stmt.execute([run_id]))
        .ctx("release hooks of finished run")?;
    conn.prepare_cached("DELETE FROM signal_waits WHERE run_id = ?1")
        .and_then(|mut stmt| stmt.execute([run_id]))
        .ctx("drop signal waits of finished run")?;
    Ok(())
}

fn mark_blocked(
    conn: &Connection,
    run_id: String,
    error: &ErrorInfo,
    at_ms: u64,
) -> Result<OpResult, StoreError> {
    let error = encode_error_info(error)?;
    let updated = conn
        .prepare_cached("UPDATE runs SET error = ?2, updated_at = ?3 WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute(params![run_id, error, at_ms]))
        .ctx("mark run blocked")?;
    if updated == 0 {
        return Ok(Err(OpRejected::RunNotFound { run_id }));
    }
    Ok(Ok(OpOutcome::Updated))
}

fn checkpoint(conn: &Connection, run_id: String, applied_seq: u64) -> Result<OpResult, StoreError> {
    let n = conn
        .prepare_cached("UPDATE runs SET applied_seq = MAX(applied_seq, ?2) WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute(params![run_id, applied_seq as i64]))
        .ctx("record checkpoint")?;
    if n == 0 {
        return Ok(Err(OpRejected::RunNotFound { run_id }));
    }
    Ok(Ok(OpOutcome::Updated))
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
