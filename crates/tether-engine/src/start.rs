//! Starting a run: one op creates it already claimed by this node and running, and its first
//! actor builds it from what the commit wrote instead of reading it back.
//!
//! Without this, a new run took three commits before its code ran (create; the actor's claim;
//! the first status change) and two reads (the run, its journal). A run of 10 short steps
//! spent a fifth of its commits just starting.

use std::time::Duration;

use serde_json::Value;
use tether_store::{Fence, FirstClaim, WriteOp, FIRST_EPOCH};

use crate::engine::Engine;
use crate::error::EngineError;
use crate::new_runs::Seed;

/// How long `start_run` waits for a new run's first suspension at most.
const START_WAIT: Duration = Duration::from_secs(2);

impl Engine {
    /// Start a run of `workflow` with `input`; returns its id once it is durably recorded.
    pub async fn start_run(&self, workflow: &str, input: Value) -> Result<String, EngineError> {
        self.alive()?;
        let Some(wf) = self.inner.registry.get(workflow) else {
            return Err(EngineError::WorkflowNotFound {
                name: workflow.to_string(),
                known: self.inner.registry.workflow_names().join(", "),
            });
        };
        self.check_size(&input)?;
        wf.check_input(&input)
            .map_err(|message| EngineError::InvalidInput {
                workflow: workflow.to_string(),
                message,
            })?;
        let inner = &self.inner;
        let run_id = uuid::Uuid::now_v7().to_string();
        let at_ms = inner.now_ms();
        let fence = Fence {
            node: inner.node_id.clone(),
            epoch: FIRST_EPOCH,
        };
        // Created claimed and running: the claim cannot be refused (the row is new), and a
        // run about to execute is running. If its code first waits, its first append says so,
        // as it would have anyway.
        let op = WriteOp::CreateRun {
            run_id: run_id.clone(),
            workflow: workflow.to_string(),
            input: input.clone(),
            at_ms,
            claim: Some(FirstClaim {
                node: inner.node_id.clone(),
                lease_until_ms: at_ms + inner.config.lease.as_millis() as u64,
            }),
        };
        let started = tether_store::run_started(workflow.to_string(), input, at_ms);
        // The commit hands `RunStarted` to a new actor before it answers: the seed must be
        // there first.
        let first_flush = inner.new_runs.register(&run_id, Seed { fence, started });
        let created = inner
            .writer
            .write(op)
            .await
            .map_err(EngineError::from)
            .and_then(|r| r.map_err(EngineError::from));
        if let Err(e) = created {
            inner.new_runs.forget(&run_id);
            return Err(e);
        }
        // Wait (briefly) until the run has recorded what it first waits for, so that a hook it
        // creates at once can be resumed as soon as this returns (no "resume or start" race).
        let _ = tokio::time::timeout(START_WAIT, first_flush).await;
        // An actor that has not started by now reads the store instead.
        inner.new_runs.forget(&run_id);
        Ok(run_id)
    }
}
