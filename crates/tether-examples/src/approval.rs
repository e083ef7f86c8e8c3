//! `approval`: wait for one decision on an order.
//!
//! Shows a typed hook definition ([`decision_hook`]) that publishes its payload's JSON Schema
//! and whose validation runs when the payload is sent: a payload without a boolean `approved` and a string `comment` is refused to the sender
//! (HTTP 400) and never reaches the run. The hook's token is generated (160 random bits) and its
//! metadata carries the order id, so `GET /v1/runs/{id}/hooks` shows which order it is for.
//!
//! Input `{"order_id": string}`; output: the payload received.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tether::{define_hook, Ctx, HookDef, HookOptions, WorkflowError};

/// Input of `approval`.
#[derive(Debug, Deserialize)]
pub struct ApprovalInput {
    /// The order waiting for approval.
    pub order_id: String,
}

/// A decision: `approved` and `comment` are required; other fields are kept as they are.
/// Its JSON Schema is published with the hook (`"schema"` in the API, the UI's resume form).
#[derive(Debug, Clone, Serialize, Deserialize, tether::JsonSchema)]
#[schemars(crate = "tether::schemars")]
pub struct Decision {
    /// Approved or not.
    pub approved: bool,
    /// Why.
    pub comment: String,
    /// Anything else the sender included.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The hook definition shared by the workflow and the resume side.
pub fn decision_hook() -> HookDef<Decision> {
    define_hook::<Decision>("approval.decision").with_schema()
}

/// The workflow.
pub async fn approval(ctx: Ctx, input: ApprovalInput) -> Result<Decision, WorkflowError> {
    let hook = decision_hook()
        .create(
            &ctx,
            HookOptions::new().metadata(json!({ "order_id": input.order_id })),
        )
        .await?;
    hook.await
}
