//! Child runs: a run starts another workflow as a run of its own (its own journal, its own
//! namespace: it shares no state with its parent) and may wait for its result.
//!
//! ```
//! use serde_json::{json, Value};
//! use tether_core::{join_all, Ctx, WorkflowError};
//!
//! async fn parent(ctx: Ctx, n: u64) -> Result<Value, WorkflowError> {
//!     // One child, waited for at once:
//!     let one: Value = ctx.call("steps", &json!({"n": 3})).await?;
//!     // Several at once, then all their results:
//!     let handles: Vec<_> = (0..n)
//!         .map(|_| ctx.start_child::<Value>("steps", &json!({"n": 3})))
//!         .collect();
//!     let all = join_all(handles.into_iter().map(|h| h.result())).await;
//!     Ok(json!({"one": one, "more": all.len()}))
//! }
//! ```
//!
//! - **Exactly once.** `start_child` issues a journaled command (`ChildStarted`) when called;
//!   the store creates the child run in the transaction that journals it, under an id derived
//!   from the parent's id and the command index (`{parent}.c{cmd}`), so a replay or a retried
//!   write never starts a second child.
//! - **Result journaled once.** When the child ends, the store appends `ChildEnded` to the
//!   parent in the same transaction as the child's terminal entry; the parent's
//!   [`ChildResult`] resolves from it, on replay too.
//! - **Cancellation.** Cancelling a parent cancels its children (and theirs), in the same
//!   transaction as the parent's `CancelRequested`, unless a child was started
//!   [`ChildOptions::detached`]. A parent that ends on its own leaves its children running; a
//!   child ending after its parent ended delivers nothing.

use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::ctx::Ctx;
use crate::error::{check_name, WorkflowError};
use crate::event::{CommandIndex, EventBody, RunStatus};
use crate::state::{ChildSlot, Shared};

/// Options of [`Ctx::start_child_with`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChildOptions {
    detached: bool,
}

impl ChildOptions {
    /// The defaults: the child is cancelled with its parent.
    pub fn new() -> Self {
        ChildOptions::default()
    }

    /// The child outlives a cancellation of its parent (it is not cancelled with it).
    pub fn detached(mut self) -> Self {
        self.detached = true;
        self
    }

    /// Whether the child is detached.
    pub fn is_detached(&self) -> bool {
        self.detached
    }
}

/// The run id a parent's `cmd`-th command gives its child (attempt: the hook thread attempt
/// issuing it; runs have one).
pub fn child_run_id(parent_run_id: &str, attempt: u32, cmd: CommandIndex) -> String {
    if attempt <= 1 {
        format!("{parent_run_id}.c{cmd}")
    } else {
        format!("{parent_run_id}.a{attempt}c{cmd}")
    }
}

impl Ctx {
    /// Start the workflow `workflow` as a child run with `input`; its result is awaited with
    /// the returned handle ([`ChildHandle::result`], or `.await` on the handle). Issued when
    /// called (exactly once: a replay never starts it again).
    pub fn start_child<T: DeserializeOwned>(
        &self,
        workflow: &str,
        input: &impl Serialize,
    ) -> ChildHandle<T> {
        self.start_child_with(workflow, input, ChildOptions::new())
    }

    /// [`Ctx::start_child`] with options (e.g. [`ChildOptions::detached`]).
    pub fn start_child_with<T: DeserializeOwned>(
        &self,
        workflow: &str,
        input: &impl Serialize,
        options: ChildOptions,
    ) -> ChildHandle<T> {
        let refused = |error: WorkflowError| ChildHandle {
            state: self.state.clone(),
            cmd: 0,
            run_id: String::new(),
            workflow: workflow.to_string(),
            refused: Some(error),
            _t: PhantomData,
        };
        if let Err(e) = check_name("a child's workflow", workflow) {
            return refused(e);
        }
        let input = match serde_json::to_value(input) {
            Ok(v) => v,
            Err(e) => {
                return refused(WorkflowError::Decode {
                    message: format!("child input is not serializable: {e}"),
                })
            }
        };
        let mut st = self.state.lock();
        let (parent, attempt) = (st.run_id.clone(), st.attempt);
        let mut run_id = String::new();
        let cmd = st.issue_record(|cmd| {
            run_id = child_run_id(&parent, attempt, cmd);
            EventBody::ChildStarted {
                cmd,
                child_run_id: run_id.clone(),
                workflow: workflow.to_string(),
                input,
                detached: options.detached,
            }
        });
        // A recorded start names the child it created (the id rule of its time).
        if let Some(EventBody::ChildStarted { child_run_id, .. }) = st.recorded_record(cmd) {
            run_id = child_run_id.clone();
        }
        st.children.insert(
            cmd,
            ChildSlot {
                ended: None,
                waker: None,
            },
        );
        drop(st);
        ChildHandle {
            state: self.state.clone(),
            cmd,
            run_id,
            workflow: workflow.to_string(),
            refused: None,
            _t: PhantomData,
        }
    }

