//! Spawned hooks and signals (the HotMesh `workflow.hook` model): a run starts hook threads in
//! its namespace (each its own run with its own journal, sharing the run's state), and threads,
//! runs and the outside world talk through signals.
//!
//! Every method here issues its command **when it is called** (like [`Ctx::step`]), not when
//! its future is first polled: `join(ctx.signal(..), ctx.step(..))` journals the signal first.
//!
//! # Signals are never lost by a wait that gives up
//!
//! A wait ([`Ctx::wait_for`]) that ends without taking its payload — it lost a `race`, timed
//! out ([`WaitFor::timeout`]), failed with `Cancelled`, or was dropped — journals a release
//! ([`EventBody::SignalReleased`]) when it is dropped. In the transaction that writes it, the
//! store forgets the wait if it still waits, or gives back the payload that had reached it:
//! to the oldest other wait on that signal id, else first in line of the kept signals. A run
//! evicted from memory releases nothing (its waits stay; replay rebuilds them).
//!
//! # Journals of the first release
//!
//! They have no releases. Replay treats a release as optional in a recorded journal: it
//! answers one recorded at its command index, skips it (taking no index) when the journal has
//! another command there (the journal moved on without it), and writes it when the journal
//! has nothing there (the journal ended, so this is the live edge). So an old journal replays
//! with the same command indices it recorded, and only waits given up from now on release.
//! Their hook threads' inputs may hold a `signal_id` spliced in by `exec_hook`; the thread's
//! [`Ctx::exec_signal_id`] is the same id, for old and new threads alike.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ctx::Ctx;
use crate::error::{check_name, WorkflowError};
use crate::event::{CommandIndex, EventBody};
use crate::record::RecordFuture;
use crate::state::Shared;
use crate::step::RetryPolicy;
use crate::timer::Sleep;

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
        exec: bool,
    ) -> Result<(CommandIndex, String, Option<String>), WorkflowError> {
        let mut st = self.state.lock();
        let (workflow, task_queue) = check_target(&st.workflow, &options)?;
        let run_id = st.run_id.clone();
        let mut out = (0, String::new(), None);
        st.issue_record(|cmd| {
            let hook_id = format!("{run_id}.h{cmd}");
            let signal = exec.then(|| format!("{hook_id}/done"));
            out = (cmd, hook_id.clone(), signal.clone());
            EventBody::HookSpawned {
                cmd,
                hook_id,
                workflow,
                task_queue,
                args: options.args,
                retry: options.retry,
                fail_signal: signal,
            }
        });
        Ok(out)
    }

    /// Start a hook thread in this run's namespace; the future resolves to its hook id once
    /// the spawn is journaled (exactly once: replay never spawns again). The spawn is issued
    /// when this is called. Without a `workflow_name` the target is the current workflow,
    /// which is refused (it would loop).
    pub fn spawn_hook(&self, options: SpawnOptions) -> SpawnHook {
        let inner = self.spawn_inner(options, false).map(|(cmd, hook_id, _)| {
            (
                RecordFuture {
                    state: self.state.clone(),
                    cmd,
                },
                hook_id,
            )
        });
        SpawnHook {
            inner: inner.map_err(Some),
        }
    }

    /// Spawn a hook thread and return what it sends back. The thread learns where to send it
    /// from [`Ctx::exec_signal_id`] (its `args` are passed unchanged). Completed by, whichever
    /// comes first:
    /// - a signal the hook function sends on that id (`ctx.signal(&id, &payload)`);
    /// - the hook function's **return value**, if it returns without having sent that signal
    ///   (the engine sends it in the same transaction as the thread's end);
    /// - an error, if the thread fails after its last retry (its code and message).
    ///
    /// Issues the spawn and the wait for the signal when called.
    pub fn exec_hook<T: DeserializeOwned>(&self, options: SpawnOptions) -> ExecHook<T> {
        let inner = self
            .spawn_inner(options, true)
            .map(|(_, _, signal)| self.wait_for::<Value>(&signal.unwrap_or_default()));
        ExecHook {
            inner: inner.map_err(Some),
            _t: std::marker::PhantomData,
        }
    }

    /// Send `payload` to whoever waits (or will wait) on `signal_id`: a waiting run gets it at
    /// once; otherwise it is kept until a wait comes. Journaled when called: sent once. The
    /// future resolves once the send is committed.
    pub fn signal<T: Serialize>(&self, signal_id: &str, payload: &T) -> SendSignal {
        let payload = match serde_json::to_value(payload) {
            Ok(p) => p,
            Err(e) => {
                return SendSignal {
                    inner: Err(Some(WorkflowError::Decode {
                        message: format!("signal payload is not serializable: {e}"),
                    })),
                }
            }
        };
        let cmd = self.state.lock().issue_record(|cmd| EventBody::SignalSent {
            cmd,
            signal_id: signal_id.to_string(),
            payload,
            delivered_to: None,
        });
        SendSignal {
            inner: Ok(RecordFuture {
                state: self.state.clone(),
                cmd,
            }),
        }
    }

    /// Wait for the signal `signal_id` (one sent before the wait is kept and delivered now).
    /// Registering the wait and taking a kept signal happen in one transaction, when this is
    /// called. A wait dropped before it returns its payload gives the payload back (see the
    /// [module docs](self)).
    pub fn wait_for<T: DeserializeOwned>(&self, signal_id: &str) -> WaitFor<T> {
        if let Err(e) = check_name("a signal id", signal_id) {
            return WaitFor {
                state: self.state.clone(),
                cmd: 0,
                signal_id: signal_id.to_string(),
                refused: Some(e),
                consumed: false,
                _t: std::marker::PhantomData,
            };
        }
        let cmd = self.state.lock().issue_wait(signal_id);
        WaitFor {
            state: self.state.clone(),
            cmd,
            signal_id: signal_id.to_string(),
            refused: None,
            consumed: false,
            _t: std::marker::PhantomData,
        }
    }

    /// [`Ctx::wait_for`] with a durable timeout: `Ok(None)` if no signal came within
    /// `timeout`. Same as `ctx.wait_for(signal_id).timeout(timeout)`.
    pub fn wait_for_timeout<T: DeserializeOwned>(
        &self,
        signal_id: &str,
        timeout: Duration,
    ) -> WaitForTimeout<T> {
        self.wait_for(signal_id).timeout(timeout)
    }

    /// In a hook thread started by [`Ctx::exec_hook`]: the signal id its caller waits on
    /// (also in threads written by the first release, whose args had it spliced in as
    /// `signal_id`). `None` in a run or a thread started by [`Ctx::spawn_hook`]. Read from
    /// the thread's journaled start, so replay sees the same.
    pub fn exec_signal_id(&self) -> Option<String> {
        self.state.lock().exec_signal.clone()
    }
}

