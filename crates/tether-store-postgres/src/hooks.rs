//! The hook side of a group commit: registering and releasing tokens (the `hooks` primary key
//! decides who holds one) and delivering payloads (`Resume`), with idempotency keys.

use serde_json::Value;
use tether_core::event::{CommandIndex, Event, EventBody};
use tether_store::plan::NewHook;
use tether_store::{HookRef, OpOutcome, OpRejected, OpResult, StoreError};

use crate::journal::append_delivered;
use crate::rows::{col, encode_value, to_db};
use crate::write::Batch;

/// How many times one op looks again when the hook it is about changed under it (another node
/// released or took the token between two statements) before giving up.
const MAX_HOOK_RACES: usize = 5;

/// Register a hook; `Some(holder run)` when another active hook holds the token. The primary
/// key on `hooks.token` decides (`ON CONFLICT DO NOTHING` waits for a concurrent insert of
/// the same token to commit or roll back), not a prior lookup.
pub(crate) async fn register_hook(
    b: &Batch<'_, '_>,
    hook: &NewHook<'_>,
) -> Result<Option<String>, StoreError> {
    let metadata = encode_value(hook.metadata, "hook metadata")?;
    let cmd = i64::from(hook.cmd);
    let at = to_db(hook.at_ms, "commit time")?;
    for _ in 0..MAX_HOOK_RACES {
        let inserted = b
            .execute(
                "INSERT INTO hooks (token, run_id, hook_cmd, kind, metadata, definition, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (token) DO NOTHING",
                &[
                    &hook.token,
                    &hook.run_id,
                    &cmd,
                    &hook.kind,
                    &metadata,
                    &hook.definition,
                    &at,
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
    b: &Batch<'_, '_>,
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

/// Release `token` if this run's hook `hook_cmd` holds it.
pub(crate) async fn release_hook(
    b: &Batch<'_, '_>,
    token: &str,
    run_id: &str,
    hook_cmd: CommandIndex,
) -> Result<(), StoreError> {
    b.buffer().release(token, run_id, i64::from(hook_cmd));
    Ok(())
}

/// A payload to deliver.
pub(crate) struct Delivery<'a> {
    /// The token.
    pub(crate) token: &'a str,
    /// The payload.
    pub(crate) payload: &'a Value,
    /// Idempotency key, scoped to the token.
    pub(crate) key: Option<&'a str>,
    /// The hook the caller validated the payload against.
    pub(crate) expect: Option<&'a HookRef>,
    /// Commit time.
    pub(crate) at_ms: u64,
}

/// The run a used idempotency key answered with and the digest of the payload it was first
/// used with (`None` for keys recorded before digests were stored), if the key was used for
/// the token.
async fn first_answer(
    b: &Batch<'_, '_>,
    token: &str,
    key: &str,
) -> Result<Option<(String, Option<String>)>, StoreError> {
    let row = b
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

/// Deliver a payload to the hook holding the token (the idempotency key is checked first).
pub(crate) async fn resume(
    b: &mut Batch<'_, '_>,
    d: &Delivery<'_>,
) -> Result<OpResult, StoreError> {
    let token = d.token;
    // The answer to a key used before: the first one for the same payload (or a key recorded
    // without a digest, which matches any), a refusal for another payload.
    let digest = d.key.map(|_| tether_store::payload_digest(d.payload));
    let answer_again = |(run_id, first_digest): (String, Option<String>)| {
        if first_digest.is_some_and(|first| Some(first) != digest) {
            return Ok(Err(OpRejected::IdempotencyKeyReused {
                token: token.to_owned(),
                key: d.key.unwrap_or_default().to_owned(),
            }));
        }
        Ok(Ok(OpOutcome::Resumed {
            run_id,
            event: None,
        }))
    };
    let not_found = || {
        Ok(Err(OpRejected::HookNotFound {
            token: token.to_owned(),
        }))
    };
    for _ in 0..MAX_HOOK_RACES {
        // A key used before wins over everything else, even if the hook has been released
        // since: a retried delivery gets the first answer, another payload is refused.
        if let Some(key) = d.key {
            if let Some(first) = first_answer(b, token, key).await? {
                return answer_again(first);
            }
        }
        let holder = match b.cached_holder(token) {
            Some(holder) => holder,
            None => hook_holder(b, token).await?,
        };
        let Some((run_id, hook_cmd)) = holder else {
            return not_found();
        };
        if let Some(expect) = d.expect {
            if expect.run_id != run_id || expect.hook_cmd != hook_cmd {
                return not_found();
            }
        }
        // Hooks of a run change only under its row lock. If this transaction held it before
        // looking the hook up, the answer stands; otherwise look again once it is held.
        let held_before = b.holds(&run_id);
        let Some(run) = b.lock_run(&run_id).await? else {
            return Ok(Err(OpRejected::RunNotFound { run_id }));
        };
        if !held_before
            && hook_holder(b, token).await?.as_ref() != Some(&(run_id.clone(), hook_cmd))
        {
            continue;
        }
        // Hooks of finished runs are released, so this only refuses on damaged data.
        if run.status.is_terminal() {
            return Ok(Err(OpRejected::RunFinished {
                run_id,
                status: run.status,
            }));
        }
        let at = to_db(d.at_ms, "commit time")?;
        if let Some(key) = d.key {
            let recorded = b
                .execute(
                    "INSERT INTO idempotency (token, key, run_id, created_at, payload_digest)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (token, key) DO NOTHING",
                    &[&token, &key, &run_id, &at, &digest],
                    "record idempotency key",
                )
                .await?;
            if recorded == 0 {
                // Another writer used the key since we looked: its answer is the first one
                // (or a refusal, if it was used with another payload).
                match first_answer(b, token, key).await? {
                    Some(first) => return answer_again(first),
                    None => continue,
                }
            }
        }
        let event = Event {
            seq: run.last_seq + 1,
            at_ms: d.at_ms,
            body: EventBody::HookReceived {
                hook_cmd,
                payload: d.payload.clone(),
            },
        };
        append_delivered(b, &run_id, &event)?;
        return Ok(Ok(OpOutcome::Resumed {
            run_id,
            event: Some(event),
        }));
    }
    Err(StoreError::unavailable(format!(
        "the hook holding a token kept changing while a payload was delivered to it \
         ({MAX_HOOK_RACES} attempts)"
    )))
}
