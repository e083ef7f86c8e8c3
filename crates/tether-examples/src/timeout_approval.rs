//! `timeout_approval`: race a hook against a durable timer (the timeout pattern). Which one won
//! is decided by the order of the journal, so a replay takes the same branch.
//!
//! Input `{"timeout_ms": int}`; output `{"timed_out": true}` or
//! `{"timed_out": false, "approval": payload}`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use tether::{race, Ctx, Either, HookOptions, WorkflowError};

/// Input of `timeout_approval`.
#[derive(Debug, Deserialize)]
pub struct TimeoutInput {
    /// How long to wait for the approval.
    pub timeout_ms: u64,
}

/// The workflow.
pub async fn timeout_approval(ctx: Ctx, input: TimeoutInput) -> Result<Value, WorkflowError> {
    let mut hook = ctx.create_hook::<Value>(HookOptions::new()).await?;
    match race(
        hook.recv(),
        ctx.sleep(Duration::from_millis(input.timeout_ms)),
    )
    .await
    {
        Either::Left(payload) => Ok(json!({ "timed_out": false, "approval": payload? })),
        Either::Right(slept) => {
            slept?;
            Ok(json!({ "timed_out": true }))
        }
    }
}
