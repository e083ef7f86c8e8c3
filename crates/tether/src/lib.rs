//! # Tether: durable workflows as plain async Rust functions
//!
//! A workflow is an `async fn(Ctx, Input) -> Result<Output, WorkflowError>`. Tether journals
//! every step, timer and hook, so a run survives crashes, restarts and deploys, and can wait
//! for days on the outside world. Its speciality is **hooks**: a run pauses on a hook and is
//! resumed, once or many times, by an external system sending payloads to the hook's token.
//!
//! `tether` is the only Tether crate a program depends on. Its parts, by cargo feature:
//!
//! | feature | gives | default |
//! |---|---|---|
//! | `sqlite` | the embedded SQLite store ([`sqlite::SqliteStore`]) and the test kit ([`testing`]) | on |
//! | `postgres` | the PostgreSQL store for clusters ([`postgres::PostgresStore`]) | on |
//! | `server` | [`App`] (the binary's command line), the HTTP API and web UI ([`server`]), the HTTP [`Client`] | on |
//! | `otlp` | `serve --otlp-endpoint`: spans exported over OTLP/HTTP | off |
//!
//! ## Your workflows, your binary
//!
//! ```no_run
//! use tether::prelude::*;
//!
//! async fn greet(ctx: Ctx, name: String) -> Result<Value, WorkflowError> {
//!     let greeting = ctx
//!         .step("greet", name, |name| async move { Ok(format!("hello {name}")) })
//!         .await?;
//!     Ok(json!({ "greeting": greeting }))
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     tether::App::new().workflow("greet", greet).run()
//! }
//! ```
//!
//! The binary then has `serve` (HTTP API, web UI, metrics, webhooks; `--db` SQLite or
//! PostgreSQL), `replay RUN_ID` / `replay --all` (stored runs checked against this binary's
//! code, read-only: run it before a deploy), and the client commands `runs`, `hooks`,
//! `signal`. See `examples/starter/` in the repository.
//!
//! ## Embedded in your own program
//!
//! ```
//! use std::time::Duration;
//! use tether::prelude::*;
//!
//! /// Wait for an approval, or give up after a day.
//! async fn approval(ctx: Ctx, order_id: String) -> Result<Value, WorkflowError> {
//!     let mut hook = ctx
//!         .create_hook::<Value>(HookOptions::new().token(format!("approval:{order_id}")))
//!         .await?;
//!     match race(hook.recv(), ctx.sleep(Duration::from_secs(86_400))).await {
//!         Either::Left(decision) => Ok(decision?),
//!         Either::Right(_) => Ok(json!({ "timed_out": true })),
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile_dir();
//! let store = tether::sqlite::SqliteStore::open(&format!("sqlite://{dir}/tether.db")).await?;
//! let app = App::new().workflow("approval", approval);
//! let engine = app.engine(std::sync::Arc::new(store), EngineConfig::default())?;
//!
//! let run_id = engine.start_run("approval", json!("o-42")).await?;
//! engine.wait_for_hook("approval:o-42", Duration::from_secs(5)).await?;
//! engine.resume_hook("approval:o-42", json!({ "approved": true }), None).await?;
//! let run = engine.wait_for_run(&run_id, Duration::from_secs(5)).await?;
//! assert_eq!(run.output, Some(json!({ "approved": true })));
//! # engine.shutdown().await;
//! # Ok(()) }
//! # fn tempfile_dir() -> String {
//! #     let d = std::env::temp_dir().join(format!("tether-doc-{}", std::process::id()));
//! #     std::fs::create_dir_all(&d).unwrap();
//! #     let _ = std::fs::remove_file(d.join("tether.db"));
//! #     d.display().to_string()
//! # }
//! ```

pub use serde_json;
pub use serde_json::{json, Value};

/// JSON Schemas of hook payloads ([`HookDef::with_schema`]). Derive through this re-export
/// with `#[derive(tether::JsonSchema)] #[schemars(crate = "tether::schemars")]`, or add
/// `schemars = "1"` to your own dependencies and derive `schemars::JsonSchema`.
pub use schemars;
pub use schemars::JsonSchema;

pub use tether_core::{
    define_hook, join, join3, join_all, race, Ctx, Either, ErrorInfo, ErrorSource, Event,
    EventBody, ExecHook, Hook, HookDef, HookEvent, HookExpiry, HookOptions, Next, Patch, Race,
    Recv, RecvOrExpired, Registry, RegistryError, RespondWith, ResumeHook, RetryPolicy, RunStatus,
    SendSignal, Sleep, SpawnHook, SpawnOptions, StepError, StepResultExt, TypedResumeError,
    WaitFor, WaitForTimeout, Webhook, WebhookBody, WebhookOptions, WebhookRequest, WebhookResponse,
    WorkflowError, WorkflowResultExt, DEFAULT_TASK_QUEUE,
};
pub use tether_core::{ChildHandle, ChildOptions, ChildResult, SecretName, WebhookVerifier};
pub use tether_engine::{Clock, Engine, EngineConfig, EngineError};

