//! Group commit: a batch of [`WriteOp`]s applied in order in one immediate transaction. Every
//! op decides whether it is refused from reads alone, before it writes anything, so a refused
//! op leaves no trace without a savepoint per op (checked in [`commit`]).

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde_json::Value;
use tether_core::event::{CommandIndex, ErrorInfo, Event, EventBody, RunStatus, ThreadInfo};
use tether_store::{
    Ending, Fence, HookRef, OpOutcome, OpRejected, OpResult, StoreError, WakeAt, WriteOp,
};

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
            return Err(StoreError::Corrupt(format!(
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
        } => create_run(conn, run_id, workflow, input, at_ms),
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
        } => threads::signal(conn, signal_id, payload, at_ms),
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

/// The parts of a run the write path needs.
pub(crate) struct RunState {
    status: RunStatus,
    last_seq: u64,
    wake_at: Option<u64>,
}

/// The run if it exists and is not finished, else the refusal.
pub(crate) fn open_run(
    conn: &Connection,
    run_id: &str,
) -> Result<Result<RunState, OpRejected>, StoreError> {
    let row: Option<(String, u64, Option<u64>)> = conn
        .prepare_cached("SELECT status, last_seq, wake_at FROM runs WHERE id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([run_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .ctx("load run")?;
    let Some((status, last_seq, wake_at)) = row else {
        return Ok(Err(OpRejected::RunNotFound {
            run_id: run_id.to_owned(),
        }));
    };
    let status = parse_status(&status, run_id)?;
    if status.is_terminal() {
        return Ok(Err(OpRejected::RunFinished {
            run_id: run_id.to_owned(),
            status,
        }));
    }
    Ok(Ok(RunState {
        status,
        last_seq,
        wake_at,
    }))
}

/// Like [`open_run`], after checking `fence` (if any) against the run's owner and epoch, in
/// one read of the run's row: refused with `RunNotFound`, then `Fenced`, then `RunFinished`
/// (the order [`check_fence`] followed by [`open_run`] gives).
fn open_fenced_run(
    conn: &Connection,
    run_id: &str,
    fence: Option<&Fence>,
) -> Result<Result<RunState, OpRejected>, StoreError> {
    type Row = (String, u64, Option<u64>, Option<String>, u64);
    let row: Option<Row> = conn
        .prepare_cached("SELECT status, last_seq, wake_at, owner, epoch FROM runs WHERE id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([run_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()
        })
        .ctx("load run")?;
    let Some((status, last_seq, wake_at, owner, epoch)) = row else {
        return Ok(Err(OpRejected::RunNotFound {
            run_id: run_id.to_owned(),
        }));
    };
    if let Some(fence) = fence {
        if owner.as_deref() != Some(fence.node.as_str()) || epoch != fence.epoch {
            return Ok(Err(OpRejected::Fenced {
                run_id: run_id.to_owned(),
            }));
        }
    }
    let status = parse_status(&status, run_id)?;
    if status.is_terminal() {
        return Ok(Err(OpRejected::RunFinished {
            run_id: run_id.to_owned(),
            status,
        }));
    }
    Ok(Ok(RunState {
        status,
        last_seq,
        wake_at,
    }))
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
) -> Result<OpResult, StoreError> {
    let input_json = encode_value(&input, "run input")?;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO runs (id, workflow, status, input, created_at, updated_at, last_seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, 1)
             ON CONFLICT (id) DO NOTHING",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                run_id,
                workflow,
                RunStatus::Pending.as_str(),
                input_json,
                at_ms
            ])
        })
        .ctx("insert run")?;
    if inserted == 0 {
        return Ok(Err(OpRejected::RunExists { run_id }));
    }
    let event = Event {
        seq: 1,
        at_ms,
        body: EventBody::RunStarted {
            workflow,
            input,
            thread: None,
        },
    };
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
    let mut seq = run.last_seq;
    let mut ending = None;
    let mut written = Vec::with_capacity(events.len());
    let mut root: Option<String> = None;
    let mut queue: std::collections::VecDeque<EventBody> = events.into();
    while let Some(body) = queue.pop_front() {
        let body = match body {
            EventBody::StateGet { .. }
            | EventBody::StateSet { .. }
            | EventBody::StateIncr { .. }
            | EventBody::StateDelete { .. } => {
                if root.is_none() {
                    root = Some(threads::root_of(conn, &run_id)?);
                }
                threads::state_op(conn, root.as_deref().unwrap_or(&run_id), body)?
            }
            EventBody::HookSpawned {
                ref hook_id,
                ref workflow,
                ref args,
                ref retry,
                ref fail_signal,
                ..
            } => {
                if root.is_none() {
                    root = Some(threads::root_of(conn, &run_id)?);
                }
                let info = ThreadInfo {
                    root_run: root.clone().unwrap_or_else(|| run_id.clone()),
                    parent_run: run_id.clone(),
                    retry: retry.clone(),
                    fail_signal: fail_signal.clone(),
                };
                threads::create_thread(
                    conn,
                    threads::NewThread {
                        hook_id,
                        workflow,
                        args,
                        info,
                        at_ms,
                    },
                )?;
                tether_store::crash_point!("store.mid_spawn");
                body
            }
            EventBody::SignalSent {
                cmd,
                signal_id,
                payload,
                ..
            } => {
                let delivered_to =
                    match threads::deliver_signal(conn, &signal_id, &payload, at_ms, &run_id)? {
                        threads::SignalOutcome::ToSelf { wait_cmd } => {
                            queue.push_front(EventBody::SignalReceived {
                                wait_cmd,
                                payload: payload.clone(),
                            });
                            Some(run_id.clone())
                        }
                        threads::SignalOutcome::To(other) => Some(other),
                        threads::SignalOutcome::Kept => None,
                    };
                EventBody::SignalSent {
                    cmd,
                    signal_id,
                    payload,
                    delivered_to,
                }
            }
            EventBody::SignalWaited { cmd, ref signal_id } => {
                if let Some(payload) = threads::wait_signal(conn, &run_id, cmd, signal_id, at_ms)? {
                    queue.push_front(EventBody::SignalReceived {
                        wait_cmd: cmd,
                        payload,
                    });
                }
                body
            }
            EventBody::HookCreated {
                cmd,
                token,
                kind,
                metadata,
                definition,
                generated,
            } => {
                let hook = NewHook {
                    run_id: &run_id,
                    cmd,
                    token: &token,
                    kind: &kind,
                    metadata: &metadata,
                    definition: definition.as_deref(),
                    at_ms,
                };
                match register_hook(conn, &hook)? {
                    None => EventBody::HookCreated {
                        cmd,
                        token,
                        kind,
                        metadata,
                        definition,
                        generated,
                    },
                    Some(holder_run) => EventBody::HookConflict {
                        cmd,
                        token,
                        holder_run,
                    },
                }
            }
            EventBody::HookDisposed {
                hook_cmd,
                ref token,
                ..
            } => {
                release_hook(conn, token, &run_id, hook_cmd)?;
                body
            }
            other => {
                if let Some(end) = Ending::of(&other) {
                    ending = Some(end);
                }
                other
            }
        };
        seq += 1;
        let event = Event { seq, at_ms, body };
        insert_event(conn, &run_id, &event)?;
        written.push(event);
    }

    match ending {
        Some(end) => finish_run(conn, &run_id, &end, seq, at_ms)?,
        None => {
            // Name only the columns that change: SQLite rewrites the entry of every index on
            // a column the UPDATE names, changed or not (status and wake_at are indexed).
            let status = status.filter(|s| *s != run.status);
            let wake_at = match wake_at {
                WakeAt::Set(at) if at != run.wake_at => Some(at),
                _ => None,
            };
            let result = match (status, wake_at) {
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
        events: written,
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

/// A hook to register.
struct NewHook<'a> {
    run_id: &'a str,
    cmd: CommandIndex,
    token: &'a str,
    kind: &'a str,
    metadata: &'a Value,
    definition: Option<&'a str>,
    at_ms: u64,
}

/// Register a hook; `Some(holder run)` when another active hook holds the token. The primary
/// key on `hooks.token` decides, not a prior lookup.
fn register_hook(conn: &Connection, hook: &NewHook<'_>) -> Result<Option<String>, StoreError> {
    let metadata = encode_value(hook.metadata, "hook metadata")?;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO hooks (token, run_id, hook_cmd, kind, metadata, definition, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (token) DO NOTHING",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                hook.token,
                hook.run_id,
                hook.cmd,
                hook.kind,
                metadata,
                hook.definition,
                hook.at_ms
            ])
        })
        .ctx("insert hook")?;
    if inserted == 1 {
        return Ok(None);
    }
    let holder: Option<String> = conn
        .prepare_cached("SELECT run_id FROM hooks WHERE token = ?1")
        .and_then(|mut stmt| stmt.query_row([hook.token], |r| r.get(0)).optional())
        .ctx("find hook holder")?;
    match holder {
        Some(holder) => Ok(Some(holder)),
        None => Err(StoreError::Unavailable(format!(
            "hook insert for run {} conflicted, but no hook holds its token",
            hook.run_id
        ))),
    }
}

