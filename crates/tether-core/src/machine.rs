//! [`RunMachine`]: the deterministic executor of one run. No I/O: journal entries go in,
//! new command records, steps to run and timer deadlines come out.
//!
//! The rule that makes replay exact: the workflow future is polled until it stalls, then *one*
//! journal entry is applied, then it is polled until it stalls again — in replay and live
//! alike. Which branch of a race wins is therefore decided by journal order alone.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures::future::BoxFuture;
use serde_json::Value;

use crate::ctx::Ctx;
use crate::env::Environment;
use crate::error::{ReplayError, WorkflowError};
use crate::event::{CommandIndex, Event, EventBody};
use crate::state::{RunState, Shared};
use crate::step::StepTask;
use crate::workflow::ErasedWorkflow;

#[derive(Debug, Default)]
struct WakeFlag(AtomicBool);

impl Wake for WakeFlag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }
}

/// Where a run stands after being driven.
#[derive(Clone, Debug, PartialEq)]
pub enum Progress {
    /// Waiting for a journal entry (a step result, a payload, a timer, a commit).
    Waiting,
    /// The workflow function returned: append this terminal entry.
    Finished(EventBody),
}

/// A timer the host must fire: append `TimerFired { cmd }` at or after `fire_at_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DueTimer {
    /// Command index of the timer.
    pub cmd: CommandIndex,
    /// Deadline, ms since the Unix epoch.
    pub fire_at_ms: u64,
}

/// Something the host must append when its time comes: a timer's `TimerFired`, or a hook's
/// `HookExpired` (see [`RunMachine::pending_deadlines`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Deadline {
    /// Command index of the timer or hook (unique in the run: a host may key what it has
    /// already sent by it).
    pub cmd: CommandIndex,
    /// When it is due, ms since the Unix epoch.
    pub at_ms: u64,
    /// The entry to append at or after `at_ms`.
    pub entry: EventBody,
}

/// The deterministic executor of one run.
pub struct RunMachine {
    state: Shared,
    future: Option<BoxFuture<'static, Result<Value, WorkflowError>>>,
    flag: Arc<WakeFlag>,
    waker: Waker,
    last_seq: u64,
    finished: Option<EventBody>,
    attempt: u32,
    thread: Option<crate::event::ThreadInfo>,
}

impl fmt::Debug for RunMachine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunMachine")
            .field("last_seq", &self.last_seq)
            .field("finished", &self.finished.is_some())
            .finish_non_exhaustive()
    }
}

