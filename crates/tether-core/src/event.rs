//! The journal: the events a run records, in order. The journal, not memory, is the truth.
//!
//! Two kinds of entries share one sequence:
//! - *command records* (`StepCompleted`, `TimerStarted`, `HookCreated`, `Now`, ...) carry the
//!   command index (`cmd`) the workflow gave them in program order; replay matches the workflow's
//!   commands against them by that index and reports a [`crate::ReplayError::Nondeterminism`]
//!   when they differ;
//! - *deliveries* (`HookReceived`, `TimerFired`, `HookExpired`, `CancelRequested`) come from the
//!   outside world (or the host's clock);
//!   replay feeds them to the workflow in journal order, which is what makes `race` and `select`
//!   take the same branch every time.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Position of a command in the workflow's program order, starting at 1.
pub type CommandIndex = u32;

/// A committed journal entry: its position in the run's journal, its commit time and its body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the run's journal, starting at 1, dense.
    pub seq: u64,
    /// Commit time, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub body: EventBody,
}

/// A structured error as journaled and shown over the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    /// Stable machine-readable code, e.g. `step_failed`, `cancelled`, `nondeterminism`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

impl ErrorInfo {
    /// Build an error from a code and a message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ErrorInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// What makes a run a hook thread: the namespace it works in and how it is retried.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThreadInfo {
    /// The run whose shared state the thread reads and writes (the namespace root).
    pub root_run: String,
    /// The run (or thread) that spawned it, or the root when spawned from outside.
    pub parent_run: String,
    /// How a failing attempt is retried (the whole hook function runs again).
    pub retry: crate::step::RetryPolicy,
    /// A signal to send `{"$tether_error": {code, message}}` to if the thread fails for good.
    pub fail_signal: Option<String>,
}

/// The kind of a hook: a plain token hook, or (later) a webhook with a URL.
pub const HOOK_KIND_TOKEN: &str = "hook";

