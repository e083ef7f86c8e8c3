//! `collect`: one hook used as a stream. Receives payloads, in the order they were accepted,
//! until one has `"done": true`.
//!
//! Input `{}`; output `{"payloads": [every payload received, the last included]}`.

use serde::Deserialize;
use serde_json::{json, Value};
use tether::{Ctx, HookOptions, WorkflowError};

/// Input of `collect` (no fields).
#[derive(Debug, Deserialize)]
pub struct CollectInput {}

/// The workflow.
pub async fn collect(ctx: Ctx, _input: CollectInput) -> Result<Value, WorkflowError> {
    let mut hook = ctx.create_hook::<Value>(HookOptions::new()).await?;
    let mut payloads = Vec::new();
    // `for await`: `hook.next()` has `StreamExt::next`'s shape (and `Hook` is a `Stream`).
    while let Some(p) = hook.next().await {
        let p = p?;
        let done = p.get("done").and_then(Value::as_bool).unwrap_or(false);
        payloads.push(p);
        if done {
            break;
        }
    }
    Ok(json!({ "payloads": payloads }))
}
