//! The write side of hook threads, shared state and signals: what `append` does with the
//! records that the store itself completes (values read, counts, deliveries) inside the
//! batch's transaction, plus the `Signal` and `SpawnHook` ops. Same semantics as the SQLite
//! backend; what SQLite gets from having one writer, this gets from locks: a namespace's
//! state and a signal id's queue are each guarded by a transaction-scoped advisory lock, and
//! a delivery locks the receiving run's row like any other append.

use serde_json::Value;
use tether_core::event::{CommandIndex, Event, EventBody, RunStatus, ThreadInfo};
use tether_core::RetryPolicy;
use tether_store::plan::{NewThread, Released, SignalOutcome};
use tether_store::{OpOutcome, OpRejected, OpResult, StoreError};

use crate::journal::insert_events;
use crate::rows::{col, encode_value, to_db};
use crate::write::Batch;

/// Advisory lock class (first key) of a namespace's shared state (second key: a hash of the
/// root run id), so read-modify-writes such as `StateIncr` never lose an update.
const STATE_LOCKS: i32 = 0x5445_5401;
/// Advisory lock class of a signal id's queues (kept signals, waits), so a signal and a wait
/// for the same id arriving at once on two nodes cannot miss each other.
const SIGNAL_LOCKS: i32 = 0x5445_5402;

/// Take the transaction-scoped advisory lock `(class, hash(name))`.
async fn advisory_lock(
    b: &Batch<'_, '_>,
    class: i32,
    name: &str,
    what: &str,
) -> Result<(), StoreError> {
    b.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&class, &name],
        what,
    )
    .await?;
    Ok(())
}

/// The namespace a run works in: its root run (itself for a main run).
pub(crate) async fn root_of(b: &Batch<'_, '_>, run_id: &str) -> Result<String, StoreError> {
    let row = b
        .query_opt(
            "SELECT COALESCE(root_run, id) FROM runs WHERE id = $1",
            &[&run_id],
            "find the run's namespace",
        )
        .await?;
    match row {
        Some(row) => Ok(col(&row, 0, "find the run's namespace")?),
        None => Err(StoreError::unavailable(format!(
            "run {run_id} vanished mid-batch"
        ))),
    }
}

/// The namespace of `run_id`, locked for shared-state commands until the batch ends.
pub(crate) async fn lock_namespace(b: &Batch<'_, '_>, run_id: &str) -> Result<String, StoreError> {
    let root = root_of(b, run_id).await?;
    advisory_lock(b, STATE_LOCKS, &root, "lock shared state").await?;
    Ok(root)
}

fn decode(text: &str, what: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::corrupt(format!("{what}: {e}")))
}

async fn read_state(b: &Batch<'_, '_>, root: &str, key: &str) -> Result<Option<Value>, StoreError> {
    let row = b
        .query_opt(
            "SELECT value FROM run_state WHERE root_run = $1 AND key = $2",
            &[&root, &key],
            "read shared state",
        )
        .await?;
    match row {
        Some(row) => {
            let text: String = col(&row, 0, "read shared state")?;
            Ok(Some(decode(&text, "shared state value")?))
        }
        None => Ok(None),
    }
}

async fn write_state(
    b: &Batch<'_, '_>,
    root: &str,
    key: &str,
    value: &Value,
) -> Result<(), StoreError> {
    let text = encode_value(value, "shared state value")?;
    b.execute(
        "INSERT INTO run_state (root_run, key, value) VALUES ($1, $2, $3)
         ON CONFLICT (root_run, key) DO UPDATE SET value = excluded.value",
        &[&root, &key, &text],
        "write shared state",
    )
    .await?;
    Ok(())
}