/// The future of [`Ctx::spawn_hook`]: the hook id, once the spawn is committed.
#[must_use = "the spawn is issued already; await it to learn the hook id once committed"]
pub struct SpawnHook {
    inner: Result<(RecordFuture, String), Option<WorkflowError>>,
}

impl std::fmt::Debug for SpawnHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hook_id = self.inner.as_ref().ok().map(|(_, id)| id.as_str());
        f.debug_struct("SpawnHook")
            .field("hook_id", &hook_id)
            .finish()
    }
}

impl Future for SpawnHook {
    type Output = Result<String, WorkflowError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match &mut this.inner {
            Err(e) => Poll::Ready(Err(e.take().unwrap_or_else(polled_again))),
            Ok((record, hook_id)) => {
                ready!(Pin::new(record).poll(cx))?;
                Poll::Ready(Ok(hook_id.clone()))
            }
        }
    }
}

/// The future of [`Ctx::signal`]: resolves once the send is committed.
#[must_use = "the signal is issued already; await it to know it was committed"]
pub struct SendSignal {
    inner: Result<RecordFuture, Option<WorkflowError>>,
}

impl std::fmt::Debug for SendSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendSignal").finish_non_exhaustive()
    }
}

impl Future for SendSignal {
    type Output = Result<(), WorkflowError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match &mut this.inner {
            Err(e) => Poll::Ready(Err(e.take().unwrap_or_else(polled_again))),
            Ok(record) => Pin::new(record).poll(cx).map_ok(|_| ()),
        }
    }
}

