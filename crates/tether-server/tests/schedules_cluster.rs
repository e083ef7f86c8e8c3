//! Durable cron schedules on a cluster: two nodes (two engines, two stores, two routers) on
//! one PostgreSQL schema, a schedule ticking every second for a few real seconds while one
//! node is killed and restarted. Every tick's run exists exactly once (`sched:{id}:{tick}`,
//! one per tick, none missing), whichever node fired it.
//!
//! Needs `TETHER_TEST_POSTGRES` (e.g. `postgres://postgres@127.0.0.1:5432/test`).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tether_core::{Ctx, Registry, RunStatus, WorkflowError};
use tether_engine::{Engine, EngineConfig};
use tether_server::{router, ServerOptions};
use tether_store::{RunFilter, Store};
use tether_store_postgres::PostgresStore;
use tower::ServiceExt;

async fn tick(_ctx: Ctx, input: Value) -> Result<Value, WorkflowError> {
    Ok(input)
}

async fn store(url: &str, schema: &str) -> Arc<dyn Store> {
    let store = PostgresStore::open_in_schema(url, schema)
        .await
        .unwrap_or_else(|e| panic!("open a store in schema {schema}: {e}"));
    Arc::new(store)
}

async fn node(url: &str, schema: &str, id: &str) -> (Engine, Router) {
    let mut registry = Registry::new();
    registry.workflow("tick", tick);
    let config = EngineConfig {
        node_id: Some(id.to_string()),
        poll_interval: Duration::from_millis(50),
        lease: Duration::from_secs(2),
        ..EngineConfig::default()
    };
    let engine = Engine::start(store(url, schema).await, registry, config);
    let app = router(engine.clone(), ServerOptions::default());
    (engine, app)
}

async fn call(app: &Router, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .expect("request");
    let answer = app.clone().oneshot(request).await.expect("infallible");
    let status = answer.status();
    let bytes = axum::body::to_bytes(answer.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, serde_json::from_slice(&bytes).expect("JSON body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
)]
async fn every_tick_runs_once_on_two_nodes_while_one_restarts() {
    let url = tether_test_env::postgres_url();
    let schema = format!("t_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    let (a, router_a) = node(&url, &schema, "a").await;
    let (b, router_b) = node(&url, &schema, "b").await;
    let body = json!({
        "id": "beat", "workflow": "tick", "cron": "* * * * * *", "overlap": "allow",
        "input": {"n": 1},
    });
    let (status, created) =
        call(&router_a, Method::POST, "/v1/schedules", Some(body.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let first = created["next_tick_ms"].as_u64().expect("a next tick");
    let (status, again) = call(&router_b, Method::POST, "/v1/schedules", Some(body)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the same create on another node: {again}"
    );

    tokio::time::sleep(Duration::from_millis(2_200)).await;
    a.halt().await; // killed: its leases run out on their own
    drop((a, router_a));
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (a, router_a) = node(&url, &schema, "a").await; // restarted
    tokio::time::sleep(Duration::from_millis(2_300)).await;

    let (status, listed) = call(&router_a, Method::GET, "/v1/schedules", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["schedules"][0]["id"], "beat", "{listed}");
    let (status, run) = call(
        &router_b,
        Method::GET,
        &format!("/v1/runs/sched:beat:{first}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["schedule_id"], "beat");

    a.halt().await;
    b.halt().await;
    let reader = store(&url, &schema).await;
    let schedule = reader
        .get_schedule("beat")
        .await
        .expect("read")
        .expect("beat");
    let next = schedule.next_tick_ms.expect("a next tick");
    let expected: Vec<String> = (first..next)
        .step_by(1_000)
        .map(|t| format!("sched:beat:{t}"))
        .collect();
    assert!(
        expected.len() >= 5,
        "ticked for about 6 s: {}",
        expected.len()
    );
    let mut runs: Vec<String> = reader
        .list_runs(&RunFilter {
            limit: 1_000,
            ..RunFilter::default()
        })
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    runs.sort();
    let mut want = expected.clone();
    want.sort();
    assert_eq!(runs, want, "exactly one run per tick, none missing");
    // A killed node's runs are taken over: every run ends.
    let (c, _router_c) = node(&url, &schema, "c").await;
    for id in &expected {
        let done = c
            .wait_for_run(id, Duration::from_secs(10))
            .await
            .expect("wait");
        assert_eq!(done.status, RunStatus::Completed, "{id}");
    }
    c.shutdown().await;
    drop(reader);
    if let Err(e) = PostgresStore::drop_schema(&url, &schema).await {
        eprintln!("schema {schema} left behind: {e}");
    }
}
