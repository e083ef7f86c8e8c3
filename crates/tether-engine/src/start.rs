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

/// How [`Engine::start_run_with`] starts a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StartOptions {
    /// A run id chosen by the caller (1 to 1,024 bytes, no NUL) instead of a new one. Starting
    /// again with the same id, workflow and input answers with the run started first, so a
    /// caller that retries after a lost answer never makes a second run; the same id with
    /// another workflow or input is refused with [`EngineError::RunExists`].
    pub run_id: Option<String>,
    /// An idempotency key (an HTTP `Idempotency-Key`): without `run_id`, the run's id is
    /// derived from it, so a retried start with the same key, workflow and input answers
    /// with the first run; the same key with another workflow or input is refused with
    /// [`EngineError::IdempotencyKeyReused`]. Ignored when `run_id` is set (the id is the key).
    pub idempotency_key: Option<String>,
    /// The task queue to run it on (`None`: the default queue,
    /// [`crate::config::DEFAULT_QUEUE`]). Only nodes serving the queue run it, within the
    /// queue's limits; on a node that does not serve it, the run is stored and waits for one
    /// that does. Names: see [`tether_store::check_queue_name`].
    pub queue: Option<String>,
}

impl StartOptions {
    /// The run id a start with `key` as its idempotency key gets: a UUID (version 8) made
    /// from the key's SHA-256, the same on every node and after every restart.
    pub fn run_id_for_key(key: &str) -> String {
        let digest =
            tether_store::payload_digest_bytes(&Value::String(format!("tether.run:{key}")));
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        uuid::Builder::from_custom_bytes(bytes)
            .into_uuid()
            .to_string()
    }
}

/// What [`Engine::start_run_with`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Started {
    /// The run's id.
    pub run_id: String,
    /// `true` if this call created the run, `false` if it already existed with the same
    /// workflow and input (a retried start).
    pub created: bool,
}

impl Engine {
    /// Start a run of `workflow` with `input`; returns its id once it is durably recorded.
    pub async fn start_run(&self, workflow: &str, input: Value) -> Result<String, EngineError> {
        self.start_run_with(workflow, input, StartOptions::default())
            .await
            .map(|started| started.run_id)
    }

    /// Start a run of `workflow` with `input` as `options` say (a caller-chosen id makes the
    /// start idempotent, see [`StartOptions::run_id`]).
    pub async fn start_run_with(
        &self,
        workflow: &str,
        input: Value,
        options: StartOptions,
    ) -> Result<Started, EngineError> {
        self.alive()?;
        let keyed = options.run_id.is_none() && options.idempotency_key.is_some();
        let options = StartOptions {
            run_id: options.run_id.or_else(|| {
                options
                    .idempotency_key
                    .as_deref()
                    .map(StartOptions::run_id_for_key)
            }),
            idempotency_key: None,
            queue: options.queue,
        };
        let queue = options
            .queue
            .clone()
            .unwrap_or_else(|| tether_store::DEFAULT_QUEUE.to_owned());
        if let Err(message) = tether_store::check_queue_name(&queue) {
            return Err(EngineError::InvalidInput {
                workflow: workflow.to_string(),
                message,
            });
        }
        if let Some(id) = &options.run_id {
            if id.starts_with(tether_store::SCHEDULE_RUN_PREFIX) {
                return Err(EngineError::InvalidInput {
                    workflow: workflow.to_string(),
                    message: format!(
                        "run ids starting with {:?} are kept for the runs schedules start; \
                         choose another run id",
                        tether_store::SCHEDULE_RUN_PREFIX
                    ),
                });
            }
            if !crate::engine::plausible(id) {
                return Err(EngineError::InvalidInput {
                    workflow: workflow.to_string(),
                    message: format!(
                        "a run id must be 1 to {} bytes without NUL",
                        crate::engine::MAX_ID_LEN
                    ),
                });
            }
        }
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
        let chosen = options.run_id.is_some();
        let run_id = options
            .run_id
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let at_ms = inner.now_ms();
        let fence = Fence {
            node: inner.node_id.clone(),
            epoch: FIRST_EPOCH,
        };
        // Created claimed and running: the claim cannot be refused (the row is new), and a
        // run about to execute is running. If its code first waits, its first append says so,
        // as it would have anyway. A run of a queue this node does not serve, or of a limited
        // one, is created unclaimed (`pending`): the claim of an actor here (which the
        // commit starts) or of the poller of a node serving the queue admits it.
        let claimed = inner.queue_policy.claims_at_creation(&queue);
        let op = WriteOp::CreateRun {
            run_id: run_id.clone(),
            workflow: workflow.to_string(),
            input: input.clone(),
            at_ms,
            claim: claimed.then(|| FirstClaim {
                node: inner.node_id.clone(),
                lease_until_ms: at_ms + inner.config.lease.as_millis() as u64,
            }),
            queue,
        };
        let started = tether_store::run_started(workflow.to_string(), input.clone(), at_ms);
        // The commit hands `RunStarted` to a new actor before it answers: the seed must be
        // there first.
        let first_flush = if claimed {
            Some(inner.new_runs.register(&run_id, Seed { fence, started }))
        } else {
            None
        };
        let created = inner
            .writer
            .write(op)
            .await
            .map_err(EngineError::from)
            .and_then(|r| r.map_err(EngineError::from));
        if let Err(e) = created {
            inner.new_runs.forget(&run_id);
            return match e {
                EngineError::RunExists { .. } if chosen => {
                    match self.existing_start(&run_id, workflow, &input).await {
                        Err(EngineError::RunExists { .. }) if keyed => {
                            Err(EngineError::IdempotencyKeyReused)
                        }
                        other => other,
                    }
                }
                e => Err(e),
            };
        }
        // Wait (briefly) until the run has recorded what it first waits for, so that a hook it
        // creates at once can be resumed as soon as this returns (no "resume or start" race).
        // A queued run is not waited for: it may wait for a slot for long.
        if let Some(first_flush) = first_flush {
            let _ = tokio::time::timeout(START_WAIT, first_flush).await;
        }
        // An actor that has not started by now reads the store instead.
        inner.new_runs.forget(&run_id);
        Ok(Started {
            run_id,
            created: true,
        })
    }

    /// The answer to a start whose chosen id is taken: the run already there if it was
    /// started with the same workflow and input, else [`EngineError::RunExists`].
    async fn existing_start(
        &self,
        run_id: &str,
        workflow: &str,
        input: &Value,
    ) -> Result<Started, EngineError> {
        let run = self.get_run(run_id).await?;
        if run.workflow == workflow && &run.input == input {
            Ok(Started {
                run_id: run.run_id,
                created: false,
            })
        } else {
            Err(EngineError::RunExists {
                run_id: run_id.to_string(),
            })
        }
    }
}
