//! Expiring hooks over HTTP, on SQLite and PostgreSQL (issue #21 point 3), with the bundled
//! `expiring_approval`: a hook left unanswered expires by itself, the run ends
//! `{"expired": true}`, and a payload sent afterwards is refused with `410 hook_expired`
//! (`GET /v1/hooks/{token}` answers the same); a payload sent before the expiry is the output.
//! And reserved tokens: once an order's run has ended, its token `order:{id}` answers
//! `410 token_reserved` and a new run asking for it gets `hook_conflict`, until the
//! reservation ends.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tether_core::{Ctx, HookOptions, Registry, WorkflowError};
use tether_engine::{Engine, EngineConfig};
use tether_server::{router, ServerOptions};
use tether_store::Store;
use tether_store_postgres::PostgresStore;
use tether_store_sqlite::SqliteStore;
use tower::ServiceExt;

async fn call(r: &Router, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .expect("a request");
    let resp = r.clone().oneshot(req).await.expect("an answer");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("a body");
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, value)
}

/// One payload on the token `order:{id}`, which stays reserved for `reserve_ms` after the run
/// lets it go.
async fn reserved_order(ctx: Ctx, input: Value) -> Result<Value, WorkflowError> {
    let id = input["id"].as_str().unwrap_or("none").to_owned();
    let reserve = Duration::from_millis(input["reserve_ms"].as_u64().unwrap_or(0));
    let hook = ctx
        .create_hook::<Value>(
            HookOptions::new()
                .token(format!("order:{id}"))
                .reserve_for(reserve),
        )
        .await?;
    hook.await
}

fn engine_on(store: Arc<dyn Store>) -> (Router, Engine) {
    let mut registry = Registry::new();
    tether_examples::register(&mut registry);
    registry.workflow("reserved_order", reserved_order);
    let config = EngineConfig {
        poll_interval: Duration::from_millis(50),
        ..EngineConfig::default()
    };
    let engine = Engine::start(store, registry, config);
    (router(engine.clone(), ServerOptions::default()), engine)
}