/// Complete a shared-state record: perform it on the namespace `root` (locked with
/// [`lock_namespace`]) and fill its outputs.
pub(crate) async fn state_op(
    b: &Batch<'_, '_>,
    root: &str,
    body: EventBody,
) -> Result<EventBody, StoreError> {
    Ok(match body {
        EventBody::StateGet { cmd, key, .. } => {
            let value = read_state(b, root, &key).await?;
            EventBody::StateGet { cmd, key, value }
        }
        EventBody::StateSet { cmd, key, value } => {
            write_state(b, root, &key, &value).await?;
            EventBody::StateSet { cmd, key, value }
        }
        EventBody::StateIncr { cmd, key, by, .. } => {
            let value = match read_state(b, root, &key).await? {
                None => Some(by),
                Some(v) => v.as_i64().map(|n| n.saturating_add(by)),
            };
            if let Some(n) = value {
                write_state(b, root, &key, &Value::from(n)).await?;
            }
            EventBody::StateIncr {
                cmd,
                key,
                by,
                value,
            }
        }
        EventBody::StateDelete { cmd, key, .. } => {
            let n = b
                .execute(
                    "DELETE FROM run_state WHERE root_run = $1 AND key = $2",
                    &[&root, &key],
                    "delete shared state",
                )
                .await?;
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
pub(crate) async fn create_thread(
    b: &mut Batch<'_, '_>,
    t: NewThread<'_>,
) -> Result<Option<Event>, StoreError> {
    let input = encode_value(t.args, "hook args")?;
    let at = to_db(t.at_ms, "commit time")?;
    let inserted = b
        .execute(
            "INSERT INTO runs (id, workflow, status, input, created_at, updated_at, last_seq,
                               parent_run, root_run)
             VALUES ($1, $2, $3, $4, $5, $5, 1, $6, $7)
             ON CONFLICT (id) DO NOTHING",
            &[
                &t.hook_id,
                &t.workflow,
                &RunStatus::Pending.as_str(),
                &input,
                &at,
                &t.info.parent_run,
                &t.info.root_run,
            ],
            "insert hook thread",
        )
        .await?;
    if inserted == 0 {
        return Ok(None);
    }
    b.mark_locked(t.hook_id);
    let event = Event {
        seq: 1,
        at_ms: t.at_ms,
        body: EventBody::RunStarted {
            workflow: t.workflow.to_owned(),
            input: t.args.clone(),
            thread: Some(t.info),
        },
    };
    insert_events(b, t.hook_id, std::slice::from_ref(&event))?;
    Ok(Some(event))
}

/// Take the oldest waiter of `signal_id` (the signal id must be locked), if any: its run and
/// wait command.
async fn take_waiter(
    b: &Batch<'_, '_>,
    signal_id: &str,
) -> Result<Option<(String, CommandIndex)>, StoreError> {
    let row = b
        .query_opt(
            "DELETE FROM signal_waits
             WHERE id = (SELECT id FROM signal_waits WHERE signal_id = $1 ORDER BY id LIMIT 1)
             RETURNING run_id, cmd",
            &[&signal_id],
            "take signal waiter",
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let run_id: String = col(&row, 0, "take signal waiter")?;
    let cmd: i64 = col(&row, 1, "take signal waiter")?;
    let cmd = CommandIndex::try_from(cmd)
        .map_err(|_| crate::error::bad_number("signal wait command", cmd))?;
    Ok(Some((run_id, cmd)))
}

/// Where a signal went: to a waiting run's wait command, or kept.
enum Delivery {
    /// Deliver `SignalReceived { wait_cmd }` to `run_id`.
    To {
        run_id: String,
        wait_cmd: CommandIndex,
    },
    /// Nobody waits: kept until a wait comes.
    Kept,
}

/// Send a signal (the signal id must be locked): hand it to the oldest waiter, or keep it.
async fn send_signal(
    b: &Batch<'_, '_>,
    signal_id: &str,
    payload: &Value,
    at_ms: u64,
) -> Result<Delivery, StoreError> {
    if let Some((run_id, wait_cmd)) = take_waiter(b, signal_id).await? {
        return Ok(Delivery::To { run_id, wait_cmd });
    }
    let text = encode_value(payload, "signal payload")?;
    b.execute(
        "INSERT INTO signals (signal_id, payload, created_at) VALUES ($1, $2, $3)",
        &[&signal_id, &text, &to_db(at_ms, "commit time")?],
        "keep signal",
    )
    .await?;
    Ok(Delivery::Kept)
}

/// Register a wait: returns a kept signal's payload at once (taking it), or records the wait.
pub(crate) async fn wait_signal(
    b: &Batch<'_, '_>,
    run_id: &str,
    cmd: CommandIndex,
    signal_id: &str,
    at_ms: u64,
) -> Result<Option<Value>, StoreError> {
    advisory_lock(b, SIGNAL_LOCKS, signal_id, "lock signal").await?;
    let kept = b
        .query_opt(
            "DELETE FROM signals
             WHERE id = (SELECT id FROM signals WHERE signal_id = $1 ORDER BY id LIMIT 1)
             RETURNING payload",
            &[&signal_id],
            "take kept signal",
        )
        .await?;
    if let Some(row) = kept {
        let text: String = col(&row, 0, "take kept signal")?;
        return Ok(Some(decode(&text, "kept signal payload")?));
    }
    b.execute(
        "INSERT INTO signal_waits (signal_id, run_id, cmd, created_at) VALUES ($1, $2, $3, $4)",
        &[
            &signal_id,
            &run_id,
            &i64::from(cmd),
            &to_db(at_ms, "commit time")?,
        ],
        "register signal wait",
    )
    .await?;
    Ok(None)
}

/// Send a signal: to the oldest waiter whose run is still going (appending `SignalReceived` to
/// it), or keep it. `sender` is the run whose append this is (its journal is being written).
pub(crate) async fn deliver_signal(
    b: &mut Batch<'_, '_>,
    signal_id: &str,
    payload: &Value,
    at_ms: u64,
    sender: &str,
) -> Result<SignalOutcome, StoreError> {
    advisory_lock(b, SIGNAL_LOCKS, signal_id, "lock signal").await?;
    loop {
        match send_signal(b, signal_id, payload, at_ms).await? {
            Delivery::Kept => return Ok(SignalOutcome::Kept),
            Delivery::To { run_id, wait_cmd } if run_id == sender => {
                return Ok(SignalOutcome::ToSelf { wait_cmd })
            }
            Delivery::To { run_id, wait_cmd } => {
                let body = EventBody::SignalReceived {
                    wait_cmd,
                    payload: payload.clone(),
                };
                if append_delivery(b, &run_id, body, at_ms).await?.is_ok() {
                    return Ok(SignalOutcome::To(run_id));
                }
                // That waiter's run is gone: try the next one.
            }
        }
    }
}

/// A signal from outside (client, HTTP, the engine): delivered to a waiting run (outcome
/// `Appended` for that run) or kept (`Updated`).
pub(crate) async fn signal(
    b: &mut Batch<'_, '_>,
    signal_id: &str,
    payload: &Value,
    at_ms: u64,
) -> Result<OpResult, StoreError> {
    advisory_lock(b, SIGNAL_LOCKS, signal_id, "lock signal").await?;
    loop {
        match send_signal(b, signal_id, payload, at_ms).await? {
            Delivery::Kept => return Ok(Ok(OpOutcome::Updated)),
            Delivery::To { run_id, wait_cmd } => {
                let body = EventBody::SignalReceived {
                    wait_cmd,
                    payload: payload.clone(),
                };
                if let Ok(event) = append_delivery(b, &run_id, body, at_ms).await? {
                    return Ok(Ok(OpOutcome::Appended {
                        run_id,
                        events: vec![event],
                    }));
                }
            }
        }
    }
}

/// The fields of `WriteOp::SpawnHook`.
pub(crate) struct SpawnHookOp<'a> {
    /// The run whose namespace the thread works in.
    pub(crate) run_id: &'a str,
    /// The new thread's id.
    pub(crate) hook_id: &'a str,
    /// The workflow it runs.
    pub(crate) workflow: &'a str,
    /// Its input.
    pub(crate) args: &'a Value,
    /// Its retry policy.
    pub(crate) retry: &'a RetryPolicy,
    /// Commit time.
    pub(crate) at_ms: u64,
}

/// Spawn a hook thread from outside in the namespace of `run_id`.
pub(crate) async fn spawn_hook(
    b: &mut Batch<'_, '_>,
    op: SpawnHookOp<'_>,
) -> Result<OpResult, StoreError> {
    let Some(parent) = b.lock_run(op.run_id).await? else {
        return Ok(Err(OpRejected::RunNotFound {
            run_id: op.run_id.to_owned(),
        }));
    };
    if parent.status.is_terminal() {
        return Ok(Err(OpRejected::RunFinished {
            run_id: op.run_id.to_owned(),
            status: parent.status,
        }));
    }
    let root = root_of(b, op.run_id).await?;
    let info = ThreadInfo {
        root_run: root,
        parent_run: op.run_id.to_owned(),
        retry: op.retry.clone(),
        fail_signal: None,
    };
    let created = create_thread(
        b,
        NewThread {
            hook_id: op.hook_id,
            workflow: op.workflow,
            args: op.args,
            info,
            at_ms: op.at_ms,
        },
    )
    .await?;
    match created {
        Some(event) => Ok(Ok(OpOutcome::Appended {
            run_id: op.hook_id.to_owned(),
            events: vec![event],
        })),
        None => Ok(Err(OpRejected::RunExists {
            run_id: op.hook_id.to_owned(),
        })),
    }
}

/// Append one delivery entry (a signal) to a run that is not the one being written, under
/// that run's row lock; refused if the run is gone or finished.
pub(crate) async fn append_delivery(
    b: &mut Batch<'_, '_>,
    run_id: &str,
    body: EventBody,
    at_ms: u64,
) -> Result<Result<Event, OpRejected>, StoreError> {
    let Some(run) = b.lock_run(run_id).await? else {
        return Ok(Err(OpRejected::RunNotFound {
            run_id: run_id.to_owned(),
        }));
    };
    if run.status.is_terminal() {
        return Ok(Err(OpRejected::RunFinished {
            run_id: run_id.to_owned(),
            status: run.status,
        }));
    }
    let event = Event {
        seq: run.last_seq + 1,
        at_ms,
        body,
    };
    insert_events(b, run_id, std::slice::from_ref(&event))?;
    b.execute(
        "UPDATE runs SET last_seq = $2, updated_at = $3 WHERE id = $1",
        &[
            &run_id,
            &to_db(event.seq, "journal seq")?,
            &to_db(at_ms, "commit time")?,
        ],
        "update run",
    )
    .await?;
    Ok(Ok(event))
}

/// The payload wait `wait_cmd` of `run_id` took, if it took one in the run's current attempt:
/// the entries of the append being written (`written`, not in the buffer yet) first, then the
/// journal (a read: the buffer is written first), newest first, down to that wait's own
/// `SignalWaited` (or an `AttemptFailed`, before which command indices belonged to another
/// attempt).
async fn taken_payload(
    b: &Batch<'_, '_>,
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
    let cmd_text = wait_cmd.to_string();
    let row = b
        .query_opt(
            "SELECT kind, body FROM events
             WHERE run_id = $1
               AND ((kind = 'signal_received' AND (body::jsonb ->> 'wait_cmd') = $2)
                 OR (kind = 'signal_waited' AND (body::jsonb ->> 'cmd') = $2)
                 OR kind = 'attempt_failed')
             ORDER BY seq DESC LIMIT 1",
            &[&run_id, &cmd_text],
            "find the payload a released wait took",
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let kind: String = col(&row, 0, "find the payload a released wait took")?;
    if kind != "signal_received" {
        return Ok(None);
    }
    let body: String = col(&row, 1, "find the payload a released wait took")?;
    let body: EventBody = serde_json::from_str(&body)
        .map_err(|e| StoreError::corrupt(format!("journal entry of {run_id}: {e}")))?;
    Ok(match body {
        EventBody::SignalReceived { payload, .. } => Some(payload),
        _ => None,
    })
}

/// Release wait `wait_cmd` of `run_id` (the run whose append this is): forget it if it still
/// waits; else give back the payload it took, to the oldest other wait on `signal_id` (whose
/// run is still going) or first in line of the kept signals (a negated value of the table's
/// own sequence: smaller than every id, newest return first, unique across nodes).
pub(crate) async fn release_wait(
    b: &mut Batch<'_, '_>,
    run_id: &str,
    wait_cmd: CommandIndex,
    signal_id: &str,
    written: &[Event],
    at_ms: u64,
) -> Result<Released, StoreError> {
    advisory_lock(b, SIGNAL_LOCKS, signal_id, "lock signal").await?;
    let forgotten = b
        .execute(
            "DELETE FROM signal_waits WHERE run_id = $1 AND cmd = $2 AND signal_id = $3",
            &[&run_id, &i64::from(wait_cmd), &signal_id],
            "forget a released signal wait",
        )
        .await?;
    let payload = if forgotten > 0 {
        None
    } else {
        taken_payload(b, run_id, wait_cmd, written).await?
    };
    let Some(payload) = payload else {
        return Ok(Released {
            returned: None,
            outcome: SignalOutcome::Kept,
        });
    };
    loop {
        let Some((to, to_cmd)) = take_waiter(b, signal_id).await? else {
            let text = encode_value(&payload, "signal payload")?;
            b.execute(
                "INSERT INTO signals (id, signal_id, payload, created_at) OVERRIDING SYSTEM VALUE
                 VALUES (-nextval(pg_get_serial_sequence('signals', 'id')), $1, $2, $3)",
                &[&signal_id, &text, &to_db(at_ms, "commit time")?],
                "give a signal back",
            )
            .await?;
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
        if append_delivery(b, &to, body, at_ms).await?.is_ok() {
            return Ok(Released {
                returned: Some(payload),
                outcome: SignalOutcome::To(to),
            });
        }
    }
}
