//! The signal rows of SQLite as the planner's [`SignalBackend`]: kept signals, registered
//! waits, signal idempotency keys and the journal query a released wait needs. The rules are in
//! [`tether_store::plan::signal`].

use rusqlite::{params, OptionalExtension};
use serde_json::Value;
use tether_core::event::{CommandIndex, Event, EventBody};
use tether_store::plan::{SignalBackend, SignalKey};
use tether_store::{OpRejected, StoreError};

use crate::append::Tx;
use crate::error::{decode_err, Ctx};
use crate::rows::encode_value;

impl SignalBackend for Tx<'_> {
    async fn lock_signal(&mut self, _signal_id: &str) -> Result<(), StoreError> {
        // One writer connection in an immediate transaction: nobody else writes meanwhile.
        Ok(())
    }

    async fn signal_key(
        &mut self,
        signal_id: &str,
        key: &str,
    ) -> Result<Option<SignalKey>, StoreError> {
        self.0
            .prepare_cached(
                "SELECT payload_digest, delivered_to FROM signal_keys
                 WHERE signal_id = ?1 AND key = ?2",
            )
            .and_then(|mut stmt| {
                stmt.query_row([signal_id, key], |r| {
                    Ok(SignalKey {
                        digest: r.get(0)?,
                        delivered_to: r.get(1)?,
                    })
                })
                .optional()
            })
            .ctx("look up a signal's idempotency key")
    }

    async fn record_signal_key(
        &mut self,
        signal_id: &str,
        key: &str,
        first: &SignalKey,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        self.0
            .prepare_cached(
                "INSERT INTO signal_keys (signal_id, key, payload_digest, delivered_to, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    signal_id,
                    key,
                    first.digest,
                    first.delivered_to,
                    at_ms
                ])
            })
            .ctx("record a signal's idempotency key")?;
        Ok(())
    }

    async fn take_waiter(
        &mut self,
        signal_id: &str,
    ) -> Result<Option<(String, CommandIndex)>, StoreError> {
        let row: Option<(i64, String, CommandIndex)> = self
            .0
            .prepare_cached(
                "SELECT id, run_id, cmd FROM signal_waits WHERE signal_id = ?1 ORDER BY id LIMIT 1",
            )
            .and_then(|mut stmt| {
                stmt.query_row([signal_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()
            })
            .ctx("find signal waiter")?;
        let Some((id, run_id, cmd)) = row else {
            return Ok(None);
        };
        self.0
            .prepare_cached("DELETE FROM signal_waits WHERE id = ?1")
            .and_then(|mut stmt| stmt.execute([id]))
            .ctx("take signal waiter")?;
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
        let (sql, what) = if first {
            (
                "INSERT INTO signals (id, signal_id, payload, created_at)
                 VALUES ((SELECT COALESCE(MIN(id), 1) - 1 FROM signals), ?1, ?2, ?3)",
                "give a signal back",
            )
        } else {
            (
                "INSERT INTO signals (signal_id, payload, created_at) VALUES (?1, ?2, ?3)",
                "keep signal",
            )
        };
        self.0
            .prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute(params![signal_id, text, at_ms]))
            .ctx(what)?;
        Ok(())
    }

    async fn take_kept(&mut self, signal_id: &str) -> Result<Option<Value>, StoreError> {
        let kept: Option<(i64, String)> = self
            .0
            .prepare_cached(
                "SELECT id, payload FROM signals WHERE signal_id = ?1 ORDER BY id LIMIT 1",
            )
            .and_then(|mut stmt| {
                stmt.query_row([signal_id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .ctx("find kept signal")?;
        let Some((id, text)) = kept else {
            return Ok(None);
        };
        self.0
            .prepare_cached("DELETE FROM signals WHERE id = ?1")
            .and_then(|mut stmt| stmt.execute([id]))
            .ctx("take kept signal")?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| decode_err("kept signal payload", e))
    }

    async fn add_wait(
        &mut self,
        signal_id: &str,
        run_id: &str,
        cmd: CommandIndex,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        self.0
            .prepare_cached(
                "INSERT INTO signal_waits (signal_id, run_id, cmd, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut stmt| stmt.execute(params![signal_id, run_id, cmd, at_ms]))
            .ctx("register signal wait")?;
        Ok(())
    }

    async fn forget_wait(
        &mut self,
        run_id: &str,
        wait_cmd: CommandIndex,
        signal_id: &str,
    ) -> Result<bool, StoreError> {
        let forgotten = self
            .0
            .prepare_cached(
                "DELETE FROM signal_waits WHERE run_id = ?1 AND cmd = ?2 AND signal_id = ?3",
            )
            .and_then(|mut stmt| stmt.execute(params![run_id, wait_cmd, signal_id]))
            .ctx("forget a released signal wait")?;
        Ok(forgotten > 0)
    }

    async fn last_wait_entry(
        &mut self,
        run_id: &str,
        wait_cmd: CommandIndex,
    ) -> Result<Option<EventBody>, StoreError> {
        let body: Option<String> = self
            .0
            .prepare_cached(
                "SELECT body FROM events
                 WHERE run_id = ?1
                   AND ((kind = 'signal_received' AND json_extract(body, '$.wait_cmd') = ?2)
                     OR (kind = 'signal_waited' AND json_extract(body, '$.cmd') = ?2)
                     OR kind = 'attempt_failed')
                 ORDER BY seq DESC LIMIT 1",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![run_id, wait_cmd], |r| r.get(0))
                    .optional()
            })
            .ctx("find the payload a released wait took")?;
        body.map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|e| decode_err(&format!("journal entry of {run_id}"), e))
    }

    async fn append_delivery(
        &mut self,
        run_id: &str,
        body: EventBody,
        at_ms: u64,
    ) -> Result<Result<Event, OpRejected>, StoreError> {
        crate::write::append_delivery(self.0, run_id, body, at_ms)
    }
}
