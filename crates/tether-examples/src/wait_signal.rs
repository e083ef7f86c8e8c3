//! `wait_signal`: wait for one signal, sent from anywhere (another run, a hook thread, the Rust
//! client, `POST /v1/signals/{id}`). A signal sent before the run waits is kept for it.
//!
//! Input `{"signal_id": string}`; output: the signal's payload.

use serde::Deserialize;
use serde_json::Value;
use tether::{Ctx, WorkflowError};

/// Input of `wait_signal`.
#[derive(Debug, Deserialize)]
pub struct WaitSignalInput {
    /// The signal to wait for.
    pub signal_id: String,
}

/// The workflow.
pub async fn wait_signal(ctx: Ctx, input: WaitSignalInput) -> Result<Value, WorkflowError> {
    ctx.wait_for(&input.signal_id).await
}
