//! `fan_out`: child runs. Starts `n` children of the `steps` example with `{"n": 3}` at once,
//! waits for all of them, and adds up what they report. Each child is a run of its own (listed
//! under `GET /v1/runs/{id}/children`, its `parent_run_id` pointing back here), started exactly
//! once even across crashes; cancelling this run cancels the children still running.
//!
//! Input `{"n": int}`; output `{"children": n, "steps": 3 * n}`.

use serde::Deserialize;
use serde_json::{json, Value};
use tether::{join_all, Ctx, WorkflowError};

/// How many steps each child runs.
pub const STEPS_PER_CHILD: u32 = 3;

/// Input of `fan_out`.
#[derive(Debug, Deserialize)]
pub struct FanOutInput {
    /// How many children.
    pub n: u32,
}

/// The workflow.
pub async fn fan_out(ctx: Ctx, input: FanOutInput) -> Result<Value, WorkflowError> {
    let children: Vec<_> = (0..input.n)
        .map(|_| ctx.start_child::<Value>("steps", &json!({ "n": STEPS_PER_CHILD })))
        .collect();
    let mut steps = 0;
    for result in join_all(children.into_iter().map(|c| c.result())).await {
        steps += result?["steps"].as_u64().unwrap_or(0);
    }
    Ok(json!({ "children": input.n, "steps": steps }))
}
