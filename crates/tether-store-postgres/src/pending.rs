//! Payloads kept for a token no hook holds yet, as the planner's
//! [`tether_store::plan::PendingBackend`]: the `pending_payloads` rows, oldest first, under a
//! per-token advisory lock. The rules are in [`tether_store::plan::keep`].

use tether_store::plan::{KeptPayload, PendingBackend};
use tether_store::StoreError;

use crate::error::decode_err;
use crate::rows::{col, encode_value, to_db};
use crate::threads::{advisory_lock, TOKEN_LOCKS};
use crate::write::Batch;

impl PendingBackend for Batch<'_> {
    async fn lock_token(&mut self, token: &str) -> Result<(), StoreError> {
        advisory_lock(self, TOKEN_LOCKS, token, "lock token").await
    }

    async fn kept_key(&mut self, token: &str, key: &str) -> Result<Option<String>, StoreError> {
        let row = self
            .query_opt(
                "SELECT payload_digest FROM pending_payloads
                 WHERE token = $1 AND idempotency_key = $2",
                &[&token, &key],
                "look up a kept payload's key",
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        col::<Option<String>>(&row, 0, "look up a kept payload's key")
    }

    async fn keep_payload(
        &mut self,
        token: &str,
        kept: &KeptPayload,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        let text = encode_value(&kept.payload, "kept payload")?;
        self.execute(
            "INSERT INTO pending_payloads
               (token, payload, idempotency_key, payload_digest, created_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &token,
                &text,
                &kept.key,
                &kept.digest,
                &to_db(at_ms, "commit time")?,
            ],
            "keep payload",
        )
        .await?;
        Ok(())
    }

    async fn take_kept_payloads(&mut self, token: &str) -> Result<Vec<KeptPayload>, StoreError> {
        let what = "take kept payload";
        let mut taken = Vec::new();
        loop {
            let row = self
                .query_opt(
                    "DELETE FROM pending_payloads
                     WHERE id = (SELECT id FROM pending_payloads WHERE token = $1
                                 ORDER BY id LIMIT 1)
                     RETURNING payload, idempotency_key, payload_digest",
                    &[&token],
                    what,
                )
                .await?;
            let Some(row) = row else {
                return Ok(taken);
            };
            let text: String = col(&row, 0, what)?;
            let payload =
                serde_json::from_str(&text).map_err(|e| decode_err("kept payload", &e))?;
            taken.push(KeptPayload {
                payload,
                key: col(&row, 1, what)?,
                digest: col(&row, 2, what)?,
            });
        }
    }

    async fn record_delivered_key(
        &mut self,
        token: &str,
        key: &str,
        run_id: &str,
        digest: &str,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        self.execute(
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
            "record a delivered payload's key",
        )
        .await?;
        Ok(())
    }
}