impl RunMachine {
    /// Rebuild a run from its journal (which starts with `RunStarted`), replaying every entry.
    /// A brand-new run is "replayed" from its one `RunStarted` entry. Returns the machine,
    /// positioned after the last entry, and where the run stands.
    pub fn replay(
        run_id: &str,
        workflow: &dyn ErasedWorkflow,
        env: Arc<dyn Environment>,
        journal: &[Event],
    ) -> Result<(RunMachine, Progress), ReplayError> {
        let (workflow_name, input, thread) = match journal.first().map(|e| &e.body) {
            Some(EventBody::RunStarted {
                workflow,
                input,
                thread,
            }) => (workflow.clone(), input.clone(), thread.clone()),
            _ => {
                return Err(ReplayError::Corrupt(format!(
                    "journal of run {run_id} does not start with run_started"
                )))
            }
        };
        // A hook thread that failed and is retried starts over after its last failed attempt.
        let attempt_start = journal
            .iter()
            .rposition(|e| matches!(e.body, EventBody::AttemptFailed { .. }))
            .map_or(1, |i| i + 1);
        let attempt = 1 + journal[..attempt_start]
            .iter()
            .filter(|e| matches!(e.body, EventBody::AttemptFailed { .. }))
            .count() as u32;
        let current = &journal[attempt_start.min(journal.len())..];
        // A cancel request is the run's, not an attempt's: one committed before the last
        // failed attempt's `AttemptFailed` (it came in while that attempt was ending) still
        // cancels the attempts after it.
        let earlier_cancel = journal[..attempt_start.min(journal.len())]
            .iter()
            .find_map(|e| match &e.body {
                EventBody::CancelRequested { reason } => Some(reason.clone()),
                _ => None,
            });
        let mut recorded = HashMap::new();
        for e in current {
            if let Some(cmd) = e.body.command_index() {
                recorded
                    .entry(cmd)
                    .or_insert_with(|| (e.seq, e.body.clone()));
            }
        }
        let mut st = RunState::new(run_id.to_string(), env);
        st.set_recorded(recorded);
        st.set_outline(current);
        st.workflow = workflow_name;
        st.attempt = attempt;
        st.cancelled = earlier_cancel;
        st.exec_signal = thread.as_ref().and_then(|t| t.fail_signal.clone());
        // Signals sent by earlier attempts count as sent (see `exec_signal_unsent`).
        st.signals_sent = journal[..attempt_start.min(journal.len())]
            .iter()
            .filter_map(|e| match &e.body {
                EventBody::SignalSent { signal_id, .. } => Some(signal_id.clone()),
                _ => None,
            })
            .collect();
        let state: Shared = Arc::new(parking_lot::Mutex::new(st));
        let ctx = Ctx::new(state.clone());
        let future = workflow.start(ctx, input);
        let flag = Arc::new(WakeFlag(AtomicBool::new(true)));
        let waker = Waker::from(flag.clone());
        let mut m = RunMachine {
            state,
            future: Some(future),
            flag,
            waker,
            // (A stored journal starts at 1; a damaged one with a 0 must not underflow.)
            last_seq: current
                .first()
                .map_or(journal[journal.len() - 1].seq, |e| e.seq.saturating_sub(1)),
            finished: None,
            attempt,
            thread,
        };
        let mut progress = m.drive()?;
        for (i, e) in current.iter().enumerate() {
            if e.body.is_terminal() {
                break;
            }
            progress = m.feed(e)?;
            if matches!(progress, Progress::Finished(_)) {
                m.check_nothing_after_end(&current[i + 1..])?;
                break;
            }
        }
        Ok((m, progress))
    }

    /// The code returned while replaying: a command record after that point that the code did
    /// not issue means the code now issues fewer commands than the journal recorded.
    fn check_nothing_after_end(&self, rest: &[Event]) -> Result<(), ReplayError> {
        let issued = self.state.lock().issued();
        for e in rest {
            if e.body.is_terminal() {
                return Ok(());
            }
            if let Some(cmd) = e.body.command_index().filter(|c| *c > issued) {
                return Err(ReplayError::Unexpected {
                    seq: e.seq,
                    message: format!(
                        "the code now returns after {issued} commands, but the journal has \
                         {} as command #{cmd}",
                        crate::state::describe(&e.body)
                    ),
                });
            }
        }
        Ok(())
    }

    /// Apply one committed journal entry and drive the workflow until it stalls. Entries at or
    /// before [`RunMachine::last_seq`] are ignored (duplicates).
    pub fn feed(&mut self, event: &Event) -> Result<Progress, ReplayError> {
        if event.seq <= self.last_seq {
            return Ok(self.progress());
        }
        self.last_seq = event.seq;
        if self.finished.is_none() {
            self.state.lock().apply(event.seq, &event.body);
        }
        self.drive()
    }

    fn progress(&self) -> Progress {
        match &self.finished {
            Some(b) => Progress::Finished(b.clone()),
            None => Progress::Waiting,
        }
    }

    /// Poll the workflow while something woke it.
    fn drive(&mut self) -> Result<Progress, ReplayError> {
        while self.finished.is_none() && self.flag.0.swap(false, Ordering::AcqRel) {
            let Some(fut) = self.future.as_mut() else {
                break;
            };
            let mut cx = Context::from_waker(&self.waker);
            let polled = fut.as_mut().poll(&mut cx);
            if let Some(e) = self.state.lock().error.clone() {
                return Err(e);
            }
            if let Poll::Ready(result) = polled {
                self.future = None;
                let cancel = {
                    let mut st = self.state.lock();
                    // The run is over: no step result can be used any more, so a step still
                    // waiting to run (e.g. one in flight when the run was cancelled, asked again
                    // by a replay) must not run.
                    st.step_tasks.clear();
                    st.cancelled.clone()
                };
                self.finished = Some(match (result, cancel) {
                    (Ok(output), _) => EventBody::RunCompleted { output },
                    // Cancelled runs that end in an error end as cancelled.
                    (Err(_), Some(reason)) => EventBody::RunCancelled { reason },
                    (Err(e), None) => EventBody::RunFailed { error: e.to_info() },
                });
            }
        }
        if let Some(e) = self.state.lock().error.clone() {
            return Err(e);
        }
        Ok(self.progress())
    }

