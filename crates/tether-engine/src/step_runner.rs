//! Runs one step outside the workflow: attempts with back-off per its retry policy, then one
//! journal write with the result. A panicking body counts as a retryable failure.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use tether_core::{ErrorInfo, EventBody, StepTask};
use tracing::{debug_span, warn, Instrument};

use crate::activity::Ticket;
use crate::engine::Inner;

/// Run `task` to its final result and return the journal entry that records it, with the
/// ticket that counts the step as work in flight (handed on to the run that applies it). The
/// ticket is given up while the step waits out a back-off, which is a wait on the engine's
/// clock like a timer.
pub(crate) async fn run_step(
    inner: Arc<Inner>,
    run_id: String,
    task: StepTask,
    mut ticket: Ticket,
) -> (EventBody, Ticket) {
    // A debug span: at the default log level it costs nothing per step; the warnings below
    // carry the run and step themselves.
    let span = debug_span!("step", run_id = %run_id, name = %task.name, cmd = task.cmd);
    async move {
        let mut attempt = 1u32;
        loop {
            let outcome = AssertUnwindSafe((task.body)()).catch_unwind().await;
            let err = match outcome {
                Ok(Ok(output)) => {
                    let body = EventBody::StepCompleted {
                        cmd: task.cmd,
                        name: task.name.clone(),
                        output,
                        attempts: attempt,
                    };
                    return (body, ticket);
                }
                Ok(Err(e)) => e,
                Err(_) => tether_core::StepError::retryable("the step body panicked"),
            };
            if err.is_fatal() || attempt >= task.policy.maximum_attempts.max(1) {
                let why = if err.is_fatal() {
                    "fatal error"
                } else {
                    "retries exhausted"
                };
                warn!(run_id = %run_id, step = %task.name, attempt, error = %err, "step failed for good ({why})");
                let body = EventBody::StepFailed {
                    cmd: task.cmd,
                    name: task.name.clone(),
                    error: ErrorInfo::new("step_failed", err.message()),
                    attempts: attempt,
                };
                return (body, ticket);
            }
            let delay = err
                .requested_delay()
                .unwrap_or_else(|| task.policy.delay_after(attempt));
            warn!(run_id = %run_id, step = %task.name, attempt, error = %err, ?delay, "step attempt failed; retrying");
            if inner.lifecycle.is_stopping() {
                drop(ticket);
                return std::future::pending().await;
            }
            // Registered with a manual clock before the ticket is given up: `settle` sees
            // either the ticket or the wait.
            let backoff = inner.clock().wait_for(delay);
            drop(ticket);
            let wakeup = backoff.await;
            ticket = inner.activity.ticket();
            drop(wakeup);
            attempt += 1;
        }
    }
    .instrument(span)
    .await
}
