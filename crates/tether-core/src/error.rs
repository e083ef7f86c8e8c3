//! Errors of the workflow world: what a workflow sees ([`WorkflowError`]), what a step returns
//! ([`StepError`]) and what replay reports when code and journal disagree ([`ReplayError`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::event::{CommandIndex, ErrorInfo};

/// Where an error came from, kept for [`std::error::Error::source`] (shared, so the errors
/// stay cheap to clone).
pub type ErrorSource = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// An error inside a workflow. Workflow functions return `Result<T, WorkflowError>`.
///
/// `?` converts the errors a workflow meets itself ([`StepError`] of a step it ran inline,
/// `serde_json::Error`, `std::io::Error`, `std::fmt::Error`, a `String`); any other
/// `std::error::Error` converts with [`WorkflowResultExt::or_fail`], which keeps it as the
/// [`source`](std::error::Error::source).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum WorkflowError {
    /// The run was cancelled; every await after the cancellation returns this.
    Cancelled {
        /// The reason given with the cancellation, if any.
        reason: Option<String>,
    },
    /// `create_hook` asked for a token that another active hook holds.
    HookConflict {
        /// The contested token.
        token: String,
        /// The run whose hook holds it.
        holder_run: String,
    },
    /// The hook expired ([`crate::HookOptions::expires_in`]) before a payload came: what
    /// [`crate::Hook::recv`] (and awaiting a hook) returns then.
    HookExpired {
        /// The hook's token.
        token: String,
    },
    /// A step failed for good (fatal error, or its retries ran out).
    StepFailed {
        /// Step name.
        name: String,
        /// The step's last error.
        message: String,
    },
    /// A payload, step result or input could not be decoded into the expected type.
    Decode {
        /// What could not be decoded, and why.
        message: String,
    },
    /// A child run ([`crate::Ctx::call`], [`crate::ChildHandle`]) failed or was cancelled.
    ChildFailed {
        /// The child's run id.
        run_id: String,
        /// The child's workflow.
        workflow: String,
        /// The child's error as it journaled it (code `cancelled` for a cancelled child).
        error: ErrorInfo,
    },
    /// Any other failure, raised by workflow code.
    Failed {
        /// A stable code (`workflow_error` unless chosen).
        code: String,
        /// What went wrong.
        message: String,
        /// The error it came from, if any (not journaled: only the code and message are).
        source: Option<ErrorSource>,
    },
}

impl PartialEq for WorkflowError {
    /// Equal when the code and the message are (the source is not compared).
    fn eq(&self, other: &Self) -> bool {
        self.code() == other.code() && self.to_string() == other.to_string()
    }
}

impl WorkflowError {
    /// A failure with a message (code `workflow_error`).
    pub fn msg(message: impl Into<String>) -> Self {
        WorkflowError::with_code("workflow_error", message)
    }

    /// A failure with a code of your own and a message.
    pub fn with_code(code: impl Into<String>, message: impl Into<String>) -> Self {
        WorkflowError::Failed {
            code: code.into(),
            message: message.into(),
            source: None,
        }
    }

    /// A failure caused by `source`: code `code`, message the source's, source kept.
    pub fn from_source(
        code: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        WorkflowError::Failed {
            code: code.into(),
            message: source.to_string(),
            source: Some(Arc::new(source)),
        }
    }

    /// Whether this is the cancellation error.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, WorkflowError::Cancelled { .. })
    }

    /// Whether this is the error of a hook that expired ([`WorkflowError::HookExpired`]).
    pub fn is_hook_expired(&self) -> bool {
        matches!(self, WorkflowError::HookExpired { .. })
    }

    /// The stable code of the error.
    pub fn code(&self) -> &str {
        match self {
            WorkflowError::Cancelled { .. } => "cancelled",
            WorkflowError::HookConflict { .. } => "hook_conflict",
            WorkflowError::HookExpired { .. } => "hook_expired",
            WorkflowError::StepFailed { .. } => "step_failed",
            WorkflowError::Decode { .. } => "decode_error",
            WorkflowError::ChildFailed { .. } => "child_failed",
            WorkflowError::Failed { code, .. } => code,
        }
    }

    /// The error as journaled and shown over the API.
    pub fn to_info(&self) -> ErrorInfo {
        ErrorInfo::new(self.code(), self.to_string())
    }
}

