//! The state one run's workflow code shares with its executor: which commands were issued, what
//! the journal recorded for them, and what has been delivered so far. Workflow-side futures
//! ([`crate::Ctx`], [`crate::Hook`], ...) read and change it through an `Arc<Mutex<RunState>>`;
//! the executor ([`crate::RunMachine`]) feeds journal entries into it.
//!
//! Every command gets the next [`CommandIndex`] *when it is issued* (program order). If the
//! journal loaded for replay holds a record for that index, the record answers the command
//! (and must match it, else [`ReplayError::Nondeterminism`]); otherwise the command is new and
//! its record goes to the outbox, for the engine to append.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::task::Waker;

use serde_json::Value;

use crate::env::Environment;
use crate::error::ReplayError;
use crate::event::{CommandIndex, ErrorInfo, EventBody};
use crate::step::StepTask;

pub(crate) type Shared = Arc<parking_lot::Mutex<RunState>>;

/// Lifecycle of a hook slot.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum HookPhase {
    /// Creation issued, not yet committed.
    Creating,
    /// Holds its token.
    Active,
    /// Another hook held the token.
    Conflict { holder_run: String },
    /// Disposed by the workflow.
    Disposed,
}

#[derive(Debug)]
pub(crate) struct HookSlot {
    pub token: String,
    pub phase: HookPhase,
    pub buffer: VecDeque<Value>,
    pub waker: Option<Waker>,
}

/// A command answered by its own committed record (state access, spawn, signal sent).
#[derive(Debug)]
pub(crate) struct RecordSlot {
    pub record: Option<EventBody>,
    pub waker: Option<Waker>,
}

/// A wait for a signal.
#[derive(Debug)]
pub(crate) struct SignalSlot {
    pub payload: Option<Value>,
    pub waker: Option<Waker>,
    /// Whether the wait is journaled (recorded, or new and written): a wait issued after a
    /// cancel request is not, and needs no release.
    pub written: bool,
}

#[derive(Debug)]
pub(crate) struct StepSlot {
    pub result: Option<Result<Value, ErrorInfo>>,
    pub waker: Option<Waker>,
}

#[derive(Debug)]
pub(crate) struct TimerSlot {
    pub fire_at_ms: u64,
    pub committed: bool,
    pub fired: bool,
    pub abandoned: bool,
    pub waker: Option<Waker>,
}

/// A journaled value read by `now`, `random` or `uuid`.
pub(crate) enum Drawn {
    Now(u64),
    Random(u64),
    Uuid(String),
}

pub(crate) struct RunState {
    pub run_id: String,
    pub env: Arc<dyn Environment>,
    /// Command records of the journal loaded for replay, by command index.
    recorded: HashMap<CommandIndex, EventBody>,
    /// Journal position of each record in `recorded` (for error messages).
    recorded_seq: HashMap<CommandIndex, u64>,
    next_cmd: CommandIndex,
    /// New command records for the engine to append.
    pub outbox: Vec<EventBody>,
    /// Steps to run (new, or lost in a crash before their result was journaled).
    pub step_tasks: Vec<StepTask>,
    pub steps: HashMap<CommandIndex, StepSlot>,
    pub timers: BTreeMap<CommandIndex, TimerSlot>,
    pub hooks: HashMap<CommandIndex, HookSlot>,
    pub records: HashMap<CommandIndex, RecordSlot>,
    pub signals: HashMap<CommandIndex, SignalSlot>,
    /// The workflow this run executes (for the self-target check of `spawn_hook`).
    pub workflow: String,
    /// The signal an `exec_hook` caller waits on, when this run is such a hook thread.
    pub exec_signal: Option<String>,
    /// The signal ids this run has sent (journaled, in this attempt or an earlier one).
    pub signals_sent: HashSet<String>,
    pub cancelled: Option<Option<String>>,
    /// The first replay error seen; the executor stops the run on it.
    pub error: Option<ReplayError>,
    /// Set while the workflow future is being dropped without finishing (eviction, shutdown):
    /// drops then must not issue commands.
    pub teardown: bool,
}

impl std::fmt::Debug for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunState")
            .field("run_id", &self.run_id)
            .field("next_cmd", &self.next_cmd)
            .field("outbox", &self.outbox.len())
            .finish_non_exhaustive()
    }
}

