//! `github_events`: a webhook verified with the GitHub preset
//! ([`WebhookVerifier::github`]): every request must carry a valid `X-Hub-Signature-256`, and
//! a delivery GitHub retries (same `X-GitHub-Delivery`) is stored once. It collects the
//! events' JSON bodies until one has `"action": "closed"`.
//!
//! The secret is the environment variable `TETHER_EXAMPLE_GITHUB_SECRET` (the journal records
//! only that name). The `tether` binary sets it to [`DEV_SECRET`] (`dev-secret`) at start when
//! it is unset, so `tether dev` works out of the box; set it yourself for anything else.
//!
//! Input: anything (ignored); output `{"events": [<body>, ...]}`, the bodies in order.

use serde_json::{json, Value};
use tether::{Ctx, WebhookOptions, WebhookVerifier, WorkflowError};

/// The environment variable holding the example's GitHub webhook secret.
pub const SECRET_ENV: &str = "TETHER_EXAMPLE_GITHUB_SECRET";

/// The secret the `tether` binary uses when [`SECRET_ENV`] is unset: for local trials only.
pub const DEV_SECRET: &str = "dev-secret";

/// The workflow.
pub async fn github_events(ctx: Ctx, _input: Value) -> Result<Value, WorkflowError> {
    let options = WebhookOptions::default().verified(WebhookVerifier::github(SECRET_ENV));
    let mut webhook = ctx.create_webhook(options).await?;
    let mut events = Vec::new();
    loop {
        let request = webhook.recv().await?;
        let body = request.body.as_ref().map_or(Value::Null, |b| b.to_json());
        let closed = body.get("action").and_then(Value::as_str) == Some("closed");
        events.push(body);
        if closed {
            break;
        }
    }
    webhook.dispose();
    Ok(json!({ "events": events }))
}
