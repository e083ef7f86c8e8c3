//! A manual webhook's response reaches its caller whichever node runs the workflow: two
//! engines on two PostgreSQL stores in one schema, each with its own router. The run is live
//! on node B; the HTTP request goes to node A, which answers with the response B's run sent.
//!
//! Needs `TETHER_TEST_POSTGRES` (e.g. `postgres://postgres@127.0.0.1:5432/test`); skipped,
//! saying so, when it is unset (a failure under CI).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{json, Value};
use tether_core::{Registry, RunStatus};
use tether_engine::{Engine, EngineConfig};
use tether_server::{router, ServerOptions};
use tether_store_postgres::PostgresStore;
use tower::ServiceExt;

const VAR: &str = "TETHER_TEST_POSTGRES";

/// The server to test against, or `None` (with a note) when there is none.
fn postgres_url() -> Option<String> {
    match std::env::var(VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{VAR} must be set under CI (e.g. {VAR}=postgres://postgres@127.0.0.1:5432/test)"
            );
            eprintln!("skipped: {VAR} is not set");
            None
        }
    }
}

/// A fresh schema, dropped (best effort, on a thread of its own) when this is dropped.
struct Schema {
    url: String,
    name: String,
}

impl Schema {
    fn new(url: String) -> Schema {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Schema {
            url,
            name: format!("t_{}", &id[..16]),
        }
    }

    /// A node: an engine with id `node` on a store of its own in the schema.
    async fn node(&self, node: &str) -> Engine {
        let store = PostgresStore::open_in_schema(&self.url, &self.name)
            .await
            .unwrap_or_else(|e| panic!("open a store in schema {}: {e}", self.name));
        let mut registry = Registry::new();
        tether_examples::register(&mut registry);
        let config = EngineConfig {
            node_id: Some(node.to_string()),
            // Long enough that node A cannot take the run over during the test.
            lease: Duration::from_secs(60),
            ..EngineConfig::default()
        };
        Engine::start(Arc::new(store), registry, config)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(PostgresStore::drop_schema(&url, &name))
                .map_err(|e| e.to_string())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("schema {} left behind: {dropped:?}", self.name);
        }
    }
}

/// The token of the run's first hook, once it has one.
async fn hook_token(engine: &Engine, run_id: &str) -> String {
    for _ in 0..2000 {
        if let Some(h) = engine.hooks(run_id).await.expect("hooks").first() {
            return h.token.clone();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("run {run_id} never created a hook");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_response_reaches_the_caller_through_another_node() {
    let Some(url) = postgres_url() else { return };
    let schema = Schema::new(url);
    let a = schema.node("a").await;
    let b = schema.node("b").await;
    let router_a = router(a.clone(), ServerOptions::default());

    // The run is live on node B, which holds its lease.
    let run_id = b
        .start_run("webhook_echo", json!({ "mode": "manual" }))
        .await
        .expect("start on b");
    let token = hook_token(&b, &run_id).await;
    let run = b.get_run(&run_id).await.expect("run");
    assert_eq!(run.owner.as_deref(), Some("b"), "{run:?}");

    // The caller reaches node A, which does not run the workflow.
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("{}{token}", tether_core::WEBHOOK_PATH))
        .header("content-type", "application/json")
        .body(Body::from(json!({ "n": 7 }).to_string()))
        .expect("request");
    let answer = tokio::time::timeout(Duration::from_secs(30), router_a.oneshot(request))
        .await
        .expect("node A answers within the webhook's timeout")
        .expect("infallible");
    assert_eq!(answer.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(answer.into_body(), usize::MAX)
        .await
        .expect("body");
    let body: Value = serde_json::from_slice(&bytes).expect("JSON body");
    assert_eq!(body, json!({ "echo": { "n": 7 } }));

    let done = b
        .wait_for_run(&run_id, Duration::from_secs(30))
        .await
        .expect("wait");
    assert_eq!(done.status, RunStatus::Completed, "{:?}", done.error);
    assert_eq!(
        done.output,
        Some(json!({ "method": "POST", "body": { "n": 7 } }))
    );
    a.shutdown().await;
    b.shutdown().await;
}
