//! Hooks on the write path: registering a token (the primary key decides conflicts),
//! releasing it, and delivering a payload to the hook that holds a token (`WriteOp::Resume`,
//! with its idempotency key).

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use tether_core::event::{CommandIndex, Event, EventBody};
use tether_store::plan::NewHook;
use tether_store::{HookRef, OpOutcome, OpRejected, OpResult, StoreError};

use crate::error::Ctx;
use crate::rows::encode_value;
use crate::write::{insert_event, open_run};

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

pub(crate) fn resume(
    conn: &Connection,
    token: String,
    payload: Value,
    idempotency_key: Option<String>,
    expect: Option<HookRef>,
    at_ms: u64,
) -> Result<OpResult, StoreError> {
    // A key used before wins over everything else, even if the hook has been released since:
    // a retried delivery (the same payload) gets the first answer, another payload is refused.
    // A key recorded before digests were stored (NULL) matches any payload.
    let digest = idempotency_key
        .as_ref()
        .map(|_| tether_store::payload_digest(&payload));
    if let (Some(key), Some(digest)) = (&idempotency_key, &digest) {
        let first: Option<(String, Option<String>)> = conn
            .prepare_cached(
                "SELECT run_id, payload_digest FROM idempotency WHERE token = ?1 AND key = ?2",
            )
            .and_then(|mut stmt| {
                stmt.query_row([&token, key], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .ctx("look up idempotency key")?;
        if let Some((first_run, first_digest)) = first {
            if first_digest.is_some_and(|first| first != *digest) {
                return Ok(Err(OpRejected::IdempotencyKeyReused {
                    token,
                    key: key.clone(),
                }));
            }
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
            "INSERT INTO idempotency (token, key, run_id, created_at, payload_digest)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut stmt| stmt.execute(params![token, key, run_id, at_ms, digest]))
        .ctx("record idempotency key")?;
    }
    Ok(Ok(OpOutcome::Resumed {
        run_id,
        event: Some(event),
    }))
}
