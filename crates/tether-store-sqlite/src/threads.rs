//! The write side of hook threads, shared state and signals: what `append` does with the
//! records that the store itself completes (values read, counts, deliveries) inside the
//! batch's transaction.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use tether_core::event::{CommandIndex, Event, EventBody, RunStatus, ThreadInfo};
use tether_store::plan::{NewThread, Released, SignalOutcome};
use tether_store::{OpOutcome, OpRejected, OpResult, StoreError};

use crate::error::Ctx;
use crate::rows::encode_value;

/// The namespace a run works in: its root run (itself for a main run).
pub(crate) fn root_of(conn: &Connection, run_id: &str) -> Result<String, StoreError> {
    conn.prepare_cached("SELECT COALESCE(root_run, id) FROM runs WHERE id = ?1")
        .and_then(|mut stmt| stmt.query_row([run_id], |r| r.get(0)).optional())
        .ctx("find the run's namespace")?
        .ok_or_else(|| StoreError::unavailable(format!("run {run_id} vanished mid-batch")))
}

fn decode(text: &str, what: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::corrupt(format!("{what}: {e}")))
}

fn read_state(conn: &Connection, root: &str, key: &str) -> Result<Option<Value>, StoreError> {
    let text: Option<String> = conn
        .prepare_cached("SELECT value FROM run_state WHERE root_run = ?1 AND key = ?2")
        .and_then(|mut stmt| stmt.query_row([root, key], |r| r.get(0)).optional())
        .ctx("read shared state")?;
    text.map(|t| decode(&t, "shared state value")).transpose()
}

fn write_state(conn: &Connection, root: &str, key: &str, value: &Value) -> Result<(), StoreError> {
    let text = encode_value(value, "shared state value")?;
    conn.prepare_cached(
        "INSERT INTO run_state (root_run, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (root_run, key) DO UPDATE SET value = excluded.value",
    )
    .and_then(|mut stmt| stmt.execute(params![root, key, text]))
    .ctx("write shared state")?;
    Ok(())
}

/// Complete a shared-state record: perform it on the namespace `root` and fill its outputs.
pub(crate) fn state_op(
    conn: &Connection,
    root: &str,
    body: EventBody,
) -> Result<EventBody, StoreError> {
    Ok(match body {
        EventBody::StateGet { cmd, key, .. } => {
            let value = read_state(conn, root, &key)?;
            EventBody::StateGet { cmd, key, value }
        }
        EventBody::StateSet { cmd, key, value } => {
            write_state(conn, root, &key, &value)?;
            EventBody::StateSet { cmd, key, value }
        }
        EventBody::StateIncr { cmd, key, by, .. } => {
            let value = match read_state(conn, root, &key)? {
                None => Some(by),
                Some(v) => v.as_i64().map(|n| n.saturating_add(by)),
            };
            if let Some(n) = value {
                write_state(conn, root, &key, &Value::from(n))?;
            }
            EventBody::StateIncr {
                cmd,
                key,
                by,
                value,
            }
        }
        EventBody::StateDelete { cmd, key, .. } => {
            let n = conn
                .prepare_cached("DELETE FROM run_state WHERE root_run = ?1 AND key = ?2")
                .and_then(|mut stmt| stmt.execute([root, &key]))
                .ctx("delete shared state")?;
            EventBody::StateDelete {
                cmd,
                key,
                existed: n > 0,
            }
        }
        other => other,
    })
}

/// Create a hook thread's run and its `RunStarted` entry. `Ok(None)` if the id exists (a
/// spawn is journaled once, so this only happens on a repeated outside request).
pub(crate) fn create_thread(
    conn: &Connection,
    t: NewThread<'_>,
) -> Result<Option<Event>, StoreError> {
    let input = encode_value(t.args, "hook args")?;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO runs (id, workflow, status, input, created_at, updated_at, last_seq,
                               parent_run, root_run)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, 1, ?6, ?7)
             ON CONFLICT (id) DO NOTHING",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                t.hook_id,
                t.workflow,
                RunStatus::Pending.as_str(),
                input,
                t.at_ms,
                t.info.parent_run,
                t.info.root_run
            ])
        })
        .ctx("insert hook thread")?;
    if inserted == 0 {
        return Ok(None);
    }
    let event = Event {
        seq: 1,
        at_ms: t.at_ms,
        body: EventBody::RunStarted {
            workflow: t.workflow.to_owned(),
            input: t.args.clone(),
            thread: Some(t.info),
        },
    };
    crate::write::insert_event(conn, t.hook_id, &event)?;
    Ok(Some(event))
}

