//! The write side of hook threads, shared state and signals: what `append` does with the
//! records that the store itself completes (values read, counts, deliveries) inside the
//! batch's transaction, plus the `Signal` and `SpawnHook` ops. Same semantics as the SQLite
//! backend; what SQLite gets from having one writer, this gets from locks: a namespace's
//! state and a signal id's queue are each guarded by a transaction-scoped advisory lock, and
//! a delivery locks the receiving run's row like any other append.

use serde_json::Value;
use tether_core::event::{Event, EventBody, RunStatus};
use tether_store::plan::{NewThread, StateBackend};
use tether_store::{OpRejected, StoreError};

use crate::journal::insert_events;
use crate::rows::{col, encode_value, to_db};
use crate::write::Batch;

/// Advisory lock class (first key) of a namespace's shared state (second key: a hash of the
/// root run id), so read-modify-writes such as `StateIncr` never lose an update.
const STATE_LOCKS: i32 = 0x5445_5401;
/// Advisory lock class of a signal id's queues (kept signals, waits), so a signal and a wait
/// for the same id arriving at once on two nodes cannot miss each other.
pub(crate) const SIGNAL_LOCKS: i32 = 0x5445_5402;
/// Advisory lock class of a token's kept payloads, so a payload kept for a token and a hook
/// registering it at once on two nodes cannot miss each other.
pub(crate) const TOKEN_LOCKS: i32 = 0x5445_5403;

/// Take the transaction-scoped advisory lock `(class, hash(name))`.
pub(crate) async fn advisory_lock(
    b: &Batch<'_>,
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
pub(crate) async fn root_of(b: &Batch<'_>, run_id: &str) -> Result<String, StoreError> {
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
pub(crate) async fn lock_namespace(b: &Batch<'_>, run_id: &str) -> Result<String, StoreError> {
    let root = root_of(b, run_id).await?;
    advisory_lock(b, STATE_LOCKS, &root, "lock shared state").await?;
    Ok(root)
}

fn decode(text: &str, what: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::corrupt(format!("{what}: {e}")))
}

impl StateBackend for Batch<'_> {
    async fn read_state(&mut self, root: &str, key: &str) -> Result<Option<Value>, StoreError> {
        let row = self
            .query_opt(
                "SELECT value FROM run_state WHERE root_run = $1 AND key = $2",
                &[&root, &key],
                "read shared state",
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let text: String = col(&row, 0, "read shared state")?;
        decode(&text, "shared state value").map(Some)
    }

    async fn write_state(
        &mut self,
        root: &str,
        key: &str,
        value: &Value,
    ) -> Result<(), StoreError> {
        let text = encode_value(value, "shared state value")?;
        self.execute(
            "INSERT INTO run_state (root_run, key, value) VALUES ($1, $2, $3)
             ON CONFLICT (root_run, key) DO UPDATE SET value = excluded.value",
            &[&root, &key, &text],
            "write shared state",
        )
        .await?;
        Ok(())
    }

    async fn delete_state(&mut self, root: &str, key: &str) -> Result<bool, StoreError> {
        let n = self
            .execute(
                "DELETE FROM run_state WHERE root_run = $1 AND key = $2",
                &[&root, &key],
                "delete shared state",
            )
            .await?;
        Ok(n > 0)
    }
}

/// Create a hook thread's run and its `RunStarted` entry. `Ok(None)` if the id exists (a
/// spawn is journaled once, so this only happens on a repeated outside request).
pub(crate) async fn create_thread(
    b: &mut Batch<'_>,
    t: NewThread<'_>,
) -> Result<Option<Event>, StoreError> {
    let input = encode_value(t.args, "hook args")?;
    let at = to_db(t.at_ms, "commit time")?;
    let inserted = b
        .execute(
            "INSERT INTO runs (id, workflow, status, input, created_at, updated_at, last_seq,
                               parent_run, root_run, queue)
             VALUES ($1, $2, $3, $4, $5, $5, 1, $6, $7, $8)
             ON CONFLICT (id) DO NOTHING",
            &[
                &t.hook_id,
                &t.workflow,
                &RunStatus::Pending.as_str(),
                &input,
                &at,
                &t.info.parent_run,
                &t.info.root_run,
                &t.queue,
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

/// Append one delivery entry (a signal) to a run that is not the one being written, under
/// that run's row lock; refused if the run is gone or finished.
pub(crate) async fn append_delivery(
    b: &mut Batch<'_>,
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