/// Release `token` if this run's hook `hook_cmd` holds it.
fn release_hook(
    conn: &Connection,
    token: &str,
    run_id: &str,
    hook_cmd: CommandIndex,
) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM hooks WHERE token = ?1 AND run_id = ?2 AND hook_cmd = ?3")
        .and_then(|mut stmt| stmt.execute(params![token, run_id, hook_cmd]))
        .ctx("release hook")?;
    Ok(())
}

fn resume(
    conn: &Connection,
    token: String,
    payload: Value,
    idempotency_key: Option<String>,
    expect: Option<HookRef>,
    at_ms: u64,
) -> Result<OpResult, StoreError> {
    // A key used before wins over everything else, even if the hook has been released since:
    // a retried delivery gets the first answer.
    if let Some(key) = &idempotency_key {
        let first: Option<String> = conn
            .prepare_cached("SELECT run_id FROM idempotency WHERE token = ?1 AND key = ?2")
            .and_then(|mut stmt| stmt.query_row([&token, key], |r| r.get(0)).optional())
            .ctx("look up idempotency key")?;
        if let Some(first_run) = first {
            return Ok(Ok(OpOutcome::Resumed {
                run_id: first_run,
                event: None,
            }));
        }
    }
    let holder: Option<(String, CommandIndex)> = conn
        .prepare_cached("SELECT run_id, hook_cmd FROM hooks WHERE token = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([&token], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .ctx("look up hook")?;
    let Some((run_id, hook_cmd)) = holder else {
        return Ok(Err(OpRejected::HookNotFound { token }));
    };
    if let Some(expect) = &expect {
        if expect.run_id != run_id || expect.hook_cmd != hook_cmd {
            return Ok(Err(OpRejected::HookNotFound { token }));
        }
    }
    // Hooks of finished runs are released, so this only refuses on damaged data.
    let run = match open_run(conn, &run_id)? {
        Ok(run) => run,
        Err(refused) => return Ok(Err(refused)),
    };
    let event = Event {
        seq: run.last_seq + 1,
        at_ms,
        body: EventBody::HookReceived { hook_cmd, payload },
    };
    insert_event(conn, &run_id, &event)?;
    conn.prepare_cached("UPDATE runs SET last_seq = ?2, updated_at = ?3 WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute(params![run_id, event.seq, at_ms]))
        .ctx("update run")?;
    if let Some(key) = &idempotency_key {
        conn.prepare_cached(
            "INSERT INTO idempotency (token, key, run_id, created_at) VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut stmt| stmt.execute(params![token, key, run_id, at_ms]))
        .ctx("record idempotency key")?;
    }
    Ok(Ok(OpOutcome::Resumed {
        run_id,
        event: Some(event),
    }))
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

/// `Some(refusal)` when `fence` is set and no longer matches the run's owner and epoch.
fn check_fence(
    conn: &Connection,
    run_id: &str,
    fence: Option<&Fence>,
) -> Result<Option<OpRejected>, StoreError> {
    let Some(fence) = fence else {
        return Ok(None);
    };
    let row: Option<(Option<String>, u64)> = conn
        .prepare_cached("SELECT owner, epoch FROM runs WHERE id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([run_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .ctx("check fence")?;
    Ok(match row {
        None => Some(OpRejected::RunNotFound {
            run_id: run_id.to_owned(),
        }),
        Some((Some(owner), epoch)) if owner == fence.node && epoch == fence.epoch => None,
        Some(_) => Some(OpRejected::Fenced {
            run_id: run_id.to_owned(),
        }),
    })
}

fn claim(
    conn: &Connection,
    run_id: String,
    node: &str,
    lease_until_ms: u64,
    now_ms: u64,
) -> Result<OpResult, StoreError> {
    let row: Option<(String, Option<String>, Option<u64>, u64)> = conn
        .prepare_cached("SELECT status, owner, lease_until, epoch FROM runs WHERE id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([&run_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()
        })
        .ctx("load run lease")?;
    let Some((status, owner, lease_until, epoch)) = row else {
        return Ok(Err(OpRejected::RunNotFound { run_id }));
    };
    let status = parse_status(&status, &run_id)?;
    if status.is_terminal() {
        return Ok(Err(OpRejected::RunFinished { run_id, status }));
    }
    if let Some(owner) = owner {
        let live = lease_until.is_some_and(|until| until >= now_ms);
        if owner != node && live {
            return Ok(Err(OpRejected::Owned { run_id, owner }));
        }
    }
    let epoch = epoch + 1;
    conn.prepare_cached("UPDATE runs SET owner = ?2, lease_until = ?3, epoch = ?4 WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute(params![run_id, node, lease_until_ms, epoch]))
        .ctx("claim run")?;
    Ok(Ok(OpOutcome::Claimed { epoch }))
}

fn release(conn: &Connection, run_id: String, fence: &Fence) -> Result<OpResult, StoreError> {
    let exists: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM runs WHERE id = ?1")
        .and_then(|mut stmt| stmt.query_row([&run_id], |r| r.get(0)).optional())
        .ctx("load run")?;
    if exists.is_none() {
        return Ok(Err(OpRejected::RunNotFound { run_id }));
    }
    conn.prepare_cached(
        "UPDATE runs SET owner = NULL, lease_until = NULL
         WHERE id = ?1 AND owner = ?2 AND epoch = ?3",
    )
    .and_then(|mut stmt| stmt.execute(params![run_id, fence.node, fence.epoch]))
    .ctx("release run")?;
    Ok(Ok(OpOutcome::Updated))
}

fn renew(conn: &Connection, node: &str, lease_until_ms: u64) -> Result<OpResult, StoreError> {
    let count = conn
        .prepare_cached("UPDATE runs SET lease_until = ?2 WHERE owner = ?1")
        .and_then(|mut stmt| stmt.execute(params![node, lease_until_ms]))
        .ctx("renew leases")?;
    Ok(Ok(OpOutcome::Renewed {
        count: count as u64,
    }))
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
