//! `approval`: wait for a decision on an order, or give up after a timeout.
//!
//! Input `{"order_id": string, "timeout_secs": int?}` (the timeout defaults to one day).
//!
//! The run creates a hook with the token `approval:{order_id}`, so whoever decides can send
//! the decision without looking anything up: `POST /v1/hooks/approval:o-1` with
//! `{"approved": true, "comment": "ok"}`. The hook is created from a typed definition
//! ([`decision_hook`]), so a payload that is not a [`Decision`] is refused to its sender
//! (`400 invalid_payload`) and never reaches the run. The hook races a durable timer: whichever
//! the journal records first wins, so a replay takes the same branch.
//!
//! Output: the [`Decision`], or `{"timed_out": true}` (see [`Outcome`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tether::prelude::*;

/// How long a run waits for a decision when its input gives no `timeout_secs`: one day.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// The name the decision hook definition is registered under.
pub const DECISION_HOOK: &str = "starter.decision";

/// Input of `approval`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApprovalInput {
    /// The order waiting for a decision.
    pub order_id: String,
    /// How long to wait for it, in seconds (default: [`DEFAULT_TIMEOUT`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
}

/// The payload a decision hook accepts: both fields are required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Approved or refused.
    pub approved: bool,
    /// Why.
    pub comment: String,
}

/// Output of `approval`: the decision, or `{"timed_out": true}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Outcome {
    /// A decision arrived in time.
    Decided(Decision),
    /// No decision arrived before the timeout.
    TimedOut {
        /// Always `true`.
        timed_out: bool,
    },
}

/// The typed hook definition shared by the workflow (which creates hooks from it) and the
/// sending side (the server checks payloads against it; tests use it with
/// `TestEnv::resume_typed`). Registered in [`crate::app`].
pub fn decision_hook() -> HookDef<Decision> {
    define_hook::<Decision>(DECISION_HOOK)
}

/// The token of the decision hook of `order_id`: what the sender rebuilds to resume the run.
pub fn decision_token(order_id: &str) -> String {
    format!("approval:{order_id}")
}

/// The workflow.
pub async fn approval(ctx: Ctx, input: ApprovalInput) -> Result<Outcome, WorkflowError> {
    let token = decision_token(&input.order_id);
    // Create the hook first, then tell someone about it: a decision sent at once is kept.
    let mut hook = decision_hook()
        .create(
            &ctx,
            HookOptions::new()
                .token(token.clone())
                .metadata(json!({ "order_id": input.order_id })),
        )
        .await?;

    // Side effects go in steps: journaled, so a replay (after a crash or a deploy) does not
    // notify twice. A real project would send an e-mail or a chat message here.
    ctx.step("notify", token.clone(), move |token| async move {
        println!("notify: a decision is awaited, POST it to /v1/hooks/{token}");
        Ok(format!("asked for a decision on {token}"))
    })
    .await?;

    let timeout = input
        .timeout_secs
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    match race(hook.recv(), ctx.sleep(timeout)).await {
        Either::Left(decision) => Ok(Outcome::Decided(decision?)),
        Either::Right(slept) => {
            slept?;
            Ok(Outcome::TimedOut { timed_out: true })
        }
    }
}