/// A command record as a person reads it (`step "charge"`, `a timer`, ...).
pub(crate) fn describe(body: &EventBody) -> String {
    match body {
        EventBody::StepCompleted { name, .. } | EventBody::StepFailed { name, .. } => {
            format!("step {name:?}")
        }
        EventBody::TimerStarted { .. } => "a timer".into(),
        EventBody::HookCreated {
            token, generated, ..
        } => {
            if *generated {
                "a hook with a generated token".into()
            } else {
                format!("a hook with token {token:?}")
            }
        }
        EventBody::HookConflict { token, .. } => format!("a hook with token {token:?}"),
        EventBody::HookDisposed { hook_cmd, .. } => format!("disposal of hook #{hook_cmd}"),
        EventBody::Now { .. } => "ctx.now()".into(),
        EventBody::Random { .. } => "ctx.random()".into(),
        EventBody::Uuid { .. } => "ctx.uuid()".into(),
        EventBody::StateGet { key, .. } => format!("state get {key:?}"),
        EventBody::StateSet { key, .. } => format!("state set {key:?}"),
        EventBody::StateIncr { key, .. } => format!("state incr {key:?}"),
        EventBody::StateDelete { key, .. } => format!("state delete {key:?}"),
        EventBody::HookSpawned { workflow, .. } => format!("spawn of hook {workflow:?}"),
        EventBody::SignalSent { signal_id, .. } => format!("signal {signal_id:?}"),
        EventBody::SignalWaited { signal_id, .. } => format!("wait for signal {signal_id:?}"),
        EventBody::SignalReleased {
            wait_cmd,
            signal_id,
            ..
        } => format!("release of wait #{wait_cmd} for signal {signal_id:?}"),
        other => other.kind().to_string(),
    }
}

impl RunState {
    pub fn new(run_id: String, env: Arc<dyn Environment>) -> Self {
        RunState {
            run_id,
            env,
            recorded: HashMap::new(),
            recorded_seq: HashMap::new(),
            next_cmd: 1,
            outbox: Vec::new(),
            step_tasks: Vec::new(),
            steps: HashMap::new(),
            timers: BTreeMap::new(),
            hooks: HashMap::new(),
            records: HashMap::new(),
            signals: HashMap::new(),
            workflow: String::new(),
            exec_signal: None,
            signals_sent: HashSet::new(),
            cancelled: None,
            error: None,
            teardown: false,
        }
    }

    /// The command records of the journal being replayed: by command index, with their
    /// journal position.
    pub fn set_recorded(&mut self, recorded: HashMap<CommandIndex, (u64, EventBody)>) {
        for (cmd, (seq, body)) in recorded {
            self.recorded_seq.insert(cmd, seq);
            self.recorded.insert(cmd, body);
        }
    }

    /// How many commands the code has issued so far.
    pub fn issued(&self) -> CommandIndex {
        self.next_cmd - 1
    }

    fn take_cmd(&mut self) -> CommandIndex {
        let c = self.next_cmd;
        self.next_cmd += 1;
        c
    }

    fn mismatch(&mut self, cmd: CommandIndex, recorded: &EventBody, issued: String) {
        if self.error.is_none() {
            self.error = Some(ReplayError::Nondeterminism {
                position: cmd,
                seq: self.recorded_seq.get(&cmd).copied().unwrap_or(0),
                recorded: describe(recorded),
                issued,
            });
        }
    }

    /// Issue a step. Returns its index; queues its body to run unless the journal has its result.
    pub fn issue_step(
        &mut self,
        name: &str,
        make_task: impl FnOnce(CommandIndex) -> StepTask,
    ) -> CommandIndex {
        let cmd = self.take_cmd();
        let replayed = match self.recorded.get(&cmd) {
            Some(
                EventBody::StepCompleted { name: n, .. } | EventBody::StepFailed { name: n, .. },
            ) if n == name => true,
            Some(other) => {
                let other = other.clone();
                self.mismatch(cmd, &other, format!("step {name:?}"));
                true
            }
            None => false,
        };
        self.steps.insert(
            cmd,
            StepSlot {
                result: None,
                waker: None,
            },
        );
        if !replayed && self.cancelled.is_none() {
            self.step_tasks.push(make_task(cmd));
        }
        cmd
    }

