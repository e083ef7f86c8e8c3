//! The hook side of a group commit: registering and releasing tokens (the `hooks` primary key
//! decides who holds one) and delivering payloads (`Resume`), with idempotency keys.

use tether_core::event::{CommandIndex, Event};
use tether_store::plan::hook_end::{HookEndBackend, HookRelease};
use tether_store::plan::resume::{ResumeBackend, MAX_HOOK_RACES};
use tether_store::plan::{NewHook, RunRow};
use tether_store::{HookEnd, StoreError};

use crate::journal::append_delivered;
use crate::rows::{col, encode_value, hook_end_from_row, to_db, HOOK_END_COLUMNS};
use crate::write::Batch;

/// Register a hook; `Some(holder run)` when another active hook holds the token. The primary
/// key on `hooks.token` decides (`ON CONFLICT DO NOTHING` waits for a concurrent insert of
/// the same token to commit or roll back), not a prior lookup.
pub(crate) async fn register_hook(
    b: &Batch<'_>,
    hook: &NewHook<'_>,
) -> Result<Option<String>, StoreError> {
    let metadata = encode_value(hook.metadata, "hook metadata")?;
    let cmd = i64::from(hook.cmd);
    let at = to_db(hook.at_ms, "commit time")?;
    let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let expires_at = hook.expires_at_ms.map(clamp);
    let reserve_ms = hook.reserve_ms.map(clamp);
    for _ in 0..MAX_HOOK_RACES {
        let inserted = b
            .execute(
                "INSERT INTO hooks (token, run_id, hook_cmd, kind, metadata, definition, created_at,
                                    expires_at, reserve_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (token) DO NOTHING",
                &[
                    &hook.token,
                    &hook.run_id,
                    &cmd,
                    &hook.kind,
                    &metadata,
                    &hook.definition,
                    &at,
                    &expires_at,
                    &reserve_ms,
                ],
                "insert hook",
            )
            .await?;
        if inserted == 1 {
            return Ok(None);
        }
        if let Some((holder, _)) = hook_holder(b, hook.token).await? {
            return Ok(Some(holder));
        }
        // The holder released the token between the two statements: try to take it again.
    }
    Err(StoreError::unavailable(format!(
        "hook insert for run {} kept conflicting, but no hook holds its token",
        hook.run_id
    )))
}

/// The run and command index of the hook holding `token`, if any.
async fn hook_holder(
    b: &Batch<'_>,
    token: &str,
) -> Result<Option<(String, CommandIndex)>, StoreError> {
    let row = b
        .query_opt(
            "SELECT run_id, hook_cmd FROM hooks WHERE token = $1",
            &[&token],
            "look up hook",
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let run_id: String = col(&row, 0, "look up hook")?;
    let cmd: i64 = col(&row, 1, "look up hook")?;
    let cmd = CommandIndex::try_from(cmd)
        .map_err(|_| crate::error::bad_number(&format!("hook_cmd of hook of run {run_id}"), cmd))?;
    Ok(Some((run_id, cmd)))
}

/// Release `token` if this run's hook `hook_cmd` holds it (with the end it leaves, written by
/// the buffer's statement).
pub(crate) async fn release_hook(
    b: &Batch<'_>,
    token: &str,
    run_id: &str,
    hook_cmd: CommandIndex,
    how: HookRelease,
    at_ms: u64,
) -> Result<(), StoreError> {
    let at = to_db(at_ms, "commit time")?;
    let expired = how == HookRelease::Expired;
    b.buffer()
        .release(token, run_id, i64::from(hook_cmd), expired, at);
    Ok(())
}

impl HookEndBackend for Batch<'_> {
    async fn hook_end(&mut self, token: &str) -> Result<Option<HookEnd>, StoreError> {
        let sql = format!("SELECT {HOOK_END_COLUMNS} FROM hook_ends WHERE token = $1");
        let row = self.query_opt(&sql, &[&token], "read hook end").await?;
        row.as_ref().map(hook_end_from_row).transpose()
    }

    async fn forget_hook_end(&mut self, token: &str) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM hook_ends WHERE token = $1",
            &[&token],
            "forget hook end",
        )
        .await?;
        Ok(())
    }

    async fn unregister_hook(
        &mut self,
        token: &str,
        run_id: &str,
        hook_cmd: CommandIndex,
    ) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM hooks WHERE token = $1 AND run_id = $2 AND hook_cmd = $3",
            &[&token, &run_id, &i64::from(hook_cmd)],
            "take back hook registration",
        )
        .await?;
        Ok(())
    }
}

impl ResumeBackend for Batch<'_> {
    async fn first_answer(
        &mut self,
        token: &str,
        key: &str,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        let row = self
            .query_opt(
                "SELECT run_id, payload_digest FROM idempotency WHERE token = $1 AND key = $2",
                &[&token, &key],
                "look up idempotency key",
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let run_id: String = col(&row, 0, "look up idempotency key")?;
        let digest: Option<String> = col(&row, 1, "look up idempotency key")?;
        Ok(Some((run_id, digest)))
    }

    fn known_holder(&self, token: &str) -> Option<Option<(String, CommandIndex)>> {
        self.cached_holder(token)
    }

    async fn hook_holder(
        &mut self,
        token: &str,
    ) -> Result<Option<(String, CommandIndex)>, StoreError> {
        hook_holder(self, token).await
    }

    fn holds(&self, run_id: &str) -> bool {
        Batch::holds(self, run_id)
    }

    async fn lock_run(&mut self, run_id: &str) -> Result<Option<RunRow>, StoreError> {
        Batch::lock_run(self, run_id).await
    }

    async fn record_key(
        &mut self,
        token: &str,
        key: &str,
        run_id: &str,
        digest: &str,
        at_ms: u64,
    ) -> Result<bool, StoreError> {
        let recorded = self
            .execute(
                "INSERT INTO idempotency (token, key, run_id, created_at, payload_digest)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (token, key) DO NOTHING",
                &[
                    &token,
                    &key,
                    &run_id,
                    &to_db(at_ms, "commit time")?,
                    &digest,
                ],
                "record idempotency key",
            )
            .await?;
        Ok(recorded > 0)
    }

    async fn append_delivered(&mut self, run_id: &str, event: &Event) -> Result<(), StoreError> {
        append_delivered(self, run_id, event)
    }
}
