//! `handoff`: release a token while the run goes on. On a message with `"handoff": true` the
//! run disposes its `channel:{channel}` hook at once (another run may take the token from then
//! on), creates a second hook with a generated token and waits for one payload there.
//!
//! Input `{"channel": string}`; payloads `{"message": string, "handoff": bool?}`;
//! output `{"messages": [every message, the handoff one included], "after": payload}`.

use serde::Deserialize;
use serde_json::{json, Value};
use tether::{Ctx, HookOptions, WorkflowError};

/// Input of `handoff`.
#[derive(Debug, Deserialize)]
pub struct HandoffInput {
    /// The channel whose token the run holds until the handoff.
    pub channel: String,
}

/// A channel message.
#[derive(Debug, Deserialize)]
pub struct ChannelMessage {
    /// The text.
    pub message: String,
    /// Hand the channel over after this message.
    #[serde(default)]
    pub handoff: bool,
}

/// The workflow.
pub async fn handoff(ctx: Ctx, input: HandoffInput) -> Result<Value, WorkflowError> {
    let mut hook = ctx
        .create_hook::<ChannelMessage>(
            HookOptions::new().token(format!("channel:{}", input.channel)),
        )
        .await?;
    let mut messages = Vec::new();
    loop {
        let m = hook.recv().await?;
        messages.push(m.message);
        if m.handoff {
            break;
        }
    }
    hook.dispose();
    let after = ctx.create_hook::<Value>(HookOptions::new()).await?.await?;
    Ok(json!({ "messages": messages, "after": after }))
}
