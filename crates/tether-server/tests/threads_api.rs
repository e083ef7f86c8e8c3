//! Hook threads, shared state and signals over HTTP, against a real SQLite store.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tether_core::Registry;
use tether_engine::{Engine, EngineConfig};
use tether_server::{router, ServerOptions};
use tether_store_sqlite::SqliteStore;
use tower::ServiceExt;

async fn api() -> (Router, Engine, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("t.db").to_str().unwrap())
        .await
        .unwrap();
    let mut registry = Registry::new();
    tether_examples::register(&mut registry);
    let engine = Engine::start(Arc::new(store), registry, EngineConfig::default());
    (
        router(engine.clone(), ServerOptions::default()),
        engine,
        dir,
    )
}

async fn call(router: &Router, method: Method, uri: &str, body: Value) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, v)
}

async fn get(router: &Router, uri: &str) -> (StatusCode, Value) {
    let req = Request::builder().uri(uri).body(Body::empty()).unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn spawn_state_signal_and_thread_events_over_http() {
    let (r, engine, _dir) = api().await;
    let (s, v) = call(
        &r,
        Method::POST,
        "/v1/runs",
        json!({"workflow": "enrich", "input": {"name": "ana", "wait": true}}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let run = v["run_id"].as_str().unwrap().to_string();

    // A person enriches the running job with another hook thread.
    let (s, v) = call(
        &r,
        Method::POST,
        &format!("/v1/runs/{run}/hooks"),
        json!({"workflow_name": "enrich_hook", "args": {}}),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let hook_id = v["hook_id"].as_str().unwrap().to_string();
    let mut state = Value::Null;
    for _ in 0..2000 {
        state = get(&r, &format!("/v1/runs/{run}/state")).await.1;
        if state["hook_runs"] == json!(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        state,
        json!({"name": "ana", "greeting": "hello ana", "hook_runs": 2})
    );

    // Self-target, unknown run, malformed body.
    let (s, v) = call(
        &r,
        Method::POST,
        &format!("/v1/runs/{run}/hooks"),
        json!({"workflow_name": "enrich", "args": {}}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("loop"),
        "{v}"
    );
    let (s, _) = call(
        &r,
        Method::POST,
        "/v1/runs/nope/hooks",
        json!({"workflow_name": "enrich_hook"}),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = call(
        &r,
        Method::POST,
        &format!("/v1/runs/{run}/hooks"),
        json!({"args": 1}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    // A thread of the run's own workflow on the default queue would loop: refused with the
    // same code as inside a workflow, on every path.
    let (s, v) = call(
        &r,
        Method::POST,
        &format!("/v1/runs/{run}/hooks"),
        json!({"workflow_name": "enrich", "args": {}}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["code"], "hook_self_target", "{v}");

    // The journal shows the main thread and each hook thread as such.
    let (_, events) = get(&r, &format!("/v1/runs/{run}/events")).await;
    let threads: std::collections::BTreeSet<String> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["thread"].as_str().unwrap().to_string())
        .collect();
    assert!(
        threads.contains("main") && threads.contains(&hook_id),
        "{threads:?}"
    );
    assert_eq!(
        threads.len(),
        3,
        "main + the spawned thread + the outside one"
    );

    // Finish the run; a spawn into it is then 409.
    let mut token = None;
    for _ in 0..2000 {
        if let Some(h) = engine.hooks(&run).await.unwrap().first() {
            token = Some(h.token.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let token = token.expect("the run creates its hook once the signal is back");
    engine.resume_hook(&token, json!({}), None).await.unwrap();
    let done = engine
        .wait_for_run(&run, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(done.status, tether_core::RunStatus::Completed);
    let (s, _) = call(
        &r,
        Method::POST,
        &format!("/v1/runs/{run}/hooks"),
        json!({"workflow_name": "enrich_hook"}),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    engine.shutdown().await;
}

#[tokio::test]
async fn signals_over_http_reach_waiting_runs_or_are_kept() {
    let (r, engine, _dir) = api().await;
    let (s, v) = call(
        &r,
        Method::POST,
        "/v1/signals/order-7",
        json!({"paid": true}),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(v, json!({"signal_id": "order-7", "delivered_to": null}));
    let (_, v) = call(
        &r,
        Method::POST,
        "/v1/runs",
        json!({"workflow": "wait_signal", "input": {"signal_id": "order-7"}}),
    )
    .await;
    let run = v["run_id"].as_str().unwrap().to_string();
    let done = engine
        .wait_for_run(&run, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(done.output, Some(json!({"paid": true})));

    let (_, v) = call(
        &r,
        Method::POST,
        "/v1/runs",
        json!({"workflow": "wait_signal", "input": {"signal_id": "later"}}),
    )
    .await;
    let run = v["run_id"].as_str().unwrap().to_string();
    let (s, v) = call(&r, Method::POST, "/v1/signals/later", json!(42)).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(v["delivered_to"], json!(run));
    let done = engine
        .wait_for_run(&run, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(done.output, Some(json!(42)));
    let req = Request::builder()
        .method(Method::POST)
        .uri("/v1/signals/x")
        .body(Body::from("{nope"))
        .unwrap();
    let resp = r.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    engine.shutdown().await;
}
