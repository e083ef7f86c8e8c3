//! `slack_bot`: a hook with a token the sender can rebuild, `slack_messages:{channel}`, so a
//! Slack event handler resumes the right run without a lookup. Stops at the message `/stop`.
//!
//! Input `{"channel": string}`; payloads `{"text": string}`;
//! output `{"messages": [texts before /stop]}`.

use serde::Deserialize;
use serde_json::{json, Value};
use tether::{Ctx, HookOptions, WorkflowError};

/// Input of `slack_bot`.
#[derive(Debug, Deserialize)]
pub struct SlackBotInput {
    /// The channel to listen to.
    pub channel: String,
}

/// A Slack message.
#[derive(Debug, Deserialize)]
pub struct SlackMessage {
    /// Its text.
    pub text: String,
}

/// The workflow.
pub async fn slack_bot(ctx: Ctx, input: SlackBotInput) -> Result<Value, WorkflowError> {
    let mut hook = ctx
        .create_hook::<SlackMessage>(
            HookOptions::new().token(format!("slack_messages:{}", input.channel)),
        )
        .await?;
    let mut messages = Vec::new();
    // The seed's `for await (const msg of hook)`.
    while let Some(msg) = hook.next().await {
        let msg = msg?;
        if msg.text == "/stop" {
            break;
        }
        messages.push(msg.text);
    }
    Ok(json!({ "messages": messages }))
}