/// The future of [`Ctx::exec_hook`]: what the hook thread sends back (or returns), decoded.
#[must_use = "the spawn is issued already; await it for the thread's answer"]
pub struct ExecHook<T> {
    inner: Result<WaitFor<Value>, Option<WorkflowError>>,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for ExecHook<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let signal = self.inner.as_ref().ok().map(|w| w.signal_id.as_str());
        f.debug_struct("ExecHook")
            .field("signal_id", &signal)
            .finish()
    }
}

impl<T: DeserializeOwned> Future for ExecHook<T> {
    type Output = Result<T, WorkflowError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let wait = match &mut this.inner {
            Err(e) => return Poll::Ready(Err(e.take().unwrap_or_else(polled_again))),
            Ok(wait) => wait,
        };
        let payload = ready!(Pin::new(&mut *wait).poll(cx))?;
        if let Some(err) = payload.get(ERROR_ENVELOPE) {
            return Poll::Ready(Err(WorkflowError::with_code(
                err.get("code")
                    .and_then(Value::as_str)
                    .unwrap_or("hook_failed"),
                err.get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("the hook failed")
                    .to_string(),
            )));
        }
        Poll::Ready(
            serde_json::from_value(payload).map_err(|e| WorkflowError::Decode {
                message: format!("signal {:?}: {e}", wait.signal_id),
            }),
        )
    }
}

/// The error of a refused future polled again after it returned its error.
fn polled_again() -> WorkflowError {
    WorkflowError::with_code(
        "polled_after_completion",
        "a future was polled after it completed",
    )
}

/// The future of [`Ctx::wait_for`]. Dropped before it returned its payload, it releases the
/// wait (see the [module docs](self)).
#[must_use = "a signal is only received by awaiting"]
pub struct WaitFor<T> {
    state: Shared,
    cmd: CommandIndex,
    signal_id: String,
    refused: Option<WorkflowError>,
    /// The payload was taken by this future (no release on drop).
    consumed: bool,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<T> WaitFor<T> {
    /// Give the wait a durable timeout: the future resolves to `Ok(None)` if no signal came
    /// within `timeout` (a journaled timer, issued now, so replay times out at the same point;
    /// the wait is then released and a signal coming later is kept for the next wait).
    pub fn timeout(self, timeout: Duration) -> WaitForTimeout<T> {
        let sleep = match self.refused {
            Some(_) => None,
            None => Some(Ctx::new(self.state.clone()).sleep(timeout)),
        };
        WaitForTimeout {
            wait: Some(self),
            sleep,
        }
    }
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
            this.consumed = true;
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

impl<T> Drop for WaitFor<T> {
    fn drop(&mut self) {
        if self.consumed || self.cmd == 0 {
            return;
        }
        let mut st = self.state.lock();
        let written = match st.signals.get_mut(&self.cmd) {
            Some(slot) => {
                slot.waker = None;
                slot.written
            }
            None => false,
        };
        if written {
            st.issue_release(self.cmd, &self.signal_id);
        }
    }
}

/// The future of [`WaitFor::timeout`] and [`Ctx::wait_for_timeout`]: `Ok(Some(payload))`, or
/// `Ok(None)` when the timer fired first. Which came first is decided by journal order, so
/// replay decides the same.
#[must_use = "a signal is only received by awaiting"]
pub struct WaitForTimeout<T> {
    wait: Option<WaitFor<T>>,
    sleep: Option<Sleep>,
}

impl<T> std::fmt::Debug for WaitForTimeout<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitForTimeout")
            .field("wait", &self.wait)
            .field("sleep", &self.sleep)
            .finish()
    }
}

impl<T: DeserializeOwned> Future for WaitForTimeout<T> {
    type Output = Result<Option<T>, WorkflowError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(wait) = this.wait.as_mut() else {
            return Poll::Ready(Err(polled_again()));
        };
        if let Poll::Ready(r) = Pin::new(&mut *wait).poll(cx) {
            this.sleep = None; // abandons the timer
            return Poll::Ready(r.map(Some));
        }
        if let Some(sleep) = this.sleep.as_mut() {
            if let Poll::Ready(r) = Pin::new(sleep).poll(cx) {
                this.sleep = None;
                // Dropping the wait releases it (and gives back a payload it may have taken).
                this.wait = None;
                return Poll::Ready(r.map(|()| None));
            }
        }
        Poll::Pending
    }
}
