//! The rows of child runs ([`tether_store::plan::ChildBackend`]): the child created with its
//! parent's `ChildStarted`, the parent a child reports its end to, the children a cancel
//! reaches, and the listing of a run's children.

use rusqlite::{params, Connection};
use tether_core::event::{Event, EventBody, RunStatus};
use tether_store::plan::{ChildBackend, NewChild};
use tether_store::{RunRecord, StoreError};

use crate::append::Tx;
use crate::error::Ctx;
use crate::rows::{encode_value, RawRun, RUN_COLUMNS};

impl ChildBackend for Tx<'_> {
    async fn create_child(&mut self, child: NewChild<'_>) -> Result<(), StoreError> {
        let input = encode_value(child.input, "child input")?;
        let inserted = self
            .0
            .prepare_cached(
                "INSERT INTO runs (id, workflow, status, input, created_at, updated_at, last_seq,
                                   parent_run_id, parent_cmd, detached)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, 1, ?6, ?7, ?8)
                 ON CONFLICT (id) DO NOTHING",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    child.child_run_id,
                    child.workflow,
                    RunStatus::Pending.as_str(),
                    input,
                    child.at_ms,
                    child.parent_run_id,
                    child.parent_cmd,
                    child.detached
                ])
            })
            .ctx("insert child run")?;
        if inserted == 0 {
            return Ok(());
        }
        let started = Event {
            seq: 1,
            at_ms: child.at_ms,
            body: EventBody::RunStarted {
                workflow: child.workflow.to_owned(),
                input: child.input.clone(),
                thread: None,
            },
        };
        crate::write::insert_event(self.0, child.child_run_id, &started)
    }

    async fn attached_children(&mut self, run_id: &str) -> Result<Vec<String>, StoreError> {
        self.0
            .prepare_cached(
                "SELECT id FROM runs
                 WHERE parent_run_id = ?1 AND detached = 0
                   AND status NOT IN ('completed', 'failed', 'cancelled')
                 ORDER BY created_at, id",
            )
            .and_then(|mut stmt| {
                stmt.query_map([run_id], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()
            })
            .ctx("find the run's children")
    }
}

/// The child runs of `run_id`, oldest first.
pub(crate) fn list_children(conn: &Connection, run_id: &str) -> Result<Vec<RunRecord>, StoreError> {
    let sql =
        format!("SELECT {RUN_COLUMNS} FROM runs WHERE parent_run_id = ?1 ORDER BY created_at, id");
    let raws = conn
        .prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map([run_id], RawRun::from_row)?
                .collect::<rusqlite::Result<Vec<RawRun>>>()
        })
        .ctx("list child runs")?;
    raws.into_iter().map(RawRun::into_record).collect()
}