    /// Command records issued since the last call, to append in this order.
    pub fn take_outbox(&mut self) -> Vec<EventBody> {
        std::mem::take(&mut self.state.lock().outbox)
    }

    /// Steps to run since the last call (new ones, and ones whose result a crash lost).
    pub fn take_step_tasks(&mut self) -> Vec<StepTask> {
        std::mem::take(&mut self.state.lock().step_tasks)
    }

    /// Committed timers that have neither fired nor been abandoned, earliest first.
    pub fn pending_timers(&self) -> Vec<DueTimer> {
        let st = self.state.lock();
        let mut v: Vec<DueTimer> = st
            .timers
            .iter()
            .filter(|(_, t)| t.committed && !t.fired && !t.abandoned)
            .map(|(cmd, t)| DueTimer {
                cmd: *cmd,
                fire_at_ms: t.fire_at_ms,
            })
            .collect();
        v.sort_by_key(|t| (t.fire_at_ms, t.cmd));
        v
    }

    /// Everything due at some time, earliest first (then by command index): the pending
    /// timers ([`RunMachine::pending_timers`]) and the expiries of committed hooks that are
    /// neither disposed nor expired yet. The run's wake-up time is the first one's.
    pub fn pending_deadlines(&self) -> Vec<Deadline> {
        let mut v: Vec<Deadline> = self
            .pending_timers()
            .into_iter()
            .map(|t| Deadline {
                cmd: t.cmd,
                at_ms: t.fire_at_ms,
                entry: EventBody::TimerFired { cmd: t.cmd },
            })
            .collect();
        let st = self.state.lock();
        for (cmd, h) in &st.hooks {
            if h.phase != crate::state::HookPhase::Active || h.expired {
                continue;
            }
            if let Some(at_ms) = h.expires_at_ms {
                v.push(Deadline {
                    cmd: *cmd,
                    at_ms,
                    entry: EventBody::HookExpired {
                        hook_cmd: *cmd,
                        token: h.token.clone(),
                    },
                });
            }
        }
        v.sort_by_key(|d| (d.at_ms, d.cmd));
        v
    }

    /// Steps whose result has not been applied yet.
    pub fn steps_in_flight(&self) -> usize {
        self.state
            .lock()
            .steps
            .values()
            .filter(|s| s.result.is_none())
            .count()
    }

    /// Position of the last applied journal entry.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Which attempt this is (hook threads are retried from the start; runs have one).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Set when the run is a hook thread.
    pub fn thread(&self) -> Option<&crate::event::ThreadInfo> {
        self.thread.as_ref()
    }

    /// The signal this hook thread's `exec_hook` caller waits on, if the thread is one and
    /// has not sent it (in this attempt or an earlier one, counting only signals journaled).
    /// When such a thread ends `RunCompleted`, the host sends its output on this signal in
    /// the same transaction as the end, so `exec_hook` never hangs on a hook function that
    /// returned without signalling.
    pub fn exec_signal_unsent(&self) -> Option<String> {
        let st = self.state.lock();
        st.exec_signal
            .clone()
            .filter(|id| !st.signals_sent.contains(id))
    }

    /// The run id.
    pub fn run_id(&self) -> String {
        self.state.lock().run_id.clone()
    }
}

impl Drop for RunMachine {
    fn drop(&mut self) {
        // Dropping an unfinished workflow (eviction, shutdown) must not dispose its hooks.
        self.state.lock().teardown = true;
        let fut = self.future.take();
        drop(fut);
    }
}
