//! Payloads kept for a token no hook holds yet, as the planner's
//! [`tether_store::plan::PendingBackend`]: the `pending_payloads` rows, oldest first. The
//! rules are in [`tether_store::plan::keep`].

use rusqlite::{params, OptionalExtension};
use tether_store::plan::{KeptPayload, PendingBackend};
use tether_store::StoreError;

use crate::append::Tx;
use crate::error::{decode_err, Ctx};
use crate::rows::encode_value;

impl PendingBackend for Tx<'_> {
    async fn lock_token(&mut self, _token: &str) -> Result<(), StoreError> {
        // One writer connection in an immediate transaction: nobody else writes meanwhile.
        Ok(())
    }

    async fn kept_key(&mut self, token: &str, key: &str) -> Result<Option<String>, StoreError> {
        let digest: Option<Option<String>> = self
            .0
            .prepare_cached(
                "SELECT payload_digest FROM pending_payloads
                 WHERE token = ?1 AND idempotency_key = ?2",
            )
            .and_then(|mut stmt| stmt.query_row([token, key], |r| r.get(0)).optional())
            .ctx("look up a kept payload's key")?;
        Ok(digest.flatten())
    }

    async fn keep_payload(
        &mut self,
        token: &str,
        kept: &KeptPayload,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        let text = encode_value(&kept.payload, "kept payload")?;
        self.0
            .prepare_cached(
                "INSERT INTO pending_payloads
                   (token, payload, idempotency_key, payload_digest, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut stmt| stmt.execute(params![token, text, kept.key, kept.digest, at_ms]))
            .ctx("keep payload")?;
        Ok(())
    }

    async fn take_kept_payloads(&mut self, token: &str) -> Result<Vec<KeptPayload>, StoreError> {
        let rows: Vec<(String, Option<String>, Option<String>)> = self
            .0
            .prepare_cached(
                "SELECT payload, idempotency_key, payload_digest FROM pending_payloads
                 WHERE token = ?1 ORDER BY id",
            )
            .and_then(|mut stmt| {
                stmt.query_map([token], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .ctx("find kept payloads")?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        self.0
            .prepare_cached("DELETE FROM pending_payloads WHERE token = ?1")
            .and_then(|mut stmt| stmt.execute([token]))
            .ctx("take kept payloads")?;
        rows.into_iter()
            .map(|(text, key, digest)| {
                let payload =
                    serde_json::from_str(&text).map_err(|e| decode_err("kept payload", e))?;
                Ok(KeptPayload {
                    payload,
                    key,
                    digest,
                })
            })
            .collect()
    }

    async fn record_delivered_key(
        &mut self,
        token: &str,
        key: &str,
        run_id: &str,
        digest: &str,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        self.0
            .prepare_cached(
                "INSERT INTO idempotency (token, key, run_id, created_at, payload_digest)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (token, key) DO NOTHING",
            )
            .and_then(|mut stmt| stmt.execute(params![token, key, run_id, at_ms, digest]))
            .ctx("record a delivered payload's key")?;
        Ok(())
    }
}
