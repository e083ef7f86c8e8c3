//! `Engine::resume_or_start`: a payload for a custom token whose run may not exist yet, in one
//! call. The hook holding the token takes it; else the run is started (once, however many
//! callers race: its id is chosen) and the payload is kept by the store for the first hook
//! registered with the token (`WriteOp::ResumeOrKeep`), which receives kept payloads in the
//! order they were accepted.

use serde_json::Value;
use tether_store::{OpOutcome, StoreError, WriteOp};

use crate::engine::{plausible, Engine, MAX_ID_LEN};
use crate::error::EngineError;
use crate::start::StartOptions;

/// What [`Engine::resume_or_start`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumedOrStarted {
    /// The run that received the payload, or will when it registers the token.
    pub run_id: String,
    /// `true` if this call created the run.
    pub started: bool,
}

impl Engine {
    /// Deliver `payload` to the hook holding `token`; if no hook holds it, start `workflow`
    /// with `input` (as run `run_id`, else an id derived from the token, so racing callers
    /// make one run) and keep the payload until a hook registers the token: it then receives
    /// every kept payload in the order they were accepted.
    ///
    /// The workflow and input are checked like a start's. When a hook holds the token, the
    /// payload goes to it whatever the workflow and input say; when none does, a run already
    /// there with the chosen id but another workflow or input is refused with
    /// [`EngineError::RunExists`] (nothing kept).
    /// A payload that meets a hook is checked against its definition as by
    /// [`Engine::resume_hook`]; a kept payload cannot be (there is no hook yet): only the
    /// workflow decoding it checks it. A kept payload waits for a hook with its token even if
    /// the run started ends without creating one. `idempotency_key` dedupes as for
    /// `resume_hook`, kept payloads included.
    pub async fn resume_or_start(
        &self,
        token: &str,
        payload: Value,
        workflow: &str,
        input: Value,
        run_id: Option<String>,
        idempotency_key: Option<String>,
    ) -> Result<ResumedOrStarted, EngineError> {
        self.alive()?;
        if !plausible(token) {
            return Err(EngineError::InvalidPayload {
                message: format!("a hook token must be 1 to {MAX_ID_LEN} bytes without NUL"),
            });
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
        // A hook holding the token takes the payload, validated against its definition.
        match self
            .resume_checked(token, payload.clone(), idempotency_key.clone())
            .await
        {
            Err(EngineError::HookNotFound) => {}
            done => {
                return done.map(|accepted| ResumedOrStarted {
                    run_id: accepted.run_id,
                    started: false,
                })
            }
        }
        let run_id =
            run_id.unwrap_or_else(|| StartOptions::run_id_for_key(&format!("token:{token}")));
        let options = StartOptions {
            run_id: Some(run_id),
            idempotency_key: None,
            queue: None,
        };
        let started = self.start_run_with(workflow, input, options).await?;
        // The store decides again, atomically: a hook registered meanwhile takes the payload,
        // else it is kept, after every payload kept before it.
        let op = WriteOp::ResumeOrKeep {
            token: token.to_string(),
            payload,
            idempotency_key,
            at_ms: self.inner.now_ms(),
        };
        match self.inner.writer.write(op).await? {
            Ok(OpOutcome::Resumed { run_id, .. }) => Ok(ResumedOrStarted {
                run_id,
                started: started.created,
            }),
            Ok(OpOutcome::Kept) => Ok(ResumedOrStarted {
                run_id: started.run_id,
                started: started.created,
            }),
            Err(rejected) => Err(rejected.into()),
            Ok(other) => Err(EngineError::Store(StoreError::corrupt(format!(
                "resume-or-keep answered {other:?}"
            )))),
        }
    }
}
