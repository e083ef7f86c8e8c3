//! The JSON shapes of the API's answers.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A run as the server shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The run id.
    pub run_id: String,
    /// The workflow it runs.
    pub workflow: String,
    /// `pending`, `running`, `suspended`, `completed`, `failed` or `cancelled`.
    pub status: String,
    /// The input it was started with.
    pub input: Value,
    /// The output, once completed.
    pub output: Option<Value>,
    /// The error, once failed or cancelled (or while blocked by a non-determinism error).
    pub error: Option<ErrorBody>,
    /// Creation time, RFC 3339 (UTC, milliseconds).
    pub created_at: String,
    /// Last update time, RFC 3339 (UTC, milliseconds).
    pub updated_at: String,
    /// The run that started it as a child run, if it is one (absent from older servers).
    #[serde(default)]
    pub parent_run_id: Option<String>,
    /// The schedule whose tick started it, if one did (absent from older servers).
    #[serde(default)]
    pub schedule_id: Option<String>,
    /// The task queue it is on (absent from older servers).
    #[serde(default)]
    pub queue: Option<String>,
}

/// How [`crate::Client::start_run_with`] starts a run. `Default`: a new id, the default queue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StartOptions {
    /// A run id of the caller's choosing: a retry with the same workflow and input answers
    /// with the run the first call made.
    pub run_id: Option<String>,
    /// An idempotency key (sent as `Idempotency-Key`): the run's id is derived from it.
    pub idempotency_key: Option<String>,
    /// The task queue to run it on (default: `default`); only nodes serving it run it.
    pub queue: Option<String>,
}

impl RunInfo {
    /// Whether the run has ended (`completed`, `failed` or `cancelled`).
    pub fn is_terminal(&self) -> bool {
        matches!(self.status.as_str(), "completed" | "failed" | "cancelled")
    }
}

/// An active hook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HookInfo {
    /// The token that resumes it (a credential when generated).
    pub token: String,
    /// `hook` (or `webhook`).
    pub kind: String,
    /// The metadata the workflow attached to it.
    pub metadata: Value,
    /// Creation time, RFC 3339 (UTC, milliseconds).
    pub created_at: String,
    /// The run holding it: set by [`crate::Client::get_hook`], `None` in a run's hook list.
    #[serde(default)]
    pub run_id: Option<String>,
}

/// An error as the API reports it, in an error answer or in a run's `error` field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable machine-readable code.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

/// `{"error": {...}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorEnvelope {
    pub error: ErrorBody,
}

/// What a resume link is made with besides its payload ([`crate::Client::create_resume_link`]).
///
/// ```
/// use std::time::Duration;
/// let options = tether_client::LinkOptions::new()
///     .expires_in(Duration::from_secs(3600))
///     .label("Approve order o-1?")
///     .set("decision");
/// assert_eq!(options.set.as_deref(), Some("decision"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkOptions {
    /// How long the link works (default a day; at most the server's idempotency window).
    pub expires_in: Option<Duration>,
    /// What the confirmation page shows above the payload.
    pub label: Option<String>,
    /// A name shared by links answering one question (an "approve" and a "reject" link): the
    /// first of the set used wins, the others then answer `410 link_used`.
    pub set: Option<String>,
}

impl LinkOptions {
    /// No expiry (the server's default), label or set.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long the link works.
    pub fn expires_in(mut self, d: Duration) -> Self {
        self.expires_in = Some(d);
        self
    }

    /// What the confirmation page shows above the payload.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// The set the link belongs to (the first of a set used wins).
    pub fn set(mut self, set: impl Into<String>) -> Self {
        self.set = Some(set.into());
        self
    }
}

/// A resume link made by [`crate::Client::create_resume_link`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeLink {
    /// The link: a confirmation page on `GET`, the resume on `POST` (once). A credential.
    pub url: String,
    /// When it stops working, ms since the Unix epoch.
    pub expires_at_ms: u64,
}

/// `{"run_id": ...}`.
#[derive(Debug, Deserialize)]
pub(crate) struct RunId {
    pub run_id: String,
}

/// `{"runs": [...]}`.
#[derive(Debug, Deserialize)]
pub(crate) struct RunsList {
    pub runs: Vec<RunInfo>,
}

/// `{"children": [...]}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ChildrenList {
    pub children: Vec<RunInfo>,
}

/// `[hook, ...]`.
#[derive(Debug, Deserialize)]
pub(crate) struct HooksList(pub Vec<HookInfo>);

/// `{"workflows": [...]}`.
#[derive(Debug, Deserialize)]
pub(crate) struct WorkflowsList {
    pub workflows: Vec<String>,
}

/// A durable cron schedule as the server shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleInfo {
    /// The schedule id.
    pub id: String,
    /// The workflow each tick starts.
    pub workflow: String,
    /// The cron expression (5 fields, or 6 with seconds first).
    pub cron: String,
    /// The IANA time zone it is read in.
    pub timezone: String,
    /// The input of its runs.
    pub input: Value,
    /// `skip` or `allow`: a tick while the previous run goes on.
    pub overlap: String,
    /// `one` or `skip`: ticks missed while no node was up.
    pub catch_up: String,
    /// Paused: no tick fires.
    pub paused: bool,
    /// The next tick, RFC 3339 (UTC, milliseconds); `None` when there is no more.
    pub next_tick: Option<String>,
    /// The next tick, ms since the Unix epoch.
    pub next_tick_ms: Option<u64>,
    /// The run of its latest tick.
    pub last_run_id: Option<String>,
    /// Creation time, RFC 3339 (UTC, milliseconds).
    pub created_at: String,
    /// Last change, RFC 3339 (UTC, milliseconds).
    pub updated_at: String,
}

/// What [`crate::Client::create_schedule`] sends: `POST /v1/schedules`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NewSchedule {
    /// The schedule id (1 to 128 letters, digits and `-_.:`).
    pub id: String,
    /// The registered workflow each tick starts.
    pub workflow: String,
    /// The cron expression: 5 fields, or 6 with seconds first.
    pub cron: String,
    /// The IANA time zone (the server's default: `UTC`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// The input of every run (the server's default: `{}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// `skip` (the server's default) or `allow`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlap: Option<String>,
    /// `one` (the server's default) or `skip`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catch_up: Option<String>,
}

/// `{"schedules": [...]}`.
#[derive(Debug, Deserialize)]
pub(crate) struct SchedulesList {
    pub schedules: Vec<ScheduleInfo>,
}
