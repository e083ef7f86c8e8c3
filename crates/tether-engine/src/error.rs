//! Errors the engine returns to its callers (the HTTP server, the CLI, embedding programs).
//! Each says what happened and, where it helps, what to do.

use tether_core::RunStatus;
use tether_store::{OpRejected, StoreError};

/// What went wrong with a request to the engine.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// No workflow is registered under that name.
    #[error("workflow not found: {name:?} is not registered on this server (known: {known})")]
    WorkflowNotFound {
        /// The name asked for.
        name: String,
        /// The registered names, comma-separated.
        known: String,
    },
    /// The input does not fit the workflow's input type.
    #[error("invalid input for workflow {workflow:?}: {message}")]
    InvalidInput {
        /// The workflow.
        workflow: String,
        /// Why.
        message: String,
    },
    /// No such run.
    #[error("run not found: {run_id}")]
    RunNotFound {
        /// The run id asked for.
        run_id: String,
    },
    /// The run has finished.
    #[error("run {run_id} has already finished ({status})")]
    RunFinished {
        /// The run.
        run_id: String,
        /// Its terminal status.
        status: RunStatus,
    },
    /// No active hook holds the token (never created, disposed, or its run ended).
    #[error("hook not found: no active hook holds this token")]
    HookNotFound,
    /// The hook that held the token expired (`HookOptions::expires_in`): its run takes no more
    /// payloads on it; nothing was stored. Start a new run (or ask the workflow for a new
    /// token) instead of retrying.
    #[error(
        "hook expired: the hook holding this token expired and its run takes no more payloads; \
         do not retry, start a new run or ask for a new token"
    )]
    HookExpired,
    /// The token's hook has ended and its run keeps the token reserved
    /// (`HookOptions::reserve_for`) until `until_ms`; nothing was stored.
    #[error(
        "token reserved: this token's hook has ended and its run keeps the token reserved \
         until {until} (no other run may take it before); do not retry before then",
        until = tether_core::time_fmt::rfc3339_s(*until_ms)
    )]
    TokenReserved {
        /// End of the reservation, ms since the Unix epoch.
        until_ms: u64,
    },
    /// The payload failed the hook definition's validation; nothing was stored.
    #[error("{message}")]
    InvalidPayload {
        /// The validation's reason.
        message: String,
    },
    /// The `Idempotency-Key` was first used for this token with another payload; nothing was
    /// stored. A retry must send the same payload; a new payload needs a new key.
    #[error(
        "idempotency key reused: this key was first used with another payload; \
         use a new key for a new payload"
    )]
    IdempotencyKeyReused,
    /// A run with the chosen id exists already, started with another workflow or input;
    /// nothing was stored. Choose another id, or send the first start's workflow and input to
    /// get that run.
    #[error(
        "run {run_id} already exists with another workflow or input; choose another run id \
         (or Idempotency-Key), or repeat the first start exactly to get that run"
    )]
    RunExists {
        /// The run id.
        run_id: String,
    },
    /// The payload or input is larger than the configured limit; nothing was stored.
    #[error("payload too large: {size} bytes, the limit is {limit} bytes")]
    PayloadTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The hook was created from a definition this server does not know, so its payloads
    /// cannot be validated. Register the definition on the worker.
    #[error("hook definition {name:?} is not registered on this server; payload refused")]
    HookDefinitionMissing {
        /// The definition name.
        name: String,
    },
    /// The schedule is not valid (id, cron expression, time zone); nothing was stored. The
    /// message says what to fix.
    #[error("invalid schedule: {message}")]
    InvalidSchedule {
        /// What is wrong and how to fix it.
        message: String,
    },
    /// No such schedule.
    #[error("schedule not found: {id}")]
    ScheduleNotFound {
        /// The schedule id asked for.
        id: String,
    },
    /// A schedule with this id exists already, with another workflow, expression, zone,
    /// input or policy; nothing was stored. Delete it first, or choose another id.
    #[error(
        "schedule {id} already exists with other settings; delete it first or choose another          id (repeating the first create exactly answers with that schedule)"
    )]
    ScheduleExists {
        /// The schedule id.
        id: String,
    },
    /// The storage backend failed; nothing of the request was kept. Retry later.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The engine is shutting down.
    #[error("the engine is shutting down; retry against a running server")]
    ShuttingDown,
    /// A hook thread may not target the run's own workflow on the default task queue (it would
    /// loop). The same code as inside a workflow (`hook_self_target`).
    #[error("{message}")]
    HookSelfTarget {
        /// What was refused and what to do instead.
        message: String,
    },
}

impl EngineError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::WorkflowNotFound { .. } => "workflow_not_found",
            EngineError::InvalidInput { .. } => "invalid_input",
            EngineError::RunNotFound { .. } => "run_not_found",
            EngineError::RunFinished { .. } => "run_finished",
            EngineError::HookNotFound => "hook_not_found",
            EngineError::HookExpired => "hook_expired",
            EngineError::TokenReserved { .. } => "token_reserved",
            EngineError::InvalidPayload { .. } => "invalid_payload",
            EngineError::IdempotencyKeyReused => "idempotency_key_reused",
            EngineError::RunExists { .. } => "run_exists",
            EngineError::PayloadTooLarge { .. } => "payload_too_large",
            EngineError::HookDefinitionMissing { .. } => "hook_definition_missing",
            EngineError::Store(StoreError::Full(_)) => "storage_full",
            EngineError::Store(StoreError::ReadOnly(_)) => "storage_read_only",
            EngineError::Store(_) => "storage_unavailable",
            EngineError::ShuttingDown => "shutting_down",
            EngineError::HookSelfTarget { .. } => "hook_self_target",
            EngineError::InvalidSchedule { .. } => "invalid_schedule",
            EngineError::ScheduleNotFound { .. } => "schedule_not_found",
            EngineError::ScheduleExists { .. } => "schedule_exists",
        }
    }
}

impl From<OpRejected> for EngineError {
    fn from(r: OpRejected) -> Self {
        match r {
            OpRejected::RunNotFound { run_id } => EngineError::RunNotFound { run_id },
            OpRejected::RunFinished { run_id, status } => {
                EngineError::RunFinished { run_id, status }
            }
            OpRejected::HookNotFound { .. } => EngineError::HookNotFound,
            OpRejected::HookExpired { .. } => EngineError::HookExpired,
            OpRejected::TokenReserved { until_ms, .. } => EngineError::TokenReserved { until_ms },
            OpRejected::IdempotencyKeyReused { .. } => EngineError::IdempotencyKeyReused,
            OpRejected::RunExists { run_id } => EngineError::RunExists { run_id },
            OpRejected::ScheduleExists { id } => EngineError::ScheduleExists { id },
            OpRejected::ScheduleNotFound { id } | OpRejected::ScheduleMoved { id } => {
                EngineError::ScheduleNotFound { id }
            }
            // Leases are the engine's own business; a caller never meets them.
            other @ (OpRejected::Fenced { .. }
            | OpRejected::Owned { .. }
            | OpRejected::NotServed { .. }
            | OpRejected::QueueFull { .. }
            | OpRejected::QueueRate { .. }) => {
                EngineError::Store(StoreError::unavailable(other.to_string()))
            }
        }
    }
}
