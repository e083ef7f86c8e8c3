//! `steps`: `n` sequential no-op steps (the throughput benchmark's workload). Each step's
//! result is one journal write.
//!
//! Input `{"n": int}`; output `{"steps": n}`.

use serde::Deserialize;
use serde_json::{json, Value};
use tether::{Ctx, WorkflowError};

/// Input of `steps`.
#[derive(Debug, Deserialize)]
pub struct StepsInput {
    /// How many steps.
    pub n: u32,
}

/// The workflow.
pub async fn steps(ctx: Ctx, input: StepsInput) -> Result<Value, WorkflowError> {
    for i in 0..input.n {
        let _: u32 = ctx
            .step(&format!("step-{i}"), (), move |()| async move { Ok(i) })
            .await?;
    }
    Ok(json!({ "steps": input.n }))
}
