//! Hooks on the write path: registering a token (the primary key decides conflicts),
//! releasing it, and delivering a payload to the hook that holds a token (`WriteOp::Resume`,
//! with its idempotency key).

use rusqlite::{params, Connection, OptionalExtension};
use tether_core::event::{CommandIndex, Event};
use tether_store::plan::resume::ResumeBackend;
use tether_store::plan::{NewHook, RunRow};
use tether_store::StoreError;

use crate::append::Tx;
use crate::error::Ctx;
use crate::rows::encode_value;
use crate::write::{insert_event, read_run};

/// Register a hook; `Some(holder run)` when another active hook holds the token. The primary
/// key on `hooks.token` decides, not a prior lookup.
pub(crate) fn register_hook(
    conn: &Connection,
    hook: &NewHook<'_>,
) -> Result<Option<String>, StoreError> {
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
        None => Err(StoreError::unavailable(format!(
            "hook insert for run {} conflicted, but no hook holds its token",
            hook.run_id
        ))),
    }
}

/// Release `token` if this run's hook `hook_cmd` holds it.
pub(crate) fn release_hook(
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

impl ResumeBackend for Tx<'_> {
    async fn first_answer(
        &mut self,
        token: &str,
        key: &str,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        self.0
            .prepare_cached(
                "SELECT run_id, payload_digest FROM idempotency WHERE token = ?1 AND key = ?2",
            )
            .and_then(|mut stmt| {
                stmt.query_row([token, key], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .ctx("look up idempotency key")
    }

    async fn hook_holder(
        &mut self,
        token: &str,
    ) -> Result<Option<(String, CommandIndex)>, StoreError> {
        self.0
            .prepare_cached("SELECT run_id, hook_cmd FROM hooks WHERE token = ?1")
            .and_then(|mut stmt| {
                stmt.query_row([token], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .ctx("look up hook")
    }

    fn holds(&self, _run_id: &str) -> bool {
        // The one writer connection's immediate transaction excludes every other writer.
        true
    }

    async fn lock_run(&mut self, run_id: &str) -> Result<Option<RunRow>, StoreError> {
        read_run(self.0, run_id)
    }

    async fn record_key(
        &mut self,
        token: &str,
        key: &str,
        run_id: &str,
        digest: &str,
        at_ms: u64,
    ) -> Result<bool, StoreError> {
        self.0
            .prepare_cached(
                "INSERT INTO idempotency (token, key, run_id, created_at, payload_digest)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut stmt| stmt.execute(params![token, key, run_id, at_ms, digest]))
            .ctx("record idempotency key")?;
        Ok(true)
    }

    async fn append_delivered(&mut self, run_id: &str, event: &Event) -> Result<(), StoreError> {
        insert_event(self.0, run_id, event)?;
        self.0
            .prepare_cached("UPDATE runs SET last_seq = ?2, updated_at = ?3 WHERE id = ?1")
            .and_then(|mut stmt| stmt.execute(params![run_id, event.seq, event.at_ms]))
            .ctx("update run")?;
        Ok(())
    }
}