#[cfg(feature = "server")]
pub use tether_app::App;
#[cfg(feature = "server")]
pub use tether_client::{Client, ClientError, LinkOptions};

/// Storage: the contract every backend implements, and what it reads back.
pub mod store {
    pub use tether_store::{HookRecord, RunCursor, RunFilter, RunRecord, Store, StoreError};
}

/// The embedded SQLite store (one process per database file).
#[cfg(feature = "sqlite")]
pub mod sqlite {
    pub use tether_store_sqlite::SqliteStore;
}

/// The test kit: workflows run in-process on a temporary SQLite store with a virtual clock
/// (start runs, resume hooks, send signals, advance time by a day in microseconds, prove a run
/// replays, assert on output and journal). See [`testing::TestEnv`].
#[cfg(feature = "sqlite")]
pub mod testing {
    pub use tether_testing::*;
}

/// The PostgreSQL store: any number of processes on one database form a cluster.
#[cfg(feature = "postgres")]
pub mod postgres {
    pub use tether_store_postgres::{PostgresOptions, PostgresStore, DEFAULT_POOL_SIZE};
}

/// The HTTP API, web UI, metrics and webhook routes, for programs that serve them from their
/// own `main` (see [`App::router`]).
#[cfg(feature = "server")]
pub mod server {
    pub use axum::Router;
    pub use tether_server::{router, serve, ApiError, ServerOptions, WebhookSecrets};
}

/// Durable cron schedules: [`Engine::create_schedule`] and the rest (docs/schedules.md).
pub mod schedules {
    pub use tether_engine::schedules::{
        valid_schedule_id, CatchUp, CreatedSchedule, Overlap, ScheduleRecord, ScheduleSpec,
        MAX_SCHEDULE_ID_LEN,
    };
}

/// Checking stored runs against the code (what `replay` runs).
pub mod replay {
    pub use tether_engine::replay::{check_run, CheckError, RunCheck, Verdict};
}

/// The pieces of the command line, for binaries that add commands of their own (as
/// `tether bench` does). Not needed by [`App::run`] users.
#[cfg(feature = "server")]
#[doc(hidden)]
pub mod cli {
    pub use tether_app::{
        block_on, AppCommand, ClientOpts, CommandError, LogFormat, TelemetryOptions,
    };
}

/// Everything a workflow file usually needs: `use tether::prelude::*;`.
pub mod prelude {
    pub use serde_json::{json, Value};
    pub use tether_core::{
        define_hook, join, join_all, race, ChildOptions, Ctx, Either, Hook, HookDef, HookEvent,
        HookOptions, Registry, RetryPolicy, SpawnOptions, StepError, StepResultExt, WebhookOptions,
        WebhookRequest, WebhookResponse, WebhookVerifier, WorkflowError, WorkflowResultExt,
    };
    pub use tether_engine::{Engine, EngineConfig};

    #[cfg(feature = "server")]
    pub use tether_app::App;
}

/// The seeds' idioms (Vercel Workflow's `createHook`, HotMesh's `workflow.hook`) beside their
/// Tether form: `docs/seed-idioms.md`, every snippet compiled.
#[doc = include_str!("../../../docs/seed-idioms.md")]
pub mod seed_idioms {}

/// The README's Rust snippets, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

/// `docs/versioning.md`: changing a workflow under waiting runs with `ctx.patched`, the whole
/// cycle compiled and run.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/versioning.md")]
pub struct VersioningDoctests;

/// `docs/child-runs.md`: starting child runs and waiting for them, compiled.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/child-runs.md")]
pub struct ChildRunsDoctests;

/// `docs/hooks/schemas.md`: a hook publishing its payload's JSON Schema, compiled.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/hooks/schemas.md")]
pub struct HookSchemaDoctests;

/// `docs/hooks/verified-webhooks.md`: a webhook verified with the GitHub preset, compiled.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/hooks/verified-webhooks.md")]
pub struct VerifiedWebhookDoctests;

/// `docs/hooks/resume-links.md`: an approval e-mail with "approve" and "reject" links,
/// compiled.
#[cfg(all(doctest, feature = "server"))]
#[doc = include_str!("../../../docs/hooks/resume-links.md")]
pub struct ResumeLinkDoctests;