    /// Issue a timer due at `fire_at_ms` (live) or at the journaled time (replay).
    pub fn issue_timer(&mut self, fire_at_ms: u64) -> CommandIndex {
        let cmd = self.take_cmd();
        let at = match self.recorded.get(&cmd) {
            Some(EventBody::TimerStarted { fire_at_ms, .. }) => *fire_at_ms,
            Some(other) => {
                let other = other.clone();
                self.mismatch(cmd, &other, "a timer".into());
                fire_at_ms
            }
            // Asked to cancel: a new timer is not written (its `Sleep` fails with `Cancelled`).
            None if self.cancelled.is_some() => fire_at_ms,
            None => {
                self.outbox
                    .push(EventBody::TimerStarted { cmd, fire_at_ms });
                fire_at_ms
            }
        };
        self.timers.insert(
            cmd,
            TimerSlot {
                fire_at_ms: at,
                committed: false,
                fired: false,
                abandoned: false,
                waker: None,
            },
        );
        cmd
    }

    /// Issue a hook creation. `token` is the caller's choice, or `None` for a generated one.
    pub fn issue_hook(
        &mut self,
        token: Option<String>,
        kind: &str,
        metadata: Value,
        definition: Option<String>,
    ) -> CommandIndex {
        let cmd = self.take_cmd();
        let issued_desc = match &token {
            Some(t) => format!("a hook with token {t:?}"),
            None => "a hook with a generated token".into(),
        };
        let recorded_token = match self.recorded.get(&cmd) {
            Some(EventBody::HookCreated {
                token: rt,
                generated,
                ..
            }) if token.as_deref().map_or(*generated, |t| t == rt) => Some(rt.clone()),
            Some(EventBody::HookConflict { token: rt, .. })
                if token.as_deref().is_none_or(|t| t == rt) =>
            {
                Some(rt.clone())
            }
            Some(other) => {
                let other = other.clone();
                self.mismatch(cmd, &other, issued_desc);
                Some(String::new())
            }
            None => None,
        };
        let token = match recorded_token {
            Some(t) => t,
            // Asked to cancel: a new hook is not written (no token is taken; its creation
            // fails with `Cancelled`).
            None if self.cancelled.is_some() => token.unwrap_or_default(),
            None => {
                let generated = token.is_none();
                let t = token.unwrap_or_else(|| self.generate_token());
                self.outbox.push(EventBody::HookCreated {
                    cmd,
                    token: t.clone(),
                    kind: kind.to_string(),
                    metadata,
                    definition,
                    generated,
                });
                t
            }
        };
        self.hooks.insert(
            cmd,
            HookSlot {
                token,
                phase: HookPhase::Creating,
                buffer: VecDeque::new(),
                waker: None,
            },
        );
        cmd
    }