/// Everything a journal entry can say.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    /// The run was created with this input.
    RunStarted {
        /// Registered workflow name.
        workflow: String,
        /// The run's input.
        input: Value,
        /// Set when the run is a hook thread inside another run's namespace.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        thread: Option<ThreadInfo>,
    },
    /// A step finished successfully (the step itself is not journaled before it runs: a step
    /// that was running when the process died simply runs again, at-least-once).
    StepCompleted {
        /// Command index of the step.
        cmd: CommandIndex,
        /// Step name, checked on replay.
        name: String,
        /// The step's result.
        output: Value,
        /// How many attempts it took.
        attempts: u32,
    },
    /// A step failed for good: a fatal error, or its retries ran out.
    StepFailed {
        /// Command index of the step.
        cmd: CommandIndex,
        /// Step name, checked on replay.
        name: String,
        /// Why it failed.
        error: ErrorInfo,
        /// How many attempts were made.
        attempts: u32,
    },
    /// A durable timer was started; it fires at `fire_at_ms`.
    TimerStarted {
        /// Command index of the timer.
        cmd: CommandIndex,
        /// Wall-clock deadline, ms since the Unix epoch.
        fire_at_ms: u64,
    },
    /// A timer fired.
    TimerFired {
        /// Command index of the timer.
        cmd: CommandIndex,
    },
    /// A hook was registered and now holds its token.
    HookCreated {
        /// Command index of the hook creation.
        cmd: CommandIndex,
        /// The token that resumes the hook.
        token: String,
        /// `hook` (or `webhook` later).
        kind: String,
        /// User metadata shown where hooks are listed.
        metadata: Value,
        /// Name of the hook definition whose validation runs at resume time, if any.
        definition: Option<String>,
        /// Whether the token was generated (true) or chosen by the workflow.
        generated: bool,
        /// When the hook expires, ms since the Unix epoch (computed from the run's clock when
        /// the hook was created: [`crate::HookOptions::expires_in`]); `None`: never. At that
        /// time the host appends [`EventBody::HookExpired`], which releases the token.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at_ms: Option<u64>,
        /// How long the token stays reserved after the hook lets it go (disposed, expired or
        /// its run ended), in ms ([`crate::HookOptions::reserve_for`]); `None`: not at all.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reserve_ms: Option<u64>,
    },
    /// Hook creation failed: another active hook holds the token. Written by the store in
    /// place of `HookCreated`, in the same transaction that saw the conflict.
    HookConflict {
        /// Command index of the hook creation.
        cmd: CommandIndex,
        /// The contested token.
        token: String,
        /// The run whose hook holds the token.
        holder_run: String,
    },
    /// A payload was accepted for a hook (durably, in acceptance order).
    HookReceived {
        /// Command index of the hook that receives it.
        hook_cmd: CommandIndex,
        /// The payload.
        payload: Value,
    },
    /// A hook's expiry (`expires_at_ms` of its `HookCreated`) came: its token is released and
    /// payloads sent to it afterwards are refused as expired. Payloads journaled before this
    /// entry are still delivered, in order; the hook's next wait after them ends expired.
    HookExpired {
        /// Command index of the hook.
        hook_cmd: CommandIndex,
        /// The released token.
        token: String,
    },
    /// A hook was disposed (explicitly or by drop) and its token released.
    HookDisposed {
        /// Command index of the disposal.
        cmd: CommandIndex,
        /// Command index of the hook.
        hook_cmd: CommandIndex,
        /// The released token.
        token: String,
    },
    /// `ctx.now()` was read.
    Now {
        /// Command index.
        cmd: CommandIndex,
        /// The time read, ms since the Unix epoch.
        ms: u64,
    },
    /// `ctx.random()` was drawn.
    Random {
        /// Command index.
        cmd: CommandIndex,
        /// The value drawn.
        value: u64,
    },
    /// `ctx.uuid()` was drawn.
    Uuid {
        /// Command index.
        cmd: CommandIndex,
        /// The UUID drawn.
        value: String,
    },
    /// A read of the run's shared state; the store fills `value` with what it held at that
    /// moment (in the same transaction), so replay sees what was seen then.
    StateGet {
        /// Command index.
        cmd: CommandIndex,
        /// The key.
        key: String,
        /// The value read (`None`: absent), as filled by the store.
        value: Option<Value>,
    },
    /// A write of the run's shared state.
    StateSet {
        /// Command index.
        cmd: CommandIndex,
        /// The key.
        key: String,
        /// The value written.
        value: Value,
    },
    /// An atomic increment of an integer in the shared state; the store fills `value` with
    /// the result (`None` when the key held something other than an integer, left unchanged).
    StateIncr {
        /// Command index.
        cmd: CommandIndex,
        /// The key.
        key: String,
        /// The increment.
        by: i64,
        /// The value after the increment, as filled by the store.
        value: Option<i64>,
    },
    /// A key removed from the shared state; the store fills `existed`.
    StateDelete {
        /// Command index.
        cmd: CommandIndex,
        /// The key.
        key: String,
        /// Whether the key was there, as filled by the store.
        existed: bool,
    },
    /// A hook thread was spawned in the run's namespace; the store creates its run (id
    /// `hook_id`) in the same transaction, so a spawn happens exactly once.
    HookSpawned {
        /// Command index.
        cmd: CommandIndex,
        /// The new thread's id (a run id).
        hook_id: String,
        /// The workflow the thread runs.
        workflow: String,
        /// The task queue it was sent to.
        task_queue: String,
        /// Its input.
        args: Value,
        /// Its retry policy.
        retry: crate::step::RetryPolicy,
        /// A signal to send with the error if the thread fails for good (`exec_hook`).
        fail_signal: Option<String>,
    },
    /// A signal was sent from this run (delivered to a waiting run, or kept until one waits).
    SignalSent {
        /// Command index.
        cmd: CommandIndex,
        /// The signal id.
        signal_id: String,
        /// The payload.
        payload: Value,
        /// The run it was delivered to, as filled by the store (`None`: kept until a wait).
        delivered_to: Option<String>,
    },
    /// The run started waiting for a signal (if one was already kept, the store appends its
    /// `SignalReceived` right after this entry, in the same transaction).
    SignalWaited {
        /// Command index.
        cmd: CommandIndex,
        /// The signal id.
        signal_id: String,
    },
    /// A wait for a signal ended without taking its payload (it lost a `race`, timed out, was
    /// cancelled or dropped). The store, in the transaction that journals it, forgets the wait
    /// if it is still registered, or, if a payload had already reached it, gives that payload
    /// back: to the oldest other wait on `signal_id`, else first in line of the kept signals.
    /// Journals written before this entry existed lack it; see [`crate::threads`] for how
    /// replay treats that.
    SignalReleased {
        /// Command index of the release.
        cmd: CommandIndex,
        /// Command index of the wait released.
        wait_cmd: CommandIndex,
        /// The signal id of that wait.
        signal_id: String,
        /// Whether the wait had taken a payload, which went back (filled by the store).
        #[serde(default)]
        returned: bool,
        /// The run the returned payload went to, if a wait was there for it (filled by the
        /// store; `None`: kept, first in line).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delivered_to: Option<String>,
    },
    /// A signal reached a waiting run.
    SignalReceived {
        /// Command index of the wait.
        wait_cmd: CommandIndex,
        /// The payload.
        payload: Value,
    },
    /// `ctx.patched(change_id)` (or `ctx.deprecate_patch`) was first reached by code that has
    /// the change: from here on the run takes the new branch. A marker takes no command index
    /// (the commands after it keep the indexes they have in journals written before the
    /// change); replay finds it by its change id and `after_seq`. See `docs/versioning.md`.
    Patched {
        /// The change id passed to `ctx.patched`.
        change_id: String,
        /// The index the next command took when the marker was written (for reading only).
        at_cmd: CommandIndex,
        /// The last journal entry the code had been given when it asked: a replay asks at
        /// the same point of the journal, whatever was appended between the question and the
        /// marker's commit.
        after_seq: u64,
    },
    /// A hook thread's attempt failed and it will run again from the start at `retry_at_ms`
    /// (entries before this one belong to earlier attempts; replay starts after the last one).
    AttemptFailed {
        /// The attempt that failed (1-based).
        attempt: u32,
        /// Why.
        error: ErrorInfo,
        /// When the next attempt starts.
        retry_at_ms: u64,
    },
    /// A child run was started ([`crate::Ctx::start_child`]); the store creates the child run
    /// (id `child_run_id`, derived from this run's id and `cmd`) in the same transaction, so
    /// a child is started exactly once.
    ChildStarted {
        /// Command index.
        cmd: CommandIndex,
        /// The child's run id.
        child_run_id: String,
        /// The workflow the child runs.
        workflow: String,
        /// Its input.
        input: Value,
        /// Whether the child outlives a cancellation of this run (not cancelled with it).
        #[serde(default)]
        detached: bool,
    },
    /// A child run ended; appended by the store in the same transaction as the child's
    /// terminal entry (a parent that has ended already gets nothing).
    ChildEnded {
        /// Command index of the `ChildStarted` of that child.
        child_cmd: CommandIndex,
        /// How it ended: `completed`, `failed` or `cancelled`.
        status: RunStatus,
        /// Its output, when completed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<Value>,
        /// Its error, when failed or cancelled.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<ErrorInfo>,
    },
    /// Someone asked to cancel the run; the workflow sees an error at its next await.
    CancelRequested {
        /// Optional reason.
        reason: Option<String>,
    },
    /// The workflow returned a value.
    RunCompleted {
        /// The output.
        output: Value,
    },
    /// The workflow returned an error.
    RunFailed {
        /// The error.
        error: ErrorInfo,
    },
    /// The run ended because it was cancelled.
    RunCancelled {
        /// Optional reason.
        reason: Option<String>,
    },
}

