//! Starting a run: one group commit creates it, claims it for this node and marks it running,
//! and its first actor builds it from what the commit wrote instead of reading it back.
//!
//! Without this, a new run took three commits before its code ran (create; the actor's claim;
//! the first status change) and two reads (the run, its journal). A run of 10 short steps
//! spent a fifth of its commits just starting.

use std::time::Duration;

use serde_json::Value;
use tether_core::{Event, EventBody, RunStatus};
use tether_store::{Fence, OpOutcome, WakeAt, WriteOp};
use tokio::sync::oneshot;
use tracing::debug;

use crate::engine::{Engine, Inner};
use crate::error::EngineError;
use crate::system_env::now_ms;

/// How long `start_run` waits for a new run's first suspension at most.
const START_WAIT: Duration = Duration::from_secs(2);

/// The epoch of the first claim of a run (a new run's row starts at 0, every claim adds one).
const FIRST_EPOCH: u64 = 1;

/// What the first actor of a run this node just created needs: the claim it holds and the
/// journal the creating commit wrote.
pub(crate) struct Seed {
    /// The claim made in the creating commit.
    pub(crate) fence: Fence,
    /// The `RunStarted` entry, as the store wrote it.
    pub(crate) started: Event,
}

impl Inner {
    /// The seed of `run_id`, if this node created it and no actor has taken the seed yet.
    pub(crate) fn take_seed(&self, run_id: &str) -> Option<Seed> {
        self.seeds.lock().remove(run_id)
    }
}

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
        let at_ms = now_ms();
        let fence = Fence {
            node: inner.node_id.clone(),
            epoch: FIRST_EPOCH,
        };
        // Create, claim and mark running in one transaction: the claim cannot be refused (the
        // row is new), and a run about to execute is running. If its code first waits, its
        // first append says so, as it would have anyway.
        let ops = vec![
            WriteOp::CreateRun {
                run_id: run_id.clone(),
                workflow: workflow.to_string(),
                input: input.clone(),
                at_ms,
            },
            WriteOp::Claim {
                run_id: run_id.clone(),
                node: inner.node_id.clone(),
                lease_until_ms: at_ms + inner.config.lease.as_millis() as u64,
                now_ms: at_ms,
            },
            WriteOp::Append {
                run_id: run_id.clone(),
                events: Vec::new(),
                status: Some(RunStatus::Running),
                wake_at: WakeAt::Keep,
                fence: Some(fence.clone()),
                at_ms,
            },
        ];
        let started = Event {
            seq: 1,
            at_ms,
            body: EventBody::RunStarted {
                workflow: workflow.to_string(),
                input,
                thread: None,
            },
        };
        let (tx, first_flush) = oneshot::channel();
        inner.starting.lock().insert(run_id.clone(), tx);
        // The commit hands `RunStarted` to a new actor before it answers: the seed must be
        // there first.
        inner
            .seeds
            .lock()
            .insert(run_id.clone(), Seed { fence, started });
        let forget = |inner: &Inner| {
            inner.starting.lock().remove(&run_id);
            inner.seeds.lock().remove(&run_id);
        };
        let results = match inner.write_all(ops).await {
            Ok(results) => results,
            Err(e) => {
                forget(inner);
                return Err(e.into());
            }
        };
        let mut results = results.into_iter();
        match results.next() {
            Some(Ok(_)) => {}
            Some(Err(rejected)) => {
                forget(inner);
                return Err(rejected.into());
            }
            None => {
                forget(inner);
                return Err(EngineError::Store(tether_store::StoreError::Corrupt(
                    "the store answered no result for a new run".into(),
                )));
            }
        }
        if !matches!(
            results.next(),
            Some(Ok(OpOutcome::Claimed { epoch: FIRST_EPOCH }))
        ) {
            // Cannot happen on a new row; the run exists anyway, and an actor without the seed
            // claims it the usual way.
            debug!(%run_id, "the creating commit did not claim the new run as expected");
            inner.seeds.lock().remove(&run_id);
        }
        // Wait (briefly) until the run has recorded what it first waits for, so that a hook it
        // creates at once can be resumed as soon as this returns (no "resume or start" race).
        let _ = tokio::time::timeout(START_WAIT, first_flush).await;
        // An actor that has not started by now reads the store instead.
        forget(inner);
        Ok(run_id)
    }
}
