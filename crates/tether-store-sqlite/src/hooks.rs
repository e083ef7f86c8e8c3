//! Hooks on the write path: registering a token (the primary key decides conflicts),
//! releasing it, and delivering a payload to the hook that holds a token (`WriteOp::Resume`,
//! with its idempotency key).

use rusqlite::{params, Connection, OptionalExtension};
use tether_core::event::{CommandIndex, Event};
use tether_store::plan::hook_end::{self, HookEndBackend, HookRelease};
use tether_store::plan::resume::ResumeBackend;
use tether_store::plan::{NewHook, RunRow};
use tether_store::{HookEnd, StoreError};

use crate::append::Tx;
use crate::error::Ctx;
use crate::rows::{encode_value, hook_end_from_row, HOOK_END_COLUMNS};
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
            "INSERT INTO hooks (token, run_id, hook_cmd, kind, metadata, definition, created_at,
                                expires_at, reserve_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
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
                hook.at_ms,
                hook.expires_at_ms.map(clamp),
                hook.reserve_ms.map(clamp),
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

/// A time or duration as SQLite's signed integer (the largest one if it does not fit).
fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Release `token` if this run's hook `hook_cmd` holds it, and record the token's end if
/// [`hook_end::end_of`] says there is one.
pub(crate) fn release_hook(
    conn: &Connection,
    token: &str,
    run_id: &str,
    hook_cmd: CommandIndex,
    how: HookRelease,
    at_ms: u64,
) -> Result<(), StoreError> {
    let released: Option<Option<u64>> = conn
        .prepare_cached(
            "DELETE FROM hooks WHERE token = ?1 AND run_id = ?2 AND hook_cmd = ?3
             RETURNING reserve_ms",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![token, run_id, hook_cmd], |r| r.get(0))
                .optional()
        })
        .ctx("release hook")?;
    let Some(reserve_ms) = released else {
        return Ok(());
    };
    if let Some(end) = hook_end::end_of(token, run_id, hook_cmd, how, reserve_ms, at_ms) {
        record_end(conn, &end)?;
    }
    Ok(())
}

/// Record (or replace) the end of a token.
fn record_end(conn: &Connection, end: &HookEnd) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO hook_ends (token, run_id, hook_cmd, expired, ended_at, reserved_until)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (token) DO UPDATE SET run_id = excluded.run_id,
             hook_cmd = excluded.hook_cmd, expired = excluded.expired,
             ended_at = excluded.ended_at, reserved_until = excluded.reserved_until",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            end.token,
            end.run_id,
            end.hook_cmd,
            end.expired,
            clamp(end.ended_at_ms),
            end.reserved_until_ms.map(clamp)
        ])
    })
    .ctx("record hook end")?;
    Ok(())
}

/// The hooks of a finished run let their tokens go: every hook of the run is released in one
/// statement, and the ends of those that reserve their token ([`hook_end::end_of`] with
/// [`HookRelease::RunEnded`]) are recorded. Most runs reserve nothing: then the ending costs
/// this one statement.
pub(crate) fn release_hooks_of_run(
    conn: &Connection,
    run_id: &str,
    at_ms: u64,
) -> Result<(), StoreError> {
    let reserving: Vec<(String, CommandIndex, u64)> = conn
        .prepare_cached("DELETE FROM hooks WHERE run_id = ?1 RETURNING token, hook_cmd, reserve_ms")
        .and_then(|mut stmt| {
            let mut rows = stmt.query([run_id])?;
            let mut reserving = Vec::new();
            while let Some(row) = rows.next()? {
                if let Some(reserve_ms) = row.get::<_, Option<u64>>(2)? {
                    reserving.push((row.get(0)?, row.get(1)?, reserve_ms));
                }
            }
            Ok(reserving)
        })
        .ctx("release hooks of finished run")?;
    for (token, hook_cmd, reserve_ms) in reserving {
        let how = HookRelease::RunEnded;
        if let Some(end) = hook_end::end_of(&token, run_id, hook_cmd, how, Some(reserve_ms), at_ms)
        {
            record_end(conn, &end)?;
        }
    }
    Ok(())
}

/// The recorded end of `token`, if any.
pub(crate) fn hook_end(conn: &Connection, token: &str) -> Result<Option<HookEnd>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {HOOK_END_COLUMNS} FROM hook_ends WHERE token = ?1"
    ))
    .and_then(|mut stmt| stmt.query_row([token], hook_end_from_row).optional())
    .ctx("read hook end")
}

impl HookEndBackend for Tx<'_> {
    async fn hook_end(&mut self, token: &str) -> Result<Option<HookEnd>, StoreError> {
        hook_end(self.0, token)
    }

    async fn forget_hook_end(&mut self, token: &str) -> Result<(), StoreError> {
        self.0
            .prepare_cached("DELETE FROM hook_ends WHERE token = ?1")
            .and_then(|mut stmt| stmt.execute([token]))
            .ctx("forget hook end")?;
        Ok(())
    }

    async fn unregister_hook(
        &mut self,
        token: &str,
        run_id: &str,
        hook_cmd: CommandIndex,
    ) -> Result<(), StoreError> {
        self.0
            .prepare_cached("DELETE FROM hooks WHERE token = ?1 AND run_id = ?2 AND hook_cmd = ?3")
            .and_then(|mut stmt| stmt.execute(params![token, run_id, hook_cmd]))
            .ctx("take back hook registration")?;
        Ok(())
    }
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