impl EventBody {
    /// The snake_case name of the entry, as in the `type` field of its JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::RunStarted { .. } => "run_started",
            EventBody::StepCompleted { .. } => "step_completed",
            EventBody::StepFailed { .. } => "step_failed",
            EventBody::TimerStarted { .. } => "timer_started",
            EventBody::TimerFired { .. } => "timer_fired",
            EventBody::HookCreated { .. } => "hook_created",
            EventBody::HookConflict { .. } => "hook_conflict",
            EventBody::HookReceived { .. } => "hook_received",
            EventBody::HookExpired { .. } => "hook_expired",
            EventBody::HookDisposed { .. } => "hook_disposed",
            EventBody::Now { .. } => "now",
            EventBody::Random { .. } => "random",
            EventBody::Uuid { .. } => "uuid",
            EventBody::StateGet { .. } => "state_get",
            EventBody::StateSet { .. } => "state_set",
            EventBody::StateIncr { .. } => "state_incr",
            EventBody::StateDelete { .. } => "state_delete",
            EventBody::HookSpawned { .. } => "hook_spawned",
            EventBody::SignalSent { .. } => "signal_sent",
            EventBody::SignalWaited { .. } => "signal_waited",
            EventBody::SignalReleased { .. } => "signal_released",
            EventBody::SignalReceived { .. } => "signal_received",
            EventBody::Patched { .. } => "patched",
            EventBody::AttemptFailed { .. } => "attempt_failed",
            EventBody::ChildStarted { .. } => "child_started",
            EventBody::ChildEnded { .. } => "child_ended",
            EventBody::CancelRequested { .. } => "cancel_requested",
            EventBody::RunCompleted { .. } => "run_completed",
            EventBody::RunFailed { .. } => "run_failed",
            EventBody::RunCancelled { .. } => "run_cancelled",
        }
    }

    /// The command index when this entry records a workflow command.
    pub fn command_index(&self) -> Option<CommandIndex> {
        match self {
            EventBody::StepCompleted { cmd, .. }
            | EventBody::StepFailed { cmd, .. }
            | EventBody::TimerStarted { cmd, .. }
            | EventBody::HookCreated { cmd, .. }
            | EventBody::HookConflict { cmd, .. }
            | EventBody::HookDisposed { cmd, .. }
            | EventBody::Now { cmd, .. }
            | EventBody::Random { cmd, .. }
            | EventBody::Uuid { cmd, .. }
            | EventBody::StateGet { cmd, .. }
            | EventBody::StateSet { cmd, .. }
            | EventBody::StateIncr { cmd, .. }
            | EventBody::StateDelete { cmd, .. }
            | EventBody::HookSpawned { cmd, .. }
            | EventBody::SignalSent { cmd, .. }
            | EventBody::SignalWaited { cmd, .. }
            | EventBody::SignalReleased { cmd, .. }
            | EventBody::ChildStarted { cmd, .. } => Some(*cmd),
            _ => None,
        }
    }

    /// Whether this entry ends the run.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            EventBody::RunCompleted { .. }
                | EventBody::RunFailed { .. }
                | EventBody::RunCancelled { .. }
        )
    }
}

