//! The signal rows of PostgreSQL as the planner's [`SignalBackend`]: kept signals, registered
//! waits, signal idempotency keys and the journal query a released wait needs, under a
//! per-signal advisory lock. The
//! rules are in [`tether_store::plan::signal`].

use serde_json::Value;
use tether_core::event::{CommandIndex, Event, EventBody};
use tether_store::plan::{SignalBackend, SignalKey};
use tether_store::{OpRejected, StoreError};

use crate::error::decode_err;
use crate::rows::{col, encode_value, to_db};
use crate::threads::{advisory_lock, append_delivery, SIGNAL_LOCKS};
use crate::write::Batch;

impl SignalBackend for Batch<'_> {
    async fn lock_signal(&mut self, signal_id: &str) -> Result<(), StoreError> {
        advisory_lock(self, SIGNAL_LOCKS, signal_id, "lock signal").await
    }

    async fn signal_key(
        &mut self,
        signal_id: &str,
        key: &str,
    ) -> Result<Option<SignalKey>, StoreError> {
        let what = "look up a signal's idempotency key";
        let row = self
            .query_opt(
                "SELECT payload_digest, delivered_to FROM signal_keys
                 WHERE signal_id = $1 AND key = $2",
                &[&signal_id, &key],
                what,
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(SignalKey {
            digest: col(&row, 0, what)?,
            delivered_to: col(&row, 1, what)?,
        }))
    }

    async fn record_signal_key(
        &mut self,
        signal_id: &str,
        key: &str,
        first: &SignalKey,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        // No `ON CONFLICT`: the key was looked up unused under the signal's lock, so a
        // conflict would mean a second delivery; it fails the batch instead.
        self.execute(
            "INSERT INTO signal_keys (signal_id, key, payload_digest, delivered_to, created_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &signal_id,
                &key,
                &first.digest,
                &first.delivered_to,
                &to_db(at_ms, "commit time")?,
            ],
            "record a signal's idempotency key",
        )
        .await?;
        Ok(())
    }

    async fn take_waiter(
        &mut self,
        signal_id: &str,
    ) -> Result<Option<(String, CommandIndex)>, StoreError> {
        let row = self
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

    async fn keep_signal(
        &mut self,
        signal_id: &str,
        payload: &Value,
        at_ms: u64,
        first: bool,
    ) -> Result<(), StoreError> {
        let text = encode_value(payload, "signal payload")?;
        // First in line: a negated value of the table's own sequence (smaller than every id,
        // newest return first, unique across nodes).
        let (sql, what) = if first {
            (
                "INSERT INTO signals (id, signal_id, payload, created_at) OVERRIDING SYSTEM VALUE
                 VALUES (-nextval(pg_get_serial_sequence('signals', 'id')), $1, $2, $3)",
                "give a signal back",
            )
        } else {
            (
                "INSERT INTO signals (signal_id, payload, created_at) VALUES ($1, $2, $3)",
                "keep signal",
            )
        };
        self.execute(
            sql,
            &[&signal_id, &text, &to_db(at_ms, "commit time")?],
            what,
        )
        .await?;
        Ok(())
    }

    async fn take_kept(&mut self, signal_id: &str) -> Result<Option<Value>, StoreError> {
        let kept = self
            .query_opt(
                "DELETE FROM signals
                 WHERE id = (SELECT id FROM signals WHERE signal_id = $1 ORDER BY id LIMIT 1)
                 RETURNING payload",
                &[&signal_id],
                "take kept signal",
            )
            .await?;
        let Some(row) = kept else {
            return Ok(None);
        };
        let text: String = col(&row, 0, "take kept signal")?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| decode_err("kept signal payload", &e))
    }

    async fn add_wait(
        &mut self,
        signal_id: &str,
        run_id: &str,
        cmd: CommandIndex,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        self.execute(
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
        Ok(())
    }

    async fn forget_wait(
        &mut self,
        run_id: &str,
        wait_cmd: CommandIndex,
        signal_id: &str,
    ) -> Result<bool, StoreError> {
        let forgotten = self
            .execute(
                "DELETE FROM signal_waits WHERE run_id = $1 AND cmd = $2 AND signal_id = $3",
                &[&run_id, &i64::from(wait_cmd), &signal_id],
                "forget a released signal wait",
            )
            .await?;
        Ok(forgotten > 0)
    }

    async fn last_wait_entry(
        &mut self,
        run_id: &str,
        wait_cmd: CommandIndex,
    ) -> Result<Option<EventBody>, StoreError> {
        // A read: the batch's write buffer is written first. PostgreSQL's JSON types refuse
        // `\u0000` (a NUL character in a payload string): it is rewritten to `\u0001` (same
        // shape, so still valid JSON) just to read the command index; the body returned is
        // the stored one.
        let what = "find the payload a released wait took";
        let row = self
            .query_opt(
                "SELECT body FROM events
                 WHERE run_id = $1
                   AND ((kind = 'signal_received'
                         AND (replace(body, '\\u0000', '\\u0001')::jsonb ->> 'wait_cmd') = $2)
                     OR (kind = 'signal_waited'
                         AND (replace(body, '\\u0000', '\\u0001')::jsonb ->> 'cmd') = $2)
                     OR kind = 'attempt_failed')
                 ORDER BY seq DESC LIMIT 1",
                &[&run_id, &wait_cmd.to_string()],
                what,
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let body: String = col(&row, 0, what)?;
        serde_json::from_str(&body)
            .map(Some)
            .map_err(|e| decode_err(&format!("journal entry of {run_id}"), &e))
    }

    async fn append_delivery(
        &mut self,
        run_id: &str,
        body: EventBody,
        at_ms: u64,
    ) -> Result<Result<Event, OpRejected>, StoreError> {
        append_delivery(self, run_id, body, at_ms).await
    }
}
