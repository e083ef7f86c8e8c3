//! Tether's runtime: keeps runs moving on top of a [`tether_store::Store`].
//!
//! - **Group commit** (`writer.rs`): one task batches every waiting write into one store
//!   transaction, then hands committed journal entries to the live runs in commit order.
//! - **Live runs** (`actor/`, the cache in `live_runs.rs`, fed by `delivery.rs`): each run in
//!   memory is a task owning its [`tether_core::RunMachine`]; a hook payload is fed straight into the suspended workflow,
//!   without replaying history. The cache is bounded ([`EngineConfig::max_live_runs`]); an
//!   evicted or crashed run is rebuilt by replay, once.
//! - **Steps** (`step_runner.rs`) run on tokio with their retry policy; their result is one
//!   journal write.
//! - **Timers** are fired by their live run; a poller (`background.rs`) revives runs whose
//!   timer is due or whose work was interrupted (after a restart).
//! - **Manual webhook responses** (`responses.rs`) reach the waiting HTTP request whichever
//!   node runs the workflow.
//! - **Time** comes from the engine's [`Clock`] ([`EngineConfig::clock`]): the system clock,
//!   or a manual one for tests, with [`Engine::settle`] to wait until nothing is in flight.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn tether_store::Store>) -> Result<(), tether_engine::EngineError> {
//! use tether_core::{Ctx, Registry, WorkflowError};
//! use tether_engine::{Engine, EngineConfig};
//!
//! async fn hello(ctx: Ctx, name: String) -> Result<String, WorkflowError> {
//!     let greeting: String = ctx
//!         .step("greet", name, |name| async move { Ok(format!("hello {name}")) })
//!         .await?;
//!     Ok(greeting)
//! }
//!
//! let mut registry = Registry::new();
//! registry.workflow("hello", hello);
//! let engine = Engine::start(store, registry, EngineConfig::default());
//! let run_id = engine.start_run("hello", serde_json::json!("world")).await?;
//! let run = engine.wait_for_run(&run_id, std::time::Duration::from_secs(5)).await?;
//! assert_eq!(run.output, Some(serde_json::json!("hello world")));
//! # Ok(()) }
//! ```

mod activity;
mod actor;
mod background;
mod changes;
pub mod clock;
pub mod config;
mod delivery;
mod engine;
pub mod error;
mod group_pause;
mod hook_cache;
mod lifecycle;
mod live_runs;
pub mod metrics;
mod new_runs;
mod queries;
pub mod replay;
mod responses;
mod resume;
mod resume_bound;
mod resume_or_start;
mod retention;
pub mod schedules;
mod start;
mod step_runner;
pub mod system_env;
mod threads_api;
mod waiters;
mod writer;

pub use clock::Clock;
pub use config::{EngineConfig, QueueLimit, QueueRate, DEFAULT_QUEUE};
pub use engine::Engine;
pub use error::EngineError;
pub use metrics::{Metrics, MetricsSnapshot, WEBHOOK_REJECT_REASONS};
pub use resume_bound::{CheckedHook, ResumeAnswer};
pub use resume_or_start::ResumedOrStarted;
pub use retention::RetentionPass;
pub use start::{StartOptions, Started};
pub use system_env::SystemEnvironment;
