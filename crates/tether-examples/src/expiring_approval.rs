//! `expiring_approval`: a hook that expires by itself (`HookOptions::expires_in`), no timer
//! raced by hand. The expiry instant is journaled with the hook; when it comes the token is
//! released, later payloads are refused with `410 hook_expired`, and the workflow sees
//! `HookEvent::Expired`. A payload accepted before the expiry is still delivered.
//!
//! Input `{"expires_ms": int}`; output the payload, or `{"expired": true}`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use tether::{Ctx, HookEvent, HookOptions, WorkflowError};

/// Input of `expiring_approval`.
#[derive(Debug, Deserialize)]
pub struct ExpiringInput {
    /// How long the hook takes payloads, from its creation.
    pub expires_ms: u64,
}

/// The workflow.
pub async fn expiring_approval(ctx: Ctx, input: ExpiringInput) -> Result<Value, WorkflowError> {
    let options = HookOptions::new().expires_in(Duration::from_millis(input.expires_ms));
    let mut hook = ctx.create_hook::<Value>(options).await?;
    match hook.recv_or_expired().await? {
        HookEvent::Payload(payload) => Ok(payload),
        HookEvent::Expired => Ok(json!({ "expired": true })),
    }
}