    /// 160 bits from the environment's (cryptographic, in the engine) random source.
    fn generate_token(&self) -> String {
        let mut bytes = [0u8; 20];
        self.env.random_bytes(&mut bytes);
        let mut s = String::with_capacity(40);
        for b in bytes {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// Dispose a hook (explicitly or on drop): releases its token.
    pub fn issue_dispose(&mut self, hook_cmd: CommandIndex) {
        if self.teardown {
            return;
        }
        let Some(slot) = self.hooks.get_mut(&hook_cmd) else {
            return;
        };
        if slot.phase != HookPhase::Active {
            return;
        }
        slot.phase = HookPhase::Disposed;
        let token = slot.token.clone();
        let cmd = self.take_cmd();
        match self.recorded.get(&cmd) {
            Some(EventBody::HookDisposed { hook_cmd: h, .. }) if *h == hook_cmd => {}
            Some(other) => {
                let other = other.clone();
                self.mismatch(cmd, &other, format!("disposal of hook #{hook_cmd}"));
            }
            None => self.outbox.push(EventBody::HookDisposed {
                cmd,
                hook_cmd,
                token,
            }),
        }
    }

    /// `now`, `random`, `uuid`: journaled values, answered from the journal on replay.
    pub fn draw(&mut self, want: Drawn) -> Drawn {
        let cmd = self.take_cmd();
        let rec = self.recorded.get(&cmd).cloned();
        match (rec, want) {
            (None, Drawn::Now(ms)) => {
                self.outbox.push(EventBody::Now { cmd, ms });
                Drawn::Now(ms)
            }
            (None, Drawn::Random(value)) => {
                self.outbox.push(EventBody::Random { cmd, value });
                Drawn::Random(value)
            }
            (None, Drawn::Uuid(value)) => {
                self.outbox.push(EventBody::Uuid {
                    cmd,
                    value: value.clone(),
                });
                Drawn::Uuid(value)
            }
            (Some(EventBody::Now { ms, .. }), Drawn::Now(_)) => Drawn::Now(ms),
            (Some(EventBody::Random { value, .. }), Drawn::Random(_)) => Drawn::Random(value),
            (Some(EventBody::Uuid { value, .. }), Drawn::Uuid(_)) => Drawn::Uuid(value),
            (Some(other), want) => {
                let issued = match want {
                    Drawn::Now(_) => "ctx.now()",
                    Drawn::Random(_) => "ctx.random()",
                    Drawn::Uuid(_) => "ctx.uuid()",
                };
                self.mismatch(cmd, &other, issued.into());
                want
            }
        }
    }

    /// Issue a command answered by its own committed record (`template` carries the command's
    /// inputs; the store fills the outputs). Matching a recorded entry means same kind and
    /// same [`describe`] text (key, signal id, target workflow).
    ///
    /// A new command issued once the run has been asked to cancel is not written (its future
    /// fails with `Cancelled`): the cancel request is applied at the same journal position on
    /// replay, so replay issues it unwritten too. A journal that recorded such a command (an
    /// older release wrote them) still answers it from its record.
    pub fn issue_record(
        &mut self,
        template: impl FnOnce(CommandIndex) -> EventBody,
    ) -> CommandIndex {
        let cmd = self.take_cmd();
        let body = template(cmd);
        let written = match self.recorded.get(&cmd) {
            Some(rec) if rec.kind() == body.kind() && describe(rec) == describe(&body) => true,
            Some(other) => {
                let other = other.clone();
                self.mismatch(cmd, &other, describe(&body));
                true
            }
            None if self.cancelled.is_some() => false,
            None => {
                self.outbox.push(body.clone());
                true
            }
        };
        if let (true, EventBody::SignalSent { signal_id, .. }) = (written, &body) {
            self.signals_sent.insert(signal_id.clone());
        }
        self.records.insert(
            cmd,
            RecordSlot {
                record: None,
                waker: None,
            },
        );
        cmd
    }

    /// Issue a wait for a signal.
    pub fn issue_wait(&mut self, signal_id: &str) -> CommandIndex {
        let cmd = self.issue_record(|cmd| EventBody::SignalWaited {
            cmd,
            signal_id: signal_id.to_string(),
        });
        self.records.remove(&cmd);
        let written = self.recorded.contains_key(&cmd)
            || self
                .outbox
                .last()
                .is_some_and(|b| b.command_index() == Some(cmd));
        self.signals.insert(
            cmd,
            SignalSlot {
                payload: None,
                waker: None,
                written,
            },
        );
        cmd
    }

    /// Release a wait for a signal that ends without taking its payload (see
    /// [`EventBody::SignalReleased`]). Not during teardown (an evicted run's waits stay).
    ///
    /// Journals of the first release lack this entry. The rule that keeps them replaying: a
    /// release is *optional* in a recorded journal. If the record at the next command index
    /// is a release of this wait, it answers it; if it is another command (the journal moved
    /// on without a release), the release is skipped and takes no command index, so the
    /// commands after it keep their recorded indices; if there is none (the journal ends
    /// here), the release is new and written. A release of another wait at that index is a
    /// non-determinism like any mismatch. Releases are written even after a cancel request:
    /// they give back, never take.
    pub fn issue_release(&mut self, wait_cmd: CommandIndex, signal_id: &str) {
        if self.teardown {
            return;
        }
        let next = self.next_cmd;
        match self.recorded.get(&next) {
            Some(EventBody::SignalReleased { wait_cmd: w, .. }) if *w == wait_cmd => {
                self.take_cmd();
            }
            Some(rec @ EventBody::SignalReleased { .. }) => {
                let rec = rec.clone();
                let cmd = self.take_cmd();
                self.mismatch(
                    cmd,
                    &rec,
                    format!("release of wait #{wait_cmd} for signal {signal_id:?}"),
                );
            }
            // An older journal that went on without releases: skip it.
            Some(_) => {}
            None => {
                let cmd = self.take_cmd();
                self.outbox.push(EventBody::SignalReleased {
                    cmd,
                    wait_cmd,
                    signal_id: signal_id.to_string(),
                    returned: false,
                    delivered_to: None,
                });
            }
        }
    }

    /// Apply one committed journal entry. `seq` is its position (for error messages).
    pub fn apply(&mut self, seq: u64, body: &EventBody) {
        let unexpected = |what: String| ReplayError::Unexpected { seq, message: what };
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
            .collect::<Vec<_>>();
        for w in wakers {
            w.wake();
        }
    }
}
