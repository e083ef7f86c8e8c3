//! The rows of child runs ([`tether_store::plan::ChildBackend`]): the child created with its
//! parent's `ChildStarted`, the parent a child reports its end to, the children a cancel
//! reaches. Same semantics as the SQLite backend; a delivery to the parent or a child locks
//! that run's row like any other delivery (`threads::append_delivery`).

use tether_core::event::{CommandIndex, Event, EventBody, RunStatus};
use tether_store::plan::{ChildBackend, NewChild, ParentLink};
use tether_store::StoreError;

use crate::journal::insert_events;
use crate::rows::{col, encode_value, to_db};
use crate::write::Batch;

impl ChildBackend for Batch<'_> {
    async fn create_child(&mut self, child: NewChild<'_>) -> Result<(), StoreError> {
        let input = encode_value(child.input, "child input")?;
        let at = to_db(child.at_ms, "commit time")?;
        let cmd = i64::from(child.parent_cmd);
        let inserted = self
            .execute(
                "INSERT INTO runs (id, workflow, status, input, created_at, updated_at, last_seq,
                                   parent_run_id, parent_cmd, detached)
                 VALUES ($1, $2, $3, $4, $5, $5, 1, $6, $7, $8)
                 ON CONFLICT (id) DO NOTHING",
                &[
                    &child.child_run_id,
                    &child.workflow,
                    &RunStatus::Pending.as_str(),
                    &input,
                    &at,
                    &child.parent_run_id,
                    &cmd,
                    &child.detached,
                ],
                "insert child run",
            )
            .await?;
        if inserted == 0 {
            return Ok(());
        }
        self.mark_locked(child.child_run_id);
        let started = Event {
            seq: 1,
            at_ms: child.at_ms,
            body: EventBody::RunStarted {
                workflow: child.workflow.to_owned(),
                input: child.input.clone(),
                thread: None,
            },
        };
        insert_events(self, child.child_run_id, std::slice::from_ref(&started))
    }

    async fn attached_children(&mut self, run_id: &str) -> Result<Vec<String>, StoreError> {
        let what = "find the run's children";
        let row = self
            .query_opt(
                "SELECT COALESCE(array_agg(id ORDER BY created_at, id), '{}') FROM runs
                 WHERE parent_run_id = $1 AND NOT detached
                   AND status NOT IN ('completed', 'failed', 'cancelled')",
                &[&run_id],
                what,
            )
            .await?;
        match row {
            Some(row) => col(&row, 0, what),
            None => Ok(Vec::new()),
        }
    }
}

/// The parent link in columns `parent_run_id, parent_cmd` of `row`, starting at column `at`.
pub(crate) fn parent_link(
    row: &tokio_postgres::Row,
    at: usize,
    what: &str,
) -> Result<Option<ParentLink>, StoreError> {
    let parent: Option<String> = col(row, at, what)?;
    let cmd: Option<i64> = col(row, at + 1, what)?;
    Ok(match (parent, cmd) {
        (Some(run_id), Some(cmd)) => Some(ParentLink {
            run_id,
            cmd: CommandIndex::try_from(cmd)
                .map_err(|_| crate::error::bad_number("parent_cmd", cmd))?,
        }),
        _ => None,
    })
}