/// The lifecycle status of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Created, not yet picked up.
    Pending,
    /// Executing, or waiting for a step to finish.
    Running,
    /// Waiting for the outside world (a hook, a timer).
    Suspended,
    /// Returned a value.
    Completed,
    /// Returned an error.
    Failed,
    /// Cancelled.
    Cancelled,
}

impl RunStatus {
    /// All statuses, in lifecycle order.
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Pending,
        RunStatus::Running,
        RunStatus::Suspended,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Cancelled,
    ];

    /// The lowercase name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Suspended => "suspended",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// Parse a lowercase name.
    pub fn parse(s: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether the run is over.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_json_is_flat_and_tagged() {
        let e = Event {
            seq: 3,
            at_ms: 10,
            body: EventBody::HookReceived {
                hook_cmd: 1,
                payload: serde_json::json!({"a": 1}),
            },
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "hook_received");
        assert_eq!(v["seq"], 3);
        assert_eq!(v["payload"]["a"], 1);
        let back: Event = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn a_patch_marker_is_plain_json_without_a_command_index() {
        let e = Event {
            seq: 2,
            at_ms: 10,
            body: EventBody::Patched {
                change_id: "quote-v2".into(),
                at_cmd: 1,
                after_seq: 1,
            },
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"seq": 2, "at_ms": 10, "type": "patched",
                "change_id": "quote-v2", "at_cmd": 1, "after_seq": 1})
        );
        assert_eq!(serde_json::from_value::<Event>(v).unwrap(), e);
        assert_eq!(e.body.kind(), "patched");
        assert_eq!(e.body.command_index(), None);
    }

    #[test]
    fn status_round_trips() {
        for s in RunStatus::ALL {
            assert_eq!(RunStatus::parse(s.as_str()), Some(s));
        }
        assert!(RunStatus::Cancelled.is_terminal());
        assert!(!RunStatus::Suspended.is_terminal());
    }
}
