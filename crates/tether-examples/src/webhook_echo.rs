//! `webhook_echo`: a webhook, a hook whose token is also a URL
//! (`GET /v1/runs/{id}/hooks` lists its `url`). It waits for one HTTP request, any method. In
//! `static` mode the caller gets `202 Accepted` at once; in `manual` mode the workflow answers
//! from a step with `200 {"echo": <the request body as JSON>}`.
//!
//! Input `{"mode": "static" | "manual"}`; output `{"method": ..., "body": <body as JSON>}`.

use serde::Deserialize;
use serde_json::{json, Value};
use tether::{Ctx, WebhookOptions, WebhookResponse, WorkflowError};

/// Input of `webhook_echo`.
#[derive(Debug, Deserialize)]
pub struct EchoInput {
    /// `static` or `manual`.
    pub mode: String,
}

/// The workflow.
pub async fn webhook_echo(ctx: Ctx, input: EchoInput) -> Result<Value, WorkflowError> {
    let options = match input.mode.as_str() {
        "static" => WebhookOptions::default(),
        "manual" => WebhookOptions::manual(),
        other => {
            return Err(WorkflowError::with_code(
                "invalid_input",
                format!("mode must be \"static\" or \"manual\", not {other:?}"),
            ))
        }
    };
    let mut webhook = ctx.create_webhook(options).await?;
    let request = webhook.recv().await?;
    let body = request.body.as_ref().map_or(Value::Null, |b| b.to_json());
    if input.mode == "manual" {
        request
            .respond_with(&ctx, WebhookResponse::json(200, json!({ "echo": body })))
            .await?;
    }
    Ok(json!({ "method": request.method, "body": body }))
}
