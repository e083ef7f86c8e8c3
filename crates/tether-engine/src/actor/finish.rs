//! The end of a live run: journal its result, or for a hook thread a failed attempt (to run
//! again) or the signal its `exec_hook` caller waits on.

use tether_core::{EventBody, RunMachine, RunStatus};
use tether_store::{OpRejected, WakeAt, WriteOp};
use tracing::warn;

use super::{Actor, Exit};

/// How [`Actor::finish`] left the run.
pub(super) enum Finish {
    /// The actor stops.
    Exit(Exit),
    /// A hook thread's attempt failed and was journaled (`AttemptFailed`); the next one
    /// starts at its `retry_at_ms`.
    Retry,
}
impl Actor {
    /// The workflow returned. A hook thread that failed with attempts left journals the
    /// failed attempt (the next one starts after its back-off, see `start_attempt`); one that
    /// failed for good signals its `exec_hook` caller the error, and one that completed
    /// without sending its `exec_hook` signal sends its output on it (either in the same
    /// transaction as its end); anything else just ends.
    pub(super) async fn finish(&mut self, machine: &mut RunMachine, end: EventBody) -> Finish {
        let mut events = machine.take_outbox();
        let thread = machine.thread().cloned();
        let attempt = machine.attempt();
        let signal = match (&end, &thread) {
            (EventBody::RunFailed { error }, Some(thread))
                if attempt < thread.retry.maximum_attempts.max(1) =>
            {
                let retry_at =
                    self.inner.now_ms() + thread.retry.delay_after(attempt).as_millis() as u64;
                warn!(run_id = %self.run_id, attempt, error = %error, "hook thread failed; it will run again");
                events.push(EventBody::AttemptFailed {
                    attempt,
                    error: error.clone(),
                    retry_at_ms: retry_at,
                });
                let wake = WakeAt::Set(Some(retry_at));
                return match self.append(events, Some(RunStatus::Suspended), wake).await {
                    Ok(_) => {
                        self.status_sent = Some(RunStatus::Suspended);
                        self.wake_sent = Some(Some(retry_at));
                        Finish::Retry
                    }
                    Err(exit) => Finish::Exit(exit),
                };
            }
            (EventBody::RunFailed { error }, Some(thread)) => {
                thread.fail_signal.clone().map(|id| {
                    (
                        id,
                        serde_json::json!({ tether_core::ERROR_ENVELOPE: error }),
                    )
                })
            }
            (EventBody::RunCompleted { output }, Some(_)) => {
                machine.exec_signal_unsent().map(|id| (id, output.clone()))
            }
            _ => None,
        };
        events.push(end);
        let Some((signal_id, payload)) = signal else {
            return Finish::Exit(match self.append(events, None, WakeAt::Keep).await {
                Ok(_) => {
                    self.tell_parent();
                    Exit::Done
                }
                Err(exit) => exit,
            });
        };
        let ops = vec![
            WriteOp::Append {
                run_id: self.run_id.clone(),
                events,
                status: None,
                wake_at: WakeAt::Keep,
                fence: self.fence.clone(),
                at_ms: self.inner.now_ms(),
            },
            WriteOp::Signal {
                signal_id,
                payload,
                idempotency_key: None,
                at_ms: self.inner.now_ms(),
            },
        ];
        Finish::Exit(match self.inner.writer.write_all(ops).await {
            Ok(results) => match results.first() {
                Some(Err(OpRejected::Fenced { .. })) => Exit::NotMine,
                _ => Exit::Done,
            },
            Err(e) => Exit::from(e),
        })
    }
}

impl Actor {
    /// This child run's end is committed, and with it the `ChildEnded` of its parent: make the
    /// parent read it (live here: a poke; else it starts, on PostgreSQL also through the
    /// other nodes' notification and the poller).
    fn tell_parent(&self) {
        if let Some(parent) = &self.parent {
            self.inner.wake_or_poke(parent);
        }
    }
}