/// Start `expiring_approval` and wait for its hook; the run id, the token and its expiry.
async fn start(r: &Router, engine: &Engine, expires_ms: u64) -> (String, String, Value) {
    let (status, v) = call(
        r,
        Method::POST,
        "/v1/runs",
        Some(json!({"workflow": "expiring_approval", "input": {"expires_ms": expires_ms}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let run = v["run_id"].as_str().expect("a run id").to_owned();
    for _ in 0..2000 {
        if let Some(h) = engine.hooks(&run).await.expect("hooks").first() {
            let (status, hook) =
                call(r, Method::GET, &format!("/v1/hooks/{}", h.token), None).await;
            assert_eq!(status, StatusCode::OK, "{hook}");
            return (run, h.token.clone(), hook["expires_at"].clone());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("run {run} created no hook");
}

async fn expiry_then_410_and_payload_before_expiry(r: Router, engine: Engine) {
    // Unanswered: expires, the run ends `{"expired": true}`, later payloads are 410.
    let (run, token, expires_at) = start(&r, &engine, 300).await;
    assert!(
        expires_at.is_string(),
        "the hook shows its expiry: {expires_at}"
    );
    let done = engine
        .wait_for_run(&run, Duration::from_secs(20))
        .await
        .expect("the run");
    assert_eq!(done.output, Some(json!({"expired": true})), "{done:?}");
    let uri = format!("/v1/hooks/{token}");
    let (status, v) = call(&r, Method::POST, &uri, Some(json!({"approved": true}))).await;
    assert_eq!(status, StatusCode::GONE, "{v}");
    assert_eq!(v["error"]["code"], json!("hook_expired"), "{v}");
    let (status, v) = call(&r, Method::GET, &uri, None).await;
    assert_eq!(
        (status, v["error"]["code"].clone()),
        (StatusCode::GONE, json!("hook_expired"))
    );
    let kinds: Vec<String> = engine
        .events(&run)
        .await
        .expect("journal")
        .iter()
        .map(|e| e.body.kind().to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "run_started",
            "hook_created",
            "hook_expired",
            "run_completed"
        ]
    );

    // Answered in time: the payload is the output.
    let (run, token, _) = start(&r, &engine, 60_000).await;
    let uri = format!("/v1/hooks/{token}");
    let (status, v) = call(&r, Method::POST, &uri, Some(json!({"approved": true}))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    let done = engine
        .wait_for_run(&run, Duration::from_secs(20))
        .await
        .expect("the run");
    assert_eq!(done.output, Some(json!({"approved": true})), "{done:?}");
    engine.shutdown().await;
}

/// Start `reserved_order` for `id` and wait for its hook.
async fn start_order(r: &Router, engine: &Engine, id: &str, reserve_ms: u64) -> String {
    let input = json!({"id": id, "reserve_ms": reserve_ms});
    let (status, v) = call(
        r,
        Method::POST,
        "/v1/runs",
        Some(json!({"workflow": "reserved_order", "input": input})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let run = v["run_id"].as_str().expect("a run id").to_owned();
    for _ in 0..2000 {
        let run_now = engine.get_run(&run).await.expect("the run");
        if !engine.hooks(&run).await.expect("hooks").is_empty() || run_now.status.is_terminal() {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("run {run} neither made a hook nor ended");
}

async fn a_reserved_token_refuses_payloads_and_new_holders(r: Router, engine: Engine) {
    let first = start_order(&r, &engine, "o-1", 60_000).await;
    let uri = "/v1/hooks/order:o-1";
    let (status, v) = call(&r, Method::POST, uri, Some(json!({"shipped": true}))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    let done = engine
        .wait_for_run(&first, Duration::from_secs(20))
        .await
        .expect("the run");
    assert_eq!(done.output, Some(json!({"shipped": true})), "{done:?}");

    // The run has ended; its token is reserved: a late payload is refused, not kept...
    let (status, v) = call(&r, Method::POST, uri, Some(json!({"shipped": "again"}))).await;
    assert_eq!(
        (status, v["error"]["code"].clone()),
        (StatusCode::GONE, json!("token_reserved")),
        "{v}"
    );
    // ...and a new run asking for the token does not get it.
    let second = start_order(&r, &engine, "o-1", 0).await;
    let ended = engine
        .wait_for_run(&second, Duration::from_secs(20))
        .await
        .expect("the second run");
    let error = ended.error.as_ref().map(|e| e.code.clone());
    assert_eq!(error.as_deref(), Some("hook_conflict"), "{ended:?}");

    // Another order's token is free as ever; a token reserved for 1 ms is free again soon.
    let third = start_order(&r, &engine, "o-2", 1).await;
    let (status, v) = call(&r, Method::POST, "/v1/hooks/order:o-2", Some(json!(1))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    engine
        .wait_for_run(&third, Duration::from_secs(20))
        .await
        .expect("the third run");
    let mut free = false;
    for _ in 0..200 {
        let fourth = start_order(&r, &engine, "o-2", 0).await;
        if !engine.hooks(&fourth).await.expect("hooks").is_empty() {
            free = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(free, "the token o-2 is free once its reservation ended");
    engine.shutdown().await;
}

/// `check` against a router and engine on a fresh SQLite file.
async fn on_sqlite<F: std::future::Future<Output = ()>>(check: impl FnOnce(Router, Engine) -> F) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("t.db");
    let store = SqliteStore::open(&path.display().to_string())
        .await
        .expect("open store");
    let (r, engine) = engine_on(Arc::new(store));
    check(r, engine).await;
}

/// `check` against a router and engine on a fresh PostgreSQL schema (dropped afterwards).
async fn on_postgres<F: std::future::Future<Output = ()>>(check: impl FnOnce(Router, Engine) -> F) {
    let url = tether_test_env::postgres_url();
    let schema = format!("t_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    let store = PostgresStore::open_in_schema(&url, &schema)
        .await
        .unwrap_or_else(|e| panic!("open a store in schema {schema}: {e}"));
    let (r, engine) = engine_on(Arc::new(store));
    check(r, engine).await;
    if let Err(e) = PostgresStore::drop_schema(&url, &schema).await {
        eprintln!("schema {schema} left behind: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_reserved_tokens() {
    on_sqlite(a_reserved_token_refuses_payloads_and_new_holders).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
)]
async fn postgres_reserved_tokens() {
    on_postgres(a_reserved_token_refuses_payloads_and_new_holders).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_expiry_and_payload_before_it() {
    on_sqlite(expiry_then_410_and_payload_before_expiry).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
)]
async fn postgres_expiry_and_payload_before_it() {
    on_postgres(expiry_then_410_and_payload_before_expiry).await;
}
