//! Spawned hooks and signals (the HotMesh `workflow.hook` model): a run starts hook threads in
//! its namespace (each its own run with its own journal, sharing the run's state), and threads,
//! runs and the outside world talk through signals.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::ctx::Ctx;
use crate::error::{check_name, WorkflowError};
use crate::event::{CommandIndex, EventBody};
use crate::record::RecordFuture;
use crate::state::Shared;
use crate::step::RetryPolicy;

/// The task queue workflows are on unless told otherwise.
pub const DEFAULT_TASK_QUEUE: &str = "default";

/// The key of the error envelope a failed `exec_hook` thread signals back.
pub const ERROR_ENVELOPE: &str = "$tether_error";

/// Options of [`Ctx::spawn_hook`] and [`Ctx::exec_hook`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SpawnOptions {
    /// Target workflow (default: the current one — which is then refused, see below).
    pub workflow_name: Option<String>,
    /// Target task queue (default `default`).
    pub task_queue: Option<String>,
    /// Input of the hook function.
    #[serde(default)]
    pub args: Value,
    /// How the hook function is retried when it fails (default: 3 attempts, 1 s, ×2, ≤ 60 s).
    #[serde(default)]
    pub retry: RetryPolicy,
}

impl SpawnOptions {
    /// Run `workflow_name` as the hook function.
    pub fn new(workflow_name: impl Into<String>) -> Self {
        SpawnOptions {
            workflow_name: Some(workflow_name.into()),
            ..Default::default()
        }
    }

    /// Its input.
    pub fn args(mut self, args: Value) -> Self {
        self.args = args;
        self
    }

    /// Its task queue.
    pub fn task_queue(mut self, queue: impl Into<String>) -> Self {
        self.task_queue = Some(queue.into());
        self
    }

    /// Its retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
}

/// Check a spawn's target: a hook on the very topic of the calling workflow would loop.
pub fn check_target(
    current_workflow: &str,
    options: &SpawnOptions,
) -> Result<(String, String), WorkflowError> {
    let workflow = options
        .workflow_name
        .clone()
        .unwrap_or_else(|| current_workflow.to_string());
    let queue = options
        .task_queue
        .clone()
        .unwrap_or_else(|| DEFAULT_TASK_QUEUE.to_string());
    check_name("a hook's workflow_name", &workflow)?;
    check_name("a hook's task_queue", &queue)?;
    if workflow == current_workflow && queue == DEFAULT_TASK_QUEUE {
        return Err(WorkflowError::with_code(
            "hook_self_target",
            format!(
                "a hook may not target the calling workflow's own topic ({queue}/{workflow}): it would loop; name another workflow_name or task_queue"
            ),
        ));
    }
    Ok((workflow, queue))
}

impl Ctx {
    fn spawn_inner(
        &self,
        options: SpawnOptions,
        fail_signal: impl FnOnce(&str) -> Option<String>,
        add_signal_arg: bool,
    ) -> Result<(CommandIndex, String, Option<String>), WorkflowError> {
        let mut st = self.state.lock();
        let (workflow, task_queue) = check_target(&st.workflow, &options)?;
        let run_id = st.run_id.clone();
        let mut out = (0, String::new(), None);
        st.issue_record(|cmd| {
            let hook_id = format!("{run_id}.h{cmd}");
            let signal = fail_signal(&hook_id);
            let mut args = options.args.clone();
            if let (true, Some(sig)) = (add_signal_arg, &signal) {
                args = match args {
                    Value::Object(mut m) => {
                        m.insert("signal_id".into(), json!(sig));
                        Value::Object(m)
                    }
                    Value::Null => json!({ "signal_id": sig }),
                    other => json!({ "args": other, "signal_id": sig }),
                };
            }
            out = (cmd, hook_id.clone(), signal.clone());
            EventBody::HookSpawned {
                cmd,
                hook_id,
                workflow,
                task_queue,
                args,
                retry: options.retry.clone(),
                fail_signal: signal,
            }
        });
        Ok(out)
    }

