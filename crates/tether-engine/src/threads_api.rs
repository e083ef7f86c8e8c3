//! The engine's API for hook threads, signals and shared state (the HotMesh model).

use serde_json::Value;
use tether_store::{OpOutcome, RunRecord, WriteOp};

use crate::engine::{plausible, Engine, MAX_ID_LEN};
use crate::error::EngineError;
use crate::start::Started;

impl Engine {
    /// Send a signal (as from outside a run): the oldest run waiting on `signal_id` gets it,
    /// or it is kept until a wait comes. Returns the run it was delivered to, if any.
    pub async fn signal(
        &self,
        signal_id: &str,
        payload: Value,
    ) -> Result<Option<String>, EngineError> {
        self.signal_with(signal_id, payload, None).await
    }

    /// [`Engine::signal`] with an idempotency key, scoped to `signal_id`: a retried send with
    /// the same key and payload stores nothing and answers as the first send did (the run it
    /// was delivered to, or `None` if it was kept, whoever took it since); the same key with
    /// another payload is refused with [`EngineError::IdempotencyKeyReused`], storing nothing.
    /// Keys are forgotten after the idempotency window (`EngineConfig::idempotency_window`).
    pub async fn signal_with(
        &self,
        signal_id: &str,
        payload: Value,
        idempotency_key: Option<&str>,
    ) -> Result<Option<String>, EngineError> {
        self.alive()?;
        if !plausible(signal_id) {
            return Err(EngineError::InvalidPayload {
                message: format!("a signal id must be 1 to {MAX_ID_LEN} bytes without NUL"),
            });
        }
        if idempotency_key.is_some_and(|k| !plausible(k)) {
            return Err(EngineError::InvalidPayload {
                message: format!("the idempotency key must be 1 to {MAX_ID_LEN} bytes without NUL"),
            });
        }
        self.check_size(&payload)?;
        let op = WriteOp::Signal {
            signal_id: signal_id.to_string(),
            payload,
            idempotency_key: idempotency_key.map(str::to_owned),
            at_ms: self.inner.now_ms(),
        };
        match self.inner.writer.write(op).await?? {
            OpOutcome::Appended { run_id, .. } => Ok(Some(run_id)),
            OpOutcome::SignalRepeated { delivered_to } => Ok(delivered_to),
            _ => Ok(None),
        }
    }

    /// Start a hook thread in a running job (e.g. to let a person enrich it): returns its hook
    /// id once it is durably created. Refused for an unknown run (`RunNotFound`), a finished
    /// one (`RunFinished`), a target that is the run's own workflow (`InvalidInput`, it would
    /// loop) or an unregistered one (`WorkflowNotFound`).
    pub async fn spawn_hook(
        &self,
        run_id: &str,
        options: tether_core::SpawnOptions,
    ) -> Result<String, EngineError> {
        self.spawn_hook_with(run_id, options, None)
            .await
            .map(|started| started.run_id)
    }

    /// [`Engine::spawn_hook`] with an idempotency key: the thread's id is derived from the
    /// run and the key, so a retried spawn with the same key, workflow and args answers with
    /// the thread the first call started (`created: false`) and another workflow or args is
    /// refused with [`EngineError::IdempotencyKeyReused`], storing nothing.
    pub async fn spawn_hook_with(
        &self,
        run_id: &str,
        options: tether_core::SpawnOptions,
        idempotency_key: Option<&str>,
    ) -> Result<Started, EngineError> {
        self.alive()?;
        self.check_size(&options.args)?;
        let run = self.get_run(run_id).await?;
        let (workflow, queue) =
            tether_core::check_target(&run.workflow, &options).map_err(|e| {
                // One code on every path: the workflow API's own.
                if e.code() == "hook_self_target" {
                    EngineError::HookSelfTarget {
                        message: e.to_string(),
                    }
                } else {
                    EngineError::InvalidInput {
                        workflow: run.workflow.clone(),
                        message: e.to_string(),
                    }
                }
            })?;
        let hook_id = match idempotency_key {
            Some(key) => {
                let digest =
                    tether_store::payload_digest(&Value::String(format!("tether.spawn:{key}")));
                format!("{run_id}.k{}", digest.get(..32).unwrap_or(&digest))
            }
            None => format!("{run_id}.x{}", uuid::Uuid::now_v7().simple()),
        };
        if run.status.is_terminal() {
            // A retry of a keyed spawn that succeeded before the run ended gets its first
            // answer, not `run_finished`.
            if idempotency_key.is_some() {
                if let Some(started) = self
                    .keyed_thread(&hook_id, &workflow, &options.args)
                    .await?
                {
                    return Ok(started);
                }
            }
            return Err(EngineError::RunFinished {
                run_id: run_id.to_string(),
                status: run.status,
            });
        }
        let Some(wf) = self.inner.registry.get(&workflow) else {
            return Err(EngineError::WorkflowNotFound {
                name: workflow,
                known: self.inner.registry.workflow_names().join(", "),
            });
        };
        wf.check_input(&options.args)
            .map_err(|message| EngineError::InvalidInput {
                workflow: workflow.clone(),
                message,
            })?;
        let op = WriteOp::SpawnHook {
            run_id: run_id.to_string(),
            hook_id: hook_id.clone(),
            workflow: workflow.clone(),
            args: options.args.clone(),
            retry: options.retry,
            queue,
            at_ms: self.inner.now_ms(),
        };
        match self
            .inner
            .writer
            .write(op)
            .await?
            .map_err(EngineError::from)
        {
            Ok(_) => Ok(Started {
                run_id: hook_id,
                created: true,
            }),
            Err(EngineError::RunExists { .. }) if idempotency_key.is_some() => self
                .keyed_thread(&hook_id, &workflow, &options.args)
                .await?
                .ok_or(EngineError::IdempotencyKeyReused),
            // The run ended between the read above and the write: a first spawn with this
            // key may still have landed before.
            Err(e @ EngineError::RunFinished { .. }) if idempotency_key.is_some() => self
                .keyed_thread(&hook_id, &workflow, &options.args)
                .await?
                .ok_or(e),
            Err(e) => Err(e),
        }
    }

    /// The first answer of a keyed spawn: the thread `hook_id` if a spawn with the key
    /// created it (`None` if none did), or [`EngineError::IdempotencyKeyReused`] when it was
    /// started with another workflow or args.
    async fn keyed_thread(
        &self,
        hook_id: &str,
        workflow: &str,
        args: &Value,
    ) -> Result<Option<Started>, EngineError> {
        let thread = match self.get_run(hook_id).await {
            Ok(thread) => thread,
            Err(EngineError::RunNotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        if thread.workflow == workflow && thread.input == *args {
            Ok(Some(Started {
                run_id: hook_id.to_string(),
                created: false,
            }))
        } else {
            Err(EngineError::IdempotencyKeyReused)
        }
    }

    /// The shared state of the run's namespace.
    pub async fn state(&self, run_id: &str) -> Result<serde_json::Map<String, Value>, EngineError> {
        self.get_run(run_id).await?;
        self.inner
            .store
            .get_state(run_id)
            .await?
            .ok_or_else(|| EngineError::RunNotFound {
                run_id: run_id.to_string(),
            })
    }

    /// The hook threads of the run's namespace, oldest first.
    pub async fn threads(&self, run_id: &str) -> Result<Vec<RunRecord>, EngineError> {
        self.get_run(run_id).await?;
        Ok(self.inner.store.list_threads(run_id).await?)
    }
}
