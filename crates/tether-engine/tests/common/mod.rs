//! Shared set-up for the engine tests: a real SQLite store in a temp dir, an engine over it.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tether_core::Registry;
use tether_engine::{Engine, EngineConfig};
use tether_store::Store;
use tether_store_sqlite::SqliteStore;

pub struct TestDb {
    /// One open store per file, shared by every engine of the test: a SQLite file takes one
    /// store at a time (its lock), and a "restart" here is a new engine on the same store.
    store: tokio::sync::OnceCell<Arc<dyn Store>>,
    pub dir: tempfile::TempDir,
}

impl TestDb {
    pub fn new() -> Self {
        TestDb {
            store: tokio::sync::OnceCell::new(),
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> String {
        self.dir.path().join("tether.db").display().to_string()
    }

    pub async fn store(&self) -> Arc<dyn Store> {
        let open = || async {
            Arc::new(SqliteStore::open(&self.path()).await.expect("open sqlite")) as Arc<dyn Store>
        };
        self.store.get_or_init(open).await.clone()
    }

    pub async fn engine(&self, registry: Registry, config: EngineConfig) -> Engine {
        Engine::start(self.store().await, registry, config)
    }
}

pub fn fast_config() -> EngineConfig {
    EngineConfig {
        poll_interval: Duration::from_millis(20),
        retry_delay: Duration::from_millis(50),
        ..EngineConfig::default()
    }
}

pub fn examples() -> Registry {
    let mut r = Registry::new();
    tether_examples::register(&mut r);
    r
}

/// Wait until the run has at least one active hook; return its token.
pub async fn hook_token(engine: &Engine, run_id: &str) -> String {
    for _ in 0..2000 {
        let hooks = engine.hooks(run_id).await.expect("hooks");
        if let Some(h) = hooks.first() {
            return h.token.clone();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("run {run_id} never created a hook");
}

/// Wait for the run to end and return its output (panics on failure or timeout).
pub async fn output(engine: &Engine, run_id: &str) -> Value {
    let run = engine
        .wait_for_run(run_id, Duration::from_secs(20))
        .await
        .expect("wait");
    assert!(
        run.status.is_terminal(),
        "run {run_id} did not finish: {run:?}"
    );
    assert_eq!(
        run.status,
        tether_core::RunStatus::Completed,
        "run failed: {:?}",
        run.error
    );
    run.output.expect("output")
}

/// The payloads of the run's `hook_received` entries, in journal order.
pub async fn received(engine: &Engine, run_id: &str) -> Vec<Value> {
    engine
        .events(run_id)
        .await
        .expect("events")
        .into_iter()
        .filter_map(|e| match e.body {
            tether_core::EventBody::HookReceived { payload, .. } => Some(payload),
            _ => None,
        })
        .collect()
}