    /// Start `workflow` as a child run and wait for its output: `Ok(output)` decoded as `T`,
    /// or [`WorkflowError::ChildFailed`] with the child's error when it failed or was
    /// cancelled. Same as `ctx.start_child(workflow, input).result()`.
    pub fn call<T: DeserializeOwned>(
        &self,
        workflow: &str,
        input: &impl Serialize,
    ) -> ChildResult<T> {
        self.start_child(workflow, input).result()
    }
}

/// A child run started by [`Ctx::start_child`]. Awaiting it (or [`ChildHandle::result`])
/// gives the child's output; dropping it leaves the child running.
#[must_use = "the child is started already; await the handle for its result"]
pub struct ChildHandle<T> {
    state: Shared,
    cmd: CommandIndex,
    run_id: String,
    workflow: String,
    refused: Option<WorkflowError>,
    _t: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for ChildHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildHandle")
            .field("run_id", &self.run_id)
            .field("workflow", &self.workflow)
            .finish()
    }
}

impl<T> ChildHandle<T> {
    /// The child's run id (empty when the start was refused: bad name or input).
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The child's output, once it ended (see [`Ctx::call`]).
    pub fn result(self) -> ChildResult<T> {
        ChildResult { handle: self }
    }
}

impl<T: DeserializeOwned> IntoFuture for ChildHandle<T> {
    type Output = Result<T, WorkflowError>;
    type IntoFuture = ChildResult<T>;

    fn into_future(self) -> ChildResult<T> {
        self.result()
    }
}

/// The future of a child's result: resolves when the child's `ChildEnded` is applied.
#[must_use = "a child's result is only received by awaiting"]
pub struct ChildResult<T> {
    handle: ChildHandle<T>,
}

impl<T> std::fmt::Debug for ChildResult<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildResult")
            .field("run_id", &self.handle.run_id)
            .finish()
    }
}

impl<T: DeserializeOwned> Future for ChildResult<T> {
    type Output = Result<T, WorkflowError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let h = &mut self.get_mut().handle;
        if let Some(e) = h.refused.take() {
            return Poll::Ready(Err(e));
        }
        let mut st = h.state.lock();
        let cancelled = st.cancelled.clone();
        let Some(slot) = st.children.get_mut(&h.cmd) else {
            return Poll::Ready(Err(WorkflowError::with_code(
                "polled_after_completion",
                "a future was polled after it completed",
            )));
        };
        let Some(ended) = slot.ended.clone() else {
            if let Some(reason) = cancelled {
                return Poll::Ready(Err(WorkflowError::Cancelled { reason }));
            }
            slot.waker = Some(cx.waker().clone());
            return Poll::Pending;
        };
        drop(st);
        let EventBody::ChildEnded {
            status,
            output,
            error,
            ..
        } = ended
        else {
            return Poll::Pending;
        };
        Poll::Ready(match (status, output, error) {
            (RunStatus::Completed, output, _) => serde_json::from_value(output.unwrap_or_default())
                .map_err(|e| WorkflowError::Decode {
                    message: format!("output of child run {}: {e}", h.run_id),
                }),
            (status, _, error) => Err(WorkflowError::ChildFailed {
                run_id: h.run_id.clone(),
                workflow: h.workflow.clone(),
                error: error.unwrap_or_else(|| {
                    crate::ErrorInfo::new(status.as_str(), format!("child run {status}"))
                }),
            }),
        })
    }
}
