//! Applying committed journal entries to the run's state: results, timer fires, hook
//! creations and payloads, records and signals reach their slots and wake their futures; an
//! entry the code has no command for is a replay error.

use super::{describe, HookPhase, RunState};
use crate::error::ReplayError;
use crate::event::EventBody;

impl RunState {
    /// Apply one committed journal entry. `seq` is its position (for error messages).
    pub fn apply(&mut self, seq: u64, body: &EventBody) {
        let unexpected = |what: String| ReplayError::Unexpected { seq, message: what };
        self.applied_seq = self.applied_seq.max(seq);
        match body {
            EventBody::StepCompleted { cmd, name, .. }
            | EventBody::StepFailed { cmd, name, .. } => {
                let Some(slot) = self.steps.get_mut(cmd) else {
                    self.fail(unexpected(format!(
                        "the journal has the result of step {name:?} (command #{cmd}) but the code did not run that step"
                    )));
                    return;
                };
                if slot.result.is_some() {
                    return; // a duplicate completion (step re-run after a crash): first wins
                }
                slot.result = Some(match body {
                    EventBody::StepCompleted { output, .. } => Ok(output.clone()),
                    EventBody::StepFailed { error, .. } => Err(error.clone()),
                    _ => return,
                });
                if let Some(w) = slot.waker.take() {
                    w.wake();
                }
            }
            EventBody::TimerStarted { cmd, .. } => match self.timers.get_mut(cmd) {
                Some(t) => t.committed = true,
                None => self.fail(unexpected(format!(
                    "the journal has timer #{cmd} but the code did not start it"
                ))),
            },
            EventBody::TimerFired { cmd } => match self.timers.get_mut(cmd) {
                Some(t) => {
                    t.fired = true;
                    if let Some(w) = t.waker.take() {
                        w.wake();
                    }
                }
                None => self.fail(unexpected(format!(
                    "timer #{cmd} fired but the code did not start it"
                ))),
            },
            EventBody::HookCreated { cmd, .. } | EventBody::HookConflict { cmd, .. } => {
                match self.hooks.get_mut(cmd) {
                    Some(h) => {
                        if h.phase == HookPhase::Creating {
                            h.phase = match body {
                                EventBody::HookConflict { holder_run, .. } => HookPhase::Conflict {
                                    holder_run: holder_run.clone(),
                                },
                                _ => HookPhase::Active,
                            };
                        }
                        if let Some(w) = h.waker.take() {
                            w.wake();
                        }
                    }
                    None => self.fail(unexpected(format!(
                        "the journal has hook #{cmd} but the code did not create it"
                    ))),
                }
            }
            EventBody::HookReceived { hook_cmd, payload } => match self.hooks.get_mut(hook_cmd) {
                Some(h) => {
                    h.buffer.push_back(payload.clone());
                    if let Some(w) = h.waker.take() {
                        w.wake();
                    }
                }
                None => self.fail(unexpected(format!(
                    "a payload arrived for hook #{hook_cmd} but the code did not create that hook"
                ))),
            },
            EventBody::HookExpired { hook_cmd, .. } => match self.hooks.get_mut(hook_cmd) {
                Some(h) => {
                    h.expired = true;
                    if let Some(w) = h.waker.take() {
                        w.wake();
                    }
                }
                None => self.fail(unexpected(format!(
                    "hook #{hook_cmd} expired but the code did not create that hook"
                ))),
            },
            EventBody::HookDisposed { cmd, .. }
            | EventBody::SignalReleased { cmd, .. }
            | EventBody::Now { cmd, .. }
            | EventBody::Random { cmd, .. }
            | EventBody::Uuid { cmd, .. } => {
                if *cmd >= self.next_cmd {
                    self.fail(unexpected(format!(
                        "the journal has {} as command #{cmd} but the code issued only {} commands",
                        describe(body),
                        self.next_cmd - 1
                    )));
                }
            }
            EventBody::StateGet { cmd, .. }
            | EventBody::StateSet { cmd, .. }
            | EventBody::StateIncr { cmd, .. }
            | EventBody::StateDelete { cmd, .. }
            | EventBody::HookSpawned { cmd, .. }
            | EventBody::ChildStarted { cmd, .. }
            | EventBody::SignalSent { cmd, .. } => match self.records.get_mut(cmd) {
                Some(slot) => {
                    if slot.record.is_none() {
                        slot.record = Some(body.clone());
                    }
                    if let Some(w) = slot.waker.take() {
                        w.wake();
                    }
                }
                None => self.fail(unexpected(format!(
                    "the journal has {} as command #{cmd} but the code did not issue it",
                    describe(body)
                ))),
            },
            EventBody::SignalWaited { cmd, .. } => {
                if !self.signals.contains_key(cmd) {
                    self.fail(unexpected(format!(
                        "the journal has {} as command #{cmd} but the code did not wait",
                        describe(body)
                    )));
                }
            }
            EventBody::SignalReceived { wait_cmd, payload } => {
                match self.signals.get_mut(wait_cmd) {
                    Some(slot) => {
                        if slot.payload.is_none() {
                            slot.payload = Some(payload.clone());
                        }
                        if let Some(w) = slot.waker.take() {
                            w.wake();
                        }
                    }
                    None => self.fail(unexpected(format!(
                        "a signal arrived for wait #{wait_cmd} but the code did not wait"
                    ))),
                }
            }
            EventBody::ChildEnded { child_cmd, .. } => match self.children.get_mut(child_cmd) {
                Some(slot) => {
                    if slot.ended.is_none() {
                        slot.ended = Some(body.clone());
                    }
                    if let Some(w) = slot.waker.take() {
                        w.wake();
                    }
                }
                None => self.fail(unexpected(format!(
                    "child run #{child_cmd} ended but the code did not start it"
                ))),
            },
            // Markers answer `ctx.patched` by their place in the journal (see `patches.rs`);
            // one this execution wrote releases the `Patch` waiting for its commit.
            EventBody::Patched { change_id, .. } => {
                if let Some(Some(w)) = self.patches_uncommitted.remove(change_id) {
                    w.wake();
                }
            }
            EventBody::AttemptFailed { .. } => {}
            EventBody::CancelRequested { reason } => {
                if self.cancelled.is_none() {
                    self.cancelled = Some(reason.clone());
                }
                self.wake_all();
            }
            EventBody::RunStarted { .. }
            | EventBody::RunCompleted { .. }
            | EventBody::RunFailed { .. }
            | EventBody::RunCancelled { .. } => {}
        }
    }

    fn fail(&mut self, e: ReplayError) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    fn wake_all(&mut self) {
        let wakers = self
            .steps
            .values_mut()
            .filter_map(|s| s.waker.take())
            .chain(self.timers.values_mut().filter_map(|t| t.waker.take()))
            .chain(self.hooks.values_mut().filter_map(|h| h.waker.take()))
            .chain(self.records.values_mut().filter_map(|r| r.waker.take()))
            .chain(self.signals.values_mut().filter_map(|r| r.waker.take()))
            .chain(self.children.values_mut().filter_map(|c| c.waker.take()))
            .collect::<Vec<_>>();
        for w in wakers {
            w.wake();
        }
    }
}