    /// Start a hook thread in this run's namespace and return its hook id once the spawn is
    /// journaled (exactly once: replay never spawns again). Without a `workflow_name` the
    /// target is the current workflow, which is refused (it would loop).
    pub async fn spawn_hook(&self, options: SpawnOptions) -> Result<String, WorkflowError> {
        let (cmd, hook_id, _) = self.spawn_inner(options, |_| None, false)?;
        RecordFuture {
            state: self.state.clone(),
            cmd,
        }
        .await?;
        Ok(hook_id)
    }

    /// Spawn a hook thread with a fresh signal id in its args (`signal_id`) and return the
    /// payload it signals back. If the thread fails after its last retry, the error is
    /// returned here.
    pub async fn exec_hook<T: DeserializeOwned>(
        &self,
        options: SpawnOptions,
    ) -> Result<T, WorkflowError> {
        let (cmd, _hook_id, signal) =
            self.spawn_inner(options, |id| Some(format!("{id}/done")), true)?;
        RecordFuture {
            state: self.state.clone(),
            cmd,
        }
        .await?;
        let signal = signal.unwrap_or_default();
        let payload: Value = self.wait_for(&signal).await?;
        if let Some(err) = payload.get(ERROR_ENVELOPE) {
            return Err(WorkflowError::with_code(
                err.get("code")
                    .and_then(Value::as_str)
                    .unwrap_or("hook_failed"),
                err.get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("the hook failed")
                    .to_string(),
            ));
        }
        serde_json::from_value(payload).map_err(|e| WorkflowError::Decode {
            message: format!("signal {signal:?}: {e}"),
        })
    }

    /// Send `payload` to whoever waits (or will wait) on `signal_id`: a waiting run gets it at
    /// once; otherwise it is kept until a wait comes. Journaled: sent once.
    pub async fn signal<T: Serialize>(
        &self,
        signal_id: &str,
        payload: &T,
    ) -> Result<(), WorkflowError> {
        let payload = serde_json::to_value(payload).map_err(|e| WorkflowError::Decode {
            message: format!("signal payload is not serializable: {e}"),
        })?;
        let cmd = self.state.lock().issue_record(|cmd| EventBody::SignalSent {
            cmd,
            signal_id: signal_id.to_string(),
            payload,
            delivered_to: None,
        });
        RecordFuture {
            state: self.state.clone(),
            cmd,
        }
        .await
        .map(|_| ())
    }

    /// Wait for the signal `signal_id` (one sent before the wait is kept and delivered now).
    /// Registering the wait and taking a kept signal happen in one transaction.
    pub fn wait_for<T: DeserializeOwned>(&self, signal_id: &str) -> WaitFor<T> {
        if let Err(e) = check_name("a signal id", signal_id) {
            return WaitFor {
                state: self.state.clone(),
                cmd: 0,
                signal_id: signal_id.to_string(),
                refused: Some(e),
                _t: std::marker::PhantomData,
            };
        }
        let cmd = self.state.lock().issue_wait(signal_id);
        WaitFor {
            state: self.state.clone(),
            cmd,
            signal_id: signal_id.to_string(),
            refused: None,
            _t: std::marker::PhantomData,
        }
    }
}

/// The future of [`Ctx::wait_for`].
#[must_use = "a signal is only received by awaiting"]
pub struct WaitFor<T> {
    state: Shared,
    cmd: CommandIndex,
    signal_id: String,
    refused: Option<WorkflowError>,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for WaitFor<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitFor")
            .field("signal_id", &self.signal_id)
            .finish()
    }
}

impl<T: DeserializeOwned> Future for WaitFor<T> {
    type Output = Result<T, WorkflowError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(e) = this.refused.take() {
            return Poll::Ready(Err(e));
        }
        let mut st = this.state.lock();
        let cancelled = st.cancelled.clone();
        let Some(slot) = st.signals.get_mut(&this.cmd) else {
            return Poll::Pending;
        };
        if let Some(p) = slot.payload.take() {
            return Poll::Ready(
                serde_json::from_value(p).map_err(|e| WorkflowError::Decode {
                    message: format!("signal {:?}: {e}", this.signal_id),
                }),
            );
        }
        if let Some(reason) = cancelled {
            return Poll::Ready(Err(WorkflowError::Cancelled { reason }));
        }
        slot.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}
