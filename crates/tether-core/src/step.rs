//! Steps: side effects run outside the deterministic world, with retries. Only a step's
//! *result* is journaled (`StepCompleted` / `StepFailed`); a step that was running when the
//! process died runs again, so a step body is **at-least-once** and should be idempotent.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{StepError, WorkflowError};
use crate::event::CommandIndex;
use crate::state::Shared;

/// How a failing step (or hook thread) is retried. The delay before attempt `n + 1` is
/// `initial_interval * backoff_coefficient^(n - 1)`, capped at `maximum_interval`.
/// Serialized with the intervals in milliseconds.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (default 3). `1` disables retries.
    pub maximum_attempts: u32,
    /// Delay before the second attempt (default 1 s).
    #[serde(with = "duration_ms", rename = "initial_interval_ms")]
    pub initial_interval: Duration,
    /// Growth factor of the delay (default 2.0).
    pub backoff_coefficient: f64,
    /// Upper bound of the delay (default 60 s).
    #[serde(with = "duration_ms", rename = "maximum_interval_ms")]
    pub maximum_interval: Duration,
}

mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            maximum_attempts: 3,
            initial_interval: Duration::from_secs(1),
            backoff_coefficient: 2.0,
            maximum_interval: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retries: one attempt.
    pub fn none() -> Self {
        RetryPolicy {
            maximum_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The delay after failed attempt number `attempt` (1-based).
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(64) as i32;
        let secs = self.initial_interval.as_secs_f64() * self.backoff_coefficient.powi(exp);
        let capped = secs.min(self.maximum_interval.as_secs_f64()).max(0.0);
        Duration::from_secs_f64(capped)
    }
}

/// The type-erased body of a step: called once per attempt.
pub type StepBody = Arc<dyn Fn() -> BoxFuture<'static, Result<Value, StepError>> + Send + Sync>;

/// A step the engine must run: produced by the workflow, executed outside it.
#[derive(Clone)]
pub struct StepTask {
    /// Command index of the step.
    pub cmd: CommandIndex,
    /// Step name.
    pub name: String,
    /// Retry policy.
    pub policy: RetryPolicy,
    /// The body.
    pub body: StepBody,
}

impl fmt::Debug for StepTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepTask")
            .field("cmd", &self.cmd)
            .field("name", &self.name)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// The future of a step's result. Created by [`crate::Ctx::step`].
#[must_use = "a step's result is only seen by awaiting it"]
pub struct StepFuture<T> {
    pub(crate) state: Shared,
    pub(crate) cmd: CommandIndex,
    pub(crate) name: String,
    pub(crate) _t: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for StepFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepFuture")
            .field("cmd", &self.cmd)
            .field("name", &self.name)
            .finish()
    }
}

impl<T: DeserializeOwned> Future for StepFuture<T> {
    type Output = Result<T, WorkflowError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut st = this.state.lock();
        let cancelled = st.cancelled.clone();
        let Some(slot) = st.steps.get_mut(&this.cmd) else {
            return Poll::Pending;
        };
        match &slot.result {
            Some(Ok(v)) => {
                Poll::Ready(
                    serde_json::from_value(v.clone()).map_err(|e| WorkflowError::Decode {
                        message: format!("result of step {:?}: {e}", this.name),
                    }),
                )
            }
            Some(Err(info)) => Poll::Ready(Err(WorkflowError::StepFailed {
                name: this.name.clone(),
                message: info.message.clone(),
            })),
            None => match cancelled {
                Some(reason) => Poll::Ready(Err(WorkflowError::Cancelled { reason })),
                None => {
                    slot.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            },
        }
    }
}
