//! Payloads kept for a token no hook holds yet (the contract on
//! [`crate::WriteOp::ResumeOrKeep`]): resumed like [`crate::WriteOp::Resume`] when a hook holds
//! the token, else kept last in line; the append registering a hook with the token takes them
//! all, oldest first ([`take_for_hook`]). The backend gives the rows ([`PendingBackend`]);
//! the rules are here, the same for every backend.

use serde_json::Value;

use super::resume::{self, Delivery, ResumeBackend};
use crate::{payload_digest, OpOutcome, OpRejected, OpResult, StoreError};

/// A payload kept for a token.
#[derive(Clone, Debug, PartialEq)]
pub struct KeptPayload {
    /// The payload.
    pub payload: Value,
    /// Its idempotency key, if it came with one.
    pub key: Option<String>,
    /// The digest of the payload, when it came with a key.
    pub digest: Option<String>,
}

/// The rows of kept payloads, in the batch's transaction.
#[allow(async_fn_in_trait)] // generic use only: the caller's concrete future keeps its `Send`
pub trait PendingBackend {
    /// Serialise the writers of the kept payloads of `token` for the rest of the transaction
    /// (a backend with one writer needs nothing).
    async fn lock_token(&mut self, token: &str) -> Result<(), StoreError>;

    /// The digest of the payload kept for `token` with idempotency key `key`, if one is.
    async fn kept_key(&mut self, token: &str, key: &str) -> Result<Option<String>, StoreError>;

    /// Keep `payload` for `token`, last in line.
    async fn keep_payload(
        &mut self,
        token: &str,
        kept: &KeptPayload,
        at_ms: u64,
    ) -> Result<(), StoreError>;

    /// Remove and return every payload kept for `token`, oldest first.
    async fn take_kept_payloads(&mut self, token: &str) -> Result<Vec<KeptPayload>, StoreError>;

    /// Record that idempotency key `key` of `token` answered with `run_id` (a kept payload
    /// delivered); nothing if it is recorded already.
    async fn record_delivered_key(
        &mut self,
        token: &str,
        key: &str,
        run_id: &str,
        digest: &str,
        at_ms: u64,
    ) -> Result<(), StoreError>;
}

/// [`crate::WriteOp::ResumeOrKeep`]: resume `d` when a hook holds its token, else keep it.
pub async fn resume_or_keep<B: ResumeBackend + PendingBackend>(
    b: &mut B,
    d: Delivery<'_>,
) -> Result<OpResult, StoreError> {
    // A hook holding the token: a resume, without the token's lock (an append registering a
    // hook takes its run's lock, then the token's: taking them the other way round here
    // would risk a deadlock on the common path).
    match resume::resume(b, d).await? {
        Err(OpRejected::HookNotFound { .. }) => {}
        other => return Ok(other),
    }
    // Under the token's lock, "no hook holds it" stays true until the payload is kept: the
    // append registering a hook takes the same lock before it takes the kept payloads.
    b.lock_token(d.token).await?;
    if let Some(key) = d.key {
        if let Some(kept_digest) = b.kept_key(d.token, key).await? {
            return Ok(if kept_digest == payload_digest(d.payload) {
                Ok(OpOutcome::Kept)
            } else {
                Err(OpRejected::IdempotencyKeyReused {
                    token: d.token.to_owned(),
                    key: key.to_owned(),
                })
            });
        }
    }
    // Looked at again under the lock: a hook registered (and committed) meanwhile takes it.
    match resume::resume(b, d).await? {
        Err(OpRejected::HookNotFound { .. }) => {}
        other => return Ok(other),
    }
    let kept = KeptPayload {
        payload: d.payload.clone(),
        key: d.key.map(str::to_owned),
        digest: d.key.map(|_| payload_digest(d.payload)),
    };
    b.keep_payload(d.token, &kept, d.at_ms).await?;
    Ok(Ok(OpOutcome::Kept))
}

/// A hook of `run_id` registered `token`: take the payloads kept for it, oldest first (their
/// keys now answer with `run_id`). The caller writes them as `HookReceived` after the hook.
pub async fn take_for_hook<B: PendingBackend>(
    b: &mut B,
    token: &str,
    run_id: &str,
    at_ms: u64,
) -> Result<Vec<Value>, StoreError> {
    b.lock_token(token).await?;
    let kept = b.take_kept_payloads(token).await?;
    let mut payloads = Vec::with_capacity(kept.len());
    for k in kept {
        if let (Some(key), Some(digest)) = (&k.key, &k.digest) {
            b.record_delivered_key(token, key, run_id, digest, at_ms)
                .await?;
        }
        payloads.push(k.payload);
    }
    Ok(payloads)
}
