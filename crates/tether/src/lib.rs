//! # Tether: durable workflows as plain async Rust functions
//!
//! A workflow is an `async fn(Ctx, Input) -> Result<Output, WorkflowError>`. Tether journals
//! every step, timer and hook, so a run survives crashes, restarts and deploys, and can wait
//! for days on the outside world. Its speciality is **hooks**: a run pauses on a hook and is
//! resumed, once or many times, by an external system sending payloads to the hook's token.
//!
//! This crate gathers the pieces:
//! - the workflow API ([`Ctx`], [`Hook`], [`define_hook`], [`race`], ...) from `tether-core`;
//! - the runtime ([`Engine`]) from `tether-engine`;
//! - the embedded SQLite store ([`SqliteStore`]);
//! - the HTTP [`Client`] for talking to a `tether dev` server.
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
//!     match race(hook.next(), ctx.sleep(Duration::from_secs(86_400))).await {
//!         Either::Left(decision) => Ok(decision?),
//!         Either::Right(_) => Ok(json!({ "timed_out": true })),
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile_dir();
//! let store = SqliteStore::open(&format!("sqlite://{dir}/tether.db")).await?;
//! let mut registry = Registry::new();
//! registry.workflow("approval", approval);
//! let engine = Engine::start(std::sync::Arc::new(store), registry, EngineConfig::default());
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

pub use tether_client::Client;
pub use tether_core::{
    define_hook, join, join3, join_all, race, Ctx, Either, ErrorInfo, Event, EventBody, Hook,
    HookDef, HookOptions, Registry, RetryPolicy, RunStatus, StepError, WorkflowError,
};
pub use tether_engine::{Engine, EngineConfig, EngineError};
pub use tether_store::{RunFilter, RunRecord, Store};
pub use tether_store_sqlite::SqliteStore;

/// Everything a workflow file usually needs.
pub mod prelude {
    pub use serde_json::{json, Value};
    pub use tether_core::{
        define_hook, join, race, Ctx, Either, Hook, HookDef, HookOptions, Registry, RetryPolicy,
        StepError, WorkflowError,
    };
    pub use tether_engine::{Engine, EngineConfig};
    pub use tether_store_sqlite::SqliteStore;
}