impl fmt::Display for WorkflowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkflowError::Cancelled { reason: Some(r) } => write!(f, "run cancelled: {r}"),
            WorkflowError::Cancelled { reason: None } => write!(f, "run cancelled"),
            WorkflowError::HookConflict { token, holder_run } => write!(
                f,
                "hook token {token:?} is already in use by another active hook (run {holder_run})"
            ),
            WorkflowError::HookExpired { token } => write!(
                f,
                "hook {} expired before a payload came",
                crate::redact_token(token)
            ),
            WorkflowError::StepFailed { name, message } => {
                write!(f, "step {name:?} failed: {message}")
            }
            WorkflowError::Decode { message } => write!(f, "could not decode: {message}"),
            WorkflowError::ChildFailed {
                run_id,
                workflow,
                error,
            } => write!(f, "child run {run_id} ({workflow}) failed: {error}"),
            WorkflowError::Failed { message, .. } => f.write_str(message),
        }
    }
}

impl std::error::Error for WorkflowError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WorkflowError::Failed {
                source: Some(s), ..
            } => Some(s.as_ref() as &(dyn std::error::Error + 'static)),
            _ => None,
        }
    }
}

impl From<serde_json::Error> for WorkflowError {
    fn from(e: serde_json::Error) -> Self {
        WorkflowError::Decode {
            message: e.to_string(),
        }
    }
}

impl From<std::io::Error> for WorkflowError {
    fn from(e: std::io::Error) -> Self {
        WorkflowError::from_source("io_error", e)
    }
}

impl From<fmt::Error> for WorkflowError {
    fn from(e: fmt::Error) -> Self {
        WorkflowError::from_source("workflow_error", e)
    }
}

impl From<String> for WorkflowError {
    fn from(message: String) -> Self {
        WorkflowError::msg(message)
    }
}

impl From<&str> for WorkflowError {
    fn from(message: &str) -> Self {
        WorkflowError::msg(message)
    }
}

/// `?` for any error in workflow code: `parse(x).or_fail()?` (code `workflow_error`) or
/// `.or_fail_with("bad_order")?`; the error is kept as the source.
pub trait WorkflowResultExt<T> {
    /// Fail the workflow with code `workflow_error` and this error as the source.
    fn or_fail(self) -> Result<T, WorkflowError>;
    /// Fail the workflow with `code` and this error as the source.
    fn or_fail_with(self, code: &str) -> Result<T, WorkflowError>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> WorkflowResultExt<T> for Result<T, E> {
    fn or_fail(self) -> Result<T, WorkflowError> {
        self.or_fail_with("workflow_error")
    }

    fn or_fail_with(self, code: &str) -> Result<T, WorkflowError> {
        self.map_err(|e| WorkflowError::from_source(code, e))
    }
}

/// The error a step body returns: retryable (the step runs again by its retry policy) or
/// fatal ([`StepError::fatal`]: no more attempts).
///
/// `?` converts `serde_json::Error`, `std::io::Error`, `String` and `&str` into a retryable
/// error; any other `std::error::Error` converts with [`StepResultExt::retryable`] or
/// [`StepResultExt::fatal`], which say which it is and keep it as the
/// [`source`](std::error::Error::source).
#[derive(Clone, Debug)]
pub struct StepError {
    message: String,
    fatal: bool,
    retry_after: Option<Duration>,
    source: Option<ErrorSource>,
}

impl PartialEq for StepError {
    /// Equal when the message, the fatality and the requested delay are (not the source).
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message
            && self.fatal == other.fatal
            && self.retry_after == other.retry_after
    }
}

impl StepError {
    /// A retryable error: the step runs again according to its retry policy.
    pub fn retryable(message: impl Into<String>) -> Self {
        StepError {
            message: message.into(),
            fatal: false,
            retry_after: None,
            source: None,
        }
    }

    /// A fatal error: no more attempts; the workflow sees [`WorkflowError::StepFailed`].
    pub fn fatal(message: impl Into<String>) -> Self {
        StepError {
            fatal: true,
            ..StepError::retryable(message)
        }
    }

    /// A retryable error caused by `source` (its message, source kept).
    pub fn retryable_from(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        StepError {
            message: source.to_string(),
            fatal: false,
            retry_after: None,
            source: Some(Arc::new(source)),
        }
    }

    /// A fatal error caused by `source` (its message, source kept).
    pub fn fatal_from(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        StepError {
            fatal: true,
            ..StepError::retryable_from(source)
        }
    }

