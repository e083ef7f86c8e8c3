//! Tether's deterministic core: the journal, replay, and the API a workflow is written against.
//!
//! This crate does no I/O. [`RunMachine`] takes journal entries in and gives out the new
//! command records to append, the steps to run and the timers to fire; the engine
//! (`tether-engine`) does the writing, the running and the waiting. Everything here can be
//! tested in memory, which is how each primitive is tested three ways: fresh, replayed to
//! completion, and replayed up to a suspension.
//!
//! A workflow is a plain async function:
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use tether_core::{Ctx, HookOptions, Registry, WorkflowError};
//!
//! #[derive(Deserialize)]
//! struct Input { order_id: String }
//! #[derive(Serialize, Deserialize)]
//! struct Decision { approved: bool }
//!
//! async fn approval(ctx: Ctx, input: Input) -> Result<Decision, WorkflowError> {
//!     let hook = ctx
//!         .create_hook::<Decision>(HookOptions::new().metadata(serde_json::json!({"order": input.order_id})))
//!         .await?;
//!     // publish hook.token() somewhere, then wait for the decision:
//!     hook.await
//! }
//!
//! let mut registry = Registry::new();
//! registry.workflow("approval", approval);
//! assert_eq!(registry.workflow_names(), vec!["approval".to_string()]);
//! ```

pub mod children;
pub mod ctx;
pub mod env;
pub mod error;
pub mod event;
pub mod hook;
mod hook_options;
pub mod machine;
pub mod patch;
pub mod race;
mod record;
pub mod redact;
mod shared;
mod state;
pub mod step;
pub mod threads;
pub mod time_fmt;
pub mod timer;
pub mod webhook;
pub mod webhook_verify;
pub mod workflow;

pub use children::{child_run_id, ChildHandle, ChildOptions, ChildResult};
pub use ctx::Ctx;
pub use env::{Environment, TestEnvironment};
pub use error::{
    ErrorSource, ReplayError, StepError, StepResultExt, WorkflowError, WorkflowResultExt,
};
pub use event::{CommandIndex, ErrorInfo, Event, EventBody, RunStatus, ThreadInfo};
pub use hook::{
    define_hook, CreateHook, Hook, HookDef, HookEvent, HookExpiry, HookOptions, Next,
    PayloadValidator, Recv, RecvOrExpired, ResumeHook, TypedResumeError,
};
pub use machine::{Deadline, DueTimer, Progress, RunMachine};
pub use patch::Patch;
pub use race::{join, join3, join_all, race, Either, Race};
pub use redact::{redact_token, RedactedToken};
pub use step::{RetryPolicy, StepBody, StepFuture, StepTask};
pub use threads::{
    check_target, ExecHook, SendSignal, SpawnHook, SpawnOptions, WaitFor, WaitForTimeout,
    DEFAULT_TASK_QUEUE, ERROR_ENVELOPE,
};
pub use timer::Sleep;
pub use webhook::{
    RespondWith, Webhook, WebhookBody, WebhookOptions, WebhookReply, WebhookRequest,
    WebhookResponse, HOOK_KIND_WEBHOOK, RESPOND_WITH_STEP, WEBHOOK_PATH,
};
pub use webhook_verify::{SecretName, WebhookVerifier, DEFAULT_TOLERANCE_SECS};
pub use workflow::{ErasedWorkflow, Registry, RegistryError};
