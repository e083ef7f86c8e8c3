//! The write side of hook threads, shared state and signals: what `append` does with the
//! records that the store itself completes (values read, counts, deliveries) inside the
//! batch's transaction.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use tether_core::event::{Event, EventBody, RunStatus};
use tether_store::plan::{NewThread, StateBackend};
use tether_store::StoreError;

use crate::append::Tx;
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

impl StateBackend for Tx<'_> {
    async fn read_state(&mut self, root: &str, key: &str) -> Result<Option<Value>, StoreError> {
        let text: Option<String> = self
            .0
            .prepare_cached("SELECT value FROM run_state WHERE root_run = ?1 AND key = ?2")
            .and_then(|mut stmt| stmt.query_row([root, key], |r| r.get(0)).optional())
            .ctx("read shared state")?;
        text.map(|t| decode(&t, "shared state value")).transpose()
    }

    async fn write_state(
        &mut self,
        root: &str,
        key: &str,
        value: &Value,
    ) -> Result<(), StoreError> {
        let text = encode_value(value, "shared state value")?;
        self.0
            .prepare_cached(
                "INSERT INTO run_state (root_run, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (root_run, key) DO UPDATE SET value = excluded.value",
            )
            .and_then(|mut stmt| stmt.execute(params![root, key, text]))
            .ctx("write shared state")?;
        Ok(())
    }

    async fn delete_state(&mut self, root: &str, key: &str) -> Result<bool, StoreError> {
        let n = self
            .0
            .prepare_cached("DELETE FROM run_state WHERE root_run = ?1 AND key = ?2")
            .and_then(|mut stmt| stmt.execute([root, key]))
            .ctx("delete shared state")?;
        Ok(n > 0)
    }
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
                               parent_run, root_run, queue)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, 1, ?6, ?7, ?8)
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
                t.info.root_run,
                t.queue
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