    /// Ask for the next attempt no sooner than `delay` (overrides the policy's back-off).
    pub fn retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether retries stop here.
    pub fn is_fatal(&self) -> bool {
        self.fatal
    }

    /// The delay asked for before the next attempt, if any.
    pub fn requested_delay(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StepError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|s| s.as_ref() as &(dyn std::error::Error + 'static))
    }
}

impl From<serde_json::Error> for StepError {
    fn from(e: serde_json::Error) -> Self {
        StepError::retryable_from(e)
    }
}

impl From<std::io::Error> for StepError {
    fn from(e: std::io::Error) -> Self {
        StepError::retryable_from(e)
    }
}

impl From<String> for StepError {
    fn from(message: String) -> Self {
        StepError::retryable(message)
    }
}

impl From<&str> for StepError {
    fn from(message: &str) -> Self {
        StepError::retryable(message)
    }
}

/// `?` for any error in a step body, saying whether to try again:
/// `client.get(url).send().await.retryable()?` or `.fatal()?`. The error is kept as the
/// source.
pub trait StepResultExt<T> {
    /// A failed attempt: the step runs again by its retry policy.
    fn retryable(self) -> Result<T, StepError>;
    /// A failure no attempt will fix: the step fails at once.
    fn fatal(self) -> Result<T, StepError>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> StepResultExt<T> for Result<T, E> {
    fn retryable(self) -> Result<T, StepError> {
        self.map_err(StepError::retryable_from)
    }

    fn fatal(self) -> Result<T, StepError> {
        self.map_err(StepError::fatal_from)
    }
}

/// What to do about a non-determinism error (part of its message).
pub const NONDETERMINISM_HINT: &str = "the workflow's code changed in a way this run's journal \
contradicts; nothing was written to the run: deploy code that issues the same commands up to \
this point (add new commands after it, or under a new workflow name), or cancel the run";

/// Replay found that the code and the journal disagree. The run is blocked, not corrupted:
/// nothing is written to its journal, and deploying code that matches lets it continue.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// The code issued a different command than the journal recorded at that position.
    #[error(
        "non-determinism at command #{position} (journal entry {seq}): the journal recorded \
         {recorded}, but the code now issues {issued}; {hint}",
        hint = NONDETERMINISM_HINT
    )]
    Nondeterminism {
        /// Command index where they differ.
        position: CommandIndex,
        /// Journal position (`seq`) of the record at that command index.
        seq: u64,
        /// What the journal recorded there.
        recorded: String,
        /// What the code issued.
        issued: String,
    },
    /// The journal holds an entry the code never asked for (e.g. a payload for a hook the code
    /// no longer creates, or a command after the point where the code now returns).
    #[error("non-determinism at journal entry {seq}: {message}; {hint}", hint = NONDETERMINISM_HINT)]
    Unexpected {
        /// Journal position of the entry.
        seq: u64,
        /// What is wrong.
        message: String,
    },
    /// The journal cannot be read as a run (missing `RunStarted`, unknown workflow, ...).
    #[error("journal unusable: {0}")]
    Corrupt(String),
}

impl ReplayError {
    /// The error as stored on a blocked run (code `nondeterminism`).
    pub fn to_info(&self) -> ErrorInfo {
        let code = match self {
            ReplayError::Corrupt(_) => "corrupt_journal",
            _ => "nondeterminism",
        };
        ErrorInfo::new(code, self.to_string())
    }
}

/// Longest key, signal id or name a workflow may use.
pub const MAX_NAME_LEN: usize = 512;

/// Check a key, signal id or target name given by workflow code: not empty, at most
/// [`MAX_NAME_LEN`] bytes, no NUL character (no store can hold one). Checked before any command
/// is issued, so a refusal is the same on replay.
pub fn check_name(what: &str, name: &str) -> Result<(), WorkflowError> {
    let problem = if name.is_empty() {
        format!("{what} may not be empty")
    } else if name.len() > MAX_NAME_LEN {
        format!(
            "{what} may be at most {MAX_NAME_LEN} bytes (this one has {})",
            name.len()
        )
    } else if name.contains('\0') {
        format!("{what} may not contain a NUL character")
    } else {
        return Ok(());
    };
    Err(WorkflowError::with_code("invalid_name", problem))
}
