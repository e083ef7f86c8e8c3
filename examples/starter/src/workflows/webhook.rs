//! `webhook`: collect HTTP requests sent to a URL until one says it is the last.
//!
//! Input `{}` (or `{"max_requests": int}`, default 100).
//!
//! The run creates a webhook: a hook whose token is also a URL,
//! `{public_url}/.well-known/workflow/v1/webhook/{token}`, answering any HTTP method with
//! `202 Accepted`. `GET /v1/runs/{run_id}/hooks` lists it with its `url`. Each request's body
//! (as JSON when it parses, else a string) is kept, in the order the requests were accepted,
//! until one has `"done": true` in its JSON body (or `max_requests` have come).
//!
//! Output: the list of bodies, the last one included.

use serde::{Deserialize, Serialize};
use tether::prelude::*;

/// Most requests a run collects when its input does not say.
pub const DEFAULT_MAX_REQUESTS: usize = 100;

/// Input of `webhook`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WebhookInput {
    /// Stop after this many requests even without `"done": true` (default
    /// [`DEFAULT_MAX_REQUESTS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<usize>,
}

/// Whether a request body ends the collection: a JSON object with `"done": true`.
pub fn is_done(body: &Value) -> bool {
    body.get("done") == Some(&Value::Bool(true))
}

/// The workflow.
pub async fn webhook(ctx: Ctx, input: WebhookInput) -> Result<Vec<Value>, WorkflowError> {
    let max = input.max_requests.unwrap_or(DEFAULT_MAX_REQUESTS).max(1);
    let mut webhook = ctx.create_webhook(WebhookOptions::default()).await?;
    let mut bodies = Vec::new();
    while bodies.len() < max {
        let request = webhook.recv().await?;
        let body = request.body.as_ref().map_or(Value::Null, |b| b.to_json());
        let done = is_done(&body);
        bodies.push(body);
        if done {
            break;
        }
    }
    Ok(bodies)
}
