//! The state one run's workflow code shares with its executor: which commands were issued, what
//! the journal recorded for them, and what has been delivered so far. Workflow-side futures
//! ([`crate::Ctx`], [`crate::Hook`], ...) read and change it through an `Arc<Mutex<RunState>>`;
//! the executor ([`crate::RunMachine`]) feeds journal entries into it.
//!
//! Every command gets the next [`CommandIndex`] *when it is issued* (program order). If the
//! journal loaded for replay holds a record for that index, the record answers the command
//! (and must match it, else [`ReplayError::Nondeterminism`]); otherwise the command is new and
//! its record goes to the outbox, for the engine to append.
//!
//! This module holds the state and its slots; issuing commands is in `issue.rs` (steps,
//! timers, hooks, drawn values) and `signals.rs` (commands answered by their own record,
//! signal waits and their releases), versioning markers (`ctx.patched`, which take no command
//! index) in `patches.rs`, applying journal entries in `apply.rs`.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use self::patches::Outline;
use std::sync::Arc;
use std::task::Waker;

use serde_json::Value;

use crate::env::Environment;
use crate::error::ReplayError;
use crate::event::{CommandIndex, ErrorInfo, EventBody};
use crate::step::StepTask;

mod apply;
mod issue;
mod patches;
mod signals;

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
    /// When the hook expires (as journaled with its creation), if it does.
    pub expires_at_ms: Option<u64>,
    /// Set once its `HookExpired` entry is applied: payloads already buffered still come
    /// out, then every wait ends expired.
    pub expired: bool,
    pub buffer: VecDeque<Value>,
    pub waker: Option<Waker>,
}

/// The times of a new hook: when it expires (absolute, from the run's clock) and how long its
/// token stays reserved after the hook lets it go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct HookTiming {
    pub expires_at_ms: Option<u64>,
    pub reserve_ms: Option<u64>,
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

/// A child run this run started: how it ended, once its `ChildEnded` is applied.
#[derive(Debug)]
pub(crate) struct ChildSlot {
    pub ended: Option<EventBody>,
    pub waker: Option<Waker>,
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
    pub children: HashMap<CommandIndex, ChildSlot>,
    /// Which attempt this is (hook threads run again from the start after a failure): child
    /// run ids of later attempts name it, so an attempt never reuses an earlier one's child.
    pub attempt: u32,
    /// The workflow this run executes (for the self-target check of `spawn_hook`).
    pub workflow: String,
    /// The signal an `exec_hook` caller waits on, when this run is such a hook thread.
    pub exec_signal: Option<String>,
    /// The signal ids this run has sent (journaled, in this attempt or an earlier one).
    pub signals_sent: HashSet<String>,
    pub cancelled: Option<Option<String>>,
    /// The first replay error seen; the executor stops the run on it.
    pub error: Option<ReplayError>,
    /// The loaded journal in order (after `RunStarted`), for the patch decisions.
    outline: Vec<(u64, Outline)>,
    /// Position of the last journal entry applied.
    applied_seq: u64,
    /// Change ids `ctx.patched` answered `true` in this execution.
    patches_taken: HashSet<String>,
    /// Markers written by this execution and not committed yet, with the waker of a
    /// [`crate::patch::Patch`] waiting for the commit.
    pub patches_uncommitted: HashMap<String, Option<Waker>>,
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
        EventBody::Patched { change_id, .. } => format!("patch marker {change_id:?}"),
        EventBody::ChildStarted { workflow, .. } => format!("start of child run {workflow:?}"),
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
            children: HashMap::new(),
            attempt: 1,
            workflow: String::new(),
            exec_signal: None,
            signals_sent: HashSet::new(),
            cancelled: None,
            error: None,
            outline: Vec::new(),
            applied_seq: 0,
            patches_taken: HashSet::new(),
            patches_uncommitted: HashMap::new(),
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

    /// The record the journal being replayed has at command index `cmd`, if any.
    pub fn recorded_record(&self, cmd: CommandIndex) -> Option<&EventBody> {
        self.recorded.get(&cmd)
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
}
