//! Child runs over HTTP on PostgreSQL, across two nodes: `fan_out` started through node A's
//! router, its children picked up by whichever node polls first, the parent woken by the
//! children's ends (committed by either node); then `GET /v1/runs/{id}` shows
//! `parent_run_id` and `GET /v1/runs/{id}/children` lists the children.
//!
//! Needs `TETHER_TEST_POSTGRES` (e.g. `postgres://postgres@127.0.0.1:5432/test`); skipped,
//! saying so, when it is unset (a failure under CI).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tether_core::Registry;
use tether_engine::{Engine, EngineConfig};
use tether_server::{router, ServerOptions};
use tether_store_postgres::PostgresStore;
use tower::ServiceExt;

const VAR: &str = "TETHER_TEST_POSTGRES";

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
    async fn node(&self, node: &str) -> Engine {
        let store = PostgresStore::open_in_schema(&self.url, &self.name)
            .await
            .unwrap_or_else(|e| panic!("open a store in schema {}: {e}", self.name));
        let mut registry = Registry::new();
        tether_examples::register(&mut registry);
        let config = EngineConfig {
            node_id: Some(node.to_string()),
            poll_interval: Duration::from_millis(50),
            ..EngineConfig::default()
        };
        Engine::start(Arc::new(store), registry, config)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(PostgresStore::drop_schema(&url, &name))
                .map_err(|e| e.to_string())
        })
        .join();
    }
}

async fn call(
    router: &Router,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .expect("request");
    let answer = router.clone().oneshot(request).await.expect("infallible");
    let status = answer.status();
    let bytes = axum::body::to_bytes(answer.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, serde_json::from_slice(&bytes).expect("JSON body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_over_http_on_two_nodes_lists_its_children() {
    let Some(url) = postgres_url() else { return };
    let id = uuid::Uuid::new_v4().simple().to_string();
    let schema = Schema {
        url,
        name: format!("t_{}", &id[..16]),
    };
    let a = schema.node("a").await;
    let b = schema.node("b").await;
    let router_a = router(a.clone(), ServerOptions::default());
    let router_b = router(b.clone(), ServerOptions::default());

    let (status, started) = call(
        &router_a,
        Method::POST,
        "/v1/runs",
        Some(json!({"workflow": "fan_out", "input": {"n": 5}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let run_id = started["run_id"].as_str().expect("run_id").to_owned();

    // Read through node B, which did not start the run.
    let path = format!("/v1/runs/{run_id}?wait_ms=30000");
    let (status, run) = call(&router_b, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["output"], json!({"children": 5, "steps": 15}));
    assert_eq!(run["parent_run_id"], Value::Null);

    let (status, listed) = call(
        &router_b,
        Method::GET,
        &format!("/v1/runs/{run_id}/children"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let children = listed["children"].as_array().expect("children");
    assert_eq!(children.len(), 5, "{listed}");
    for (i, child) in children.iter().enumerate() {
        assert_eq!(child["run_id"], json!(format!("{run_id}.c{}", i + 1)));
        assert_eq!(child["parent_run_id"], json!(run_id));
        assert_eq!(child["status"], "completed");
        assert_eq!(child["output"], json!({"steps": 3}));
    }
    let (_, child) = call(
        &router_a,
        Method::GET,
        &format!("/v1/runs/{run_id}.c1"),
        None,
    )
    .await;
    assert_eq!(child["parent_run_id"], json!(run_id));
    let (status, missing) = call(&router_a, Method::GET, "/v1/runs/nope/children", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    a.shutdown().await;
    b.shutdown().await;
}