/// Take the oldest waiter of `signal_id`, if any: its run and wait command.
fn take_waiter(
    conn: &Connection,
    signal_id: &str,
) -> Result<Option<(String, CommandIndex)>, StoreError> {
    let row: Option<(i64, String, CommandIndex)> = conn
        .prepare_cached(
            "SELECT id, run_id, cmd FROM signal_waits WHERE signal_id = ?1 ORDER BY id LIMIT 1",
        )
        .and_then(|mut stmt| {
            stmt.query_row([signal_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .ctx("find signal waiter")?;
    let Some((id, run_id, cmd)) = row else {
        return Ok(None);
    };
    conn.prepare_cached("DELETE FROM signal_waits WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute([id]))
        .ctx("take signal waiter")?;
    Ok(Some((run_id, cmd)))
}

/// Where a signal went: to a waiting run's wait command, or kept.
pub(crate) enum Delivery {
    /// Deliver `SignalReceived { wait_cmd }` to `run_id`.
    To {
        run_id: String,
        wait_cmd: CommandIndex,
    },
    /// Nobody waits: kept until a wait comes.
    Kept,
}

/// Send a signal: hand it to the oldest waiter, or keep it.
pub(crate) fn send_signal(
    conn: &Connection,
    signal_id: &str,
    payload: &Value,
    at_ms: u64,
) -> Result<Delivery, StoreError> {
    if let Some((run_id, wait_cmd)) = take_waiter(conn, signal_id)? {
        return Ok(Delivery::To { run_id, wait_cmd });
    }
    let text = encode_value(payload, "signal payload")?;
    conn.prepare_cached("INSERT INTO signals (signal_id, payload, created_at) VALUES (?1, ?2, ?3)")
        .and_then(|mut stmt| stmt.execute(params![signal_id, text, at_ms]))
        .ctx("keep signal")?;
    Ok(Delivery::Kept)
}

/// Register a wait: returns a kept signal's payload at once (taking it), or records the wait.
pub(crate) fn wait_signal(
    conn: &Connection,
    run_id: &str,
    cmd: CommandIndex,
    signal_id: &str,
    at_ms: u64,
) -> Result<Option<Value>, StoreError> {
    let kept: Option<(i64, String)> = conn
        .prepare_cached("SELECT id, payload FROM signals WHERE signal_id = ?1 ORDER BY id LIMIT 1")
        .and_then(|mut stmt| {
            stmt.query_row([signal_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .ctx("find kept signal")?;
    if let Some((id, text)) = kept {
        conn.prepare_cached("DELETE FROM signals WHERE id = ?1")
            .and_then(|mut stmt| stmt.execute([id]))
            .ctx("take kept signal")?;
        return decode(&text, "kept signal payload").map(Some);
    }
    conn.prepare_cached(
        "INSERT INTO signal_waits (signal_id, run_id, cmd, created_at) VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut stmt| stmt.execute(params![signal_id, run_id, cmd, at_ms]))
    .ctx("register signal wait")?;
    Ok(None)
}

/// Send a signal: to the oldest waiter whose run is still going (appending `SignalReceived` to
/// it), or keep it. `sender` is the run whose append this is (its journal is being written).
pub(crate) fn deliver_signal(
    conn: &Connection,
    signal_id: &str,
    payload: &Value,
    at_ms: u64,
    sender: &str,
) -> Result<SignalOutcome, StoreError> {
    loop {
        match send_signal(conn, signal_id, payload, at_ms)? {
            Delivery::Kept => return Ok(SignalOutcome::Kept),
            Delivery::To { run_id, wait_cmd } if run_id == sender => {
                return Ok(SignalOutcome::ToSelf { wait_cmd })
            }
            Delivery::To { run_id, wait_cmd } => {
                let body = EventBody::SignalReceived {
                    wait_cmd,
                    payload: payload.clone(),
                };
                if crate::write::append_delivery(conn, &run_id, body, at_ms)?.is_ok() {
                    return Ok(SignalOutcome::To(run_id));
                }
                // That waiter's run is gone: try the next one.
            }
        }
    }
}

/// A signal from outside (client, HTTP, the engine): delivered to a waiting run (outcome
/// `Appended` for that run) or kept (`Updated`).
pub(crate) fn signal(
    conn: &Connection,
    signal_id: String,
    payload: Value,
    at_ms: u64,
) -> Result<OpResult, StoreError> {
    loop {
        match send_signal(conn, &signal_id, &payload, at_ms)? {
            Delivery::Kept => return Ok(Ok(OpOutcome::Updated)),
            Delivery::To { run_id, wait_cmd } => {
                let body = EventBody::SignalReceived {
                    wait_cmd,
                    payload: payload.clone(),
                };
                if let Ok(event) = crate::write::append_delivery(conn, &run_id, body, at_ms)? {
                    return Ok(Ok(OpOutcome::Appended {
                        run_id,
                        events: vec![event],
                    }));
                }
            }
        }
    }
}

/// Spawn a hook thread from outside in the namespace of `run_id`.
pub(crate) fn spawn_hook(conn: &Connection, op: SpawnHookOp) -> Result<OpResult, StoreError> {
    if let Err(refused) = crate::write::open_run(conn, &op.run_id)? {
        return Ok(Err(refused));
    }
    let root = root_of(conn, &op.run_id)?;
    let info = ThreadInfo {
        root_run: root,
        parent_run: op.run_id.clone(),
        retry: op.retry,
        fail_signal: None,
    };
    let created = create_thread(
        conn,
        NewThread {
            hook_id: &op.hook_id,
            workflow: &op.workflow,
            args: &op.args,
            info,
            at_ms: op.at_ms,
        },
    )?;
    match created {
        Some(event) => Ok(Ok(OpOutcome::Appended {
            run_id: op.hook_id,
            events: vec![event],
        })),
        None => Ok(Err(OpRejected::RunExists { run_id: op.hook_id })),
    }
}

/// The fields of `WriteOp::SpawnHook`.
pub(crate) struct SpawnHookOp {
    pub run_id: String,
    pub hook_id: String,
    pub workflow: String,
    pub args: Value,
    pub retry: tether_core::RetryPolicy,
    pub at_ms: u64,
}

/// The payload wait `wait_cmd` of `run_id` took, if it took one in the run's current attempt:
/// the entries of the append being written (`written`, not yet read back) first, then the
/// journal, newest first, down to that wait's own `SignalWaited` (or an `AttemptFailed`,
/// before which command indices belonged to another attempt).
fn taken_payload(
    conn: &Connection,
    run_id: &str,
    wait_cmd: CommandIndex,
    written: &[Event],
) -> Result<Option<Value>, StoreError> {
    for e in written.iter().rev() {
        match &e.body {
            EventBody::SignalReceived {
                wait_cmd: w,
                payload,
            } if *w == wait_cmd => return Ok(Some(payload.clone())),
            EventBody::SignalWaited { cmd, .. } if *cmd == wait_cmd => return Ok(None),
            EventBody::AttemptFailed { .. } => return Ok(None),
            _ => {}
        }
    }
    let row: Option<(String, String)> = conn
        .prepare_cached(
            "SELECT kind, body FROM events
             WHERE run_id = ?1
               AND ((kind = 'signal_received' AND json_extract(body, '$.wait_cmd') = ?2)
                 OR (kind = 'signal_waited' AND json_extract(body, '$.cmd') = ?2)
                 OR kind = 'attempt_failed')
             ORDER BY seq DESC LIMIT 1",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![run_id, wait_cmd], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .ctx("find the payload a released wait took")?;
    match row {
        Some((kind, body)) if kind == "signal_received" => {
            let body: EventBody = serde_json::from_str(&body)
                .map_err(|e| StoreError::corrupt(format!("journal entry of {run_id}: {e}")))?;
            match body {
                EventBody::SignalReceived { payload, .. } => Ok(Some(payload)),
                _ => Ok(None),
            }
        }
        _ => Ok(None),
    }
}

/// Release wait `wait_cmd` of `run_id` (the run whose append this is): forget it if it still
/// waits; else give back the payload it took, to the oldest other wait on `signal_id` (whose
/// run is still going) or first in line of the kept signals.
pub(crate) fn release_wait(
    conn: &Connection,
    run_id: &str,
    wait_cmd: CommandIndex,
    signal_id: &str,
    written: &[Event],
    at_ms: u64,
) -> Result<Released, StoreError> {
    let forgotten = conn
        .prepare_cached(
            "DELETE FROM signal_waits WHERE run_id = ?1 AND cmd = ?2 AND signal_id = ?3",
        )
        .and_then(|mut stmt| stmt.execute(params![run_id, wait_cmd, signal_id]))
        .ctx("forget a released signal wait")?;
    let payload = if forgotten > 0 {
        None
    } else {
        taken_payload(conn, run_id, wait_cmd, written)?
    };
    let Some(payload) = payload else {
        return Ok(Released {
            returned: None,
            outcome: SignalOutcome::Kept,
        });
    };
    loop {
        let Some((to, to_cmd)) = take_waiter(conn, signal_id)? else {
            let text = encode_value(&payload, "signal payload")?;
            conn.prepare_cached(
                "INSERT INTO signals (id, signal_id, payload, created_at)
                 VALUES ((SELECT COALESCE(MIN(id), 1) - 1 FROM signals), ?1, ?2, ?3)",
            )
            .and_then(|mut stmt| stmt.execute(params![signal_id, text, at_ms]))
            .ctx("give a signal back")?;
            return Ok(Released {
                returned: Some(payload),
                outcome: SignalOutcome::Kept,
            });
        };
        if to == run_id {
            return Ok(Released {
                returned: Some(payload),
                outcome: SignalOutcome::ToSelf { wait_cmd: to_cmd },
            });
        }
        let body = EventBody::SignalReceived {
            wait_cmd: to_cmd,
            payload: payload.clone(),
        };
        if crate::write::append_delivery(conn, &to, body, at_ms)?.is_ok() {
            return Ok(Released {
                returned: Some(payload),
                outcome: SignalOutcome::To(to),
            });
        }
    }
}
