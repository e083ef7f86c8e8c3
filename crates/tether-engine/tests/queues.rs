//! Task queues: a node runs only the runs of the queues it serves (a run of another queue
//! started there waits, `pending`, for a node that serves it), and a queue's concurrency
//! limit holds across nodes. Running runs are counted from inside the workflow (a step on
//! entry and one before the end), never by timing.
#![allow(missing_docs, missing_debug_implementations)]

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tether_core::{Ctx, Registry, RunStatus, WorkflowError};
use tether_engine::{Engine, EngineConfig, QueueLimit, StartOptions};
use tether_store_postgres::PostgresStore;

/// Runs of `counted` between their two steps, and the most seen at once; one pair per test.
struct Gauge {
    now: AtomicI64,
    max: AtomicI64,
}

impl Gauge {
    const fn new() -> Gauge {
        Gauge {
            now: AtomicI64::new(0),
            max: AtomicI64::new(0),
        }
    }
}

static ROUTED_GAUGE: Gauge = Gauge::new();
static SQLITE_GAUGE: Gauge = Gauge::new();
static PG_GAUGE_A: Gauge = Gauge::new();
static PG_GAUGE: Gauge = Gauge::new();

/// Enter (count up), wait a little, leave (count down), answer with the node's name.
async fn counted(
    ctx: Ctx,
    gauge: &'static Gauge,
    node: &'static str,
) -> Result<Value, WorkflowError> {
    ctx.step("enter", (), move |()| async move {
        let now = gauge.now.fetch_add(1, Ordering::SeqCst) + 1;
        gauge.max.fetch_max(now, Ordering::SeqCst);
        Ok(())
    })
    .await?;
    ctx.sleep(Duration::from_millis(20)).await?;
    ctx.step("leave", (), move |()| async move {
        gauge.now.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    })
    .await?;
    Ok(json!(node))
}

async fn sqlite_counted(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    counted(ctx, &SQLITE_GAUGE, "local").await
}

async fn routed(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    counted(ctx, &ROUTED_GAUGE, "local").await
}

async fn pg_counted_a(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    counted(ctx, &PG_GAUGE_A, "a").await
}

async fn pg_counted_b(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    counted(ctx, &PG_GAUGE, "b").await
}

fn on(queue: &str) -> StartOptions {
    StartOptions {
        queue: Some(queue.into()),
        ..StartOptions::default()
    }
}

fn limit(queue: &str, concurrency: u64) -> BTreeMap<String, QueueLimit> {
    BTreeMap::from([(
        queue.to_owned(),
        QueueLimit {
            concurrency: Some(concurrency),
            rate: None,
        },
    )])
}

async fn start_on(engine: &Engine, workflow: &str, queue: &str) -> String {
    engine
        .start_run_with(workflow, json!({}), on(queue))
        .await
        .unwrap_or_else(|e| panic!("start {workflow} on {queue}: {e}"))
        .run_id
}

async fn completed(engine: &Engine, run_id: &str) -> Value {
    let run = engine
        .wait_for_run(run_id, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("wait for {run_id}: {e}"));
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    run.output.unwrap_or(Value::Null)
}

/// SQLite is one process per file: a node serving only `a` leaves a run of `b` pending
/// (visible as `tether_queue_depth{queue="b"}`); the node restarted serving `b` runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_of_an_unserved_queue_waits_for_a_node_serving_it() {
    let db = TestDb::new();
    let mut registry = Registry::new();
    registry.workflow("counted", routed);
    let only_a = EngineConfig {
        queues: Some(vec!["a".into()]),
        ..fast_config()
    };
    let engine = db.engine(registry, only_a).await;
    let run_b = start_on(&engine, "counted", "b").await;
    let run_a = start_on(&engine, "counted", "a").await;
    assert_eq!(completed(&engine, &run_a).await, json!("local"));
    // Polls come and go; the run of `b` is never claimed here.
    for _ in 0..5 {
        engine.wake_due_runs().await.expect("poll");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let run = engine.get_run(&run_b).await.expect("run of b");
    assert_eq!(
        (run.status, run.owner.as_deref(), run.queue.as_str()),
        (RunStatus::Pending, None, "b")
    );
    let metrics = engine.render_metrics().await;
    assert!(
        metrics.contains("tether_queue_depth{queue=\"b\"} 1"),
        "{metrics}"
    );
    let bad = engine
        .start_run_with("counted", json!({}), on("not a queue"))
        .await;
    assert!(bad.is_err(), "a bad queue name is refused: {bad:?}");
    engine.shutdown().await;

    let mut registry = Registry::new();
    registry.workflow("counted", routed);
    let only_b = EngineConfig {
        queues: Some(vec!["b".into()]),
        ..fast_config()
    };
    let engine = db.engine(registry, only_b).await;
    assert_eq!(completed(&engine, &run_b).await, json!("local"));
    engine.shutdown().await;
}

/// 20 runs started at once on a queue limited to 2: never more than 2 between their steps,
/// and all 20 complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrency_limit_holds_on_one_node() {
    let db = TestDb::new();
    let mut registry = Registry::new();
    registry.workflow("counted", sqlite_counted);
    let config = EngineConfig {
        queue_limits: limit("q", 2),
        ..fast_config()
    };
    let engine = db.engine(registry, config).await;
    let mut runs = Vec::new();
    for _ in 0..20 {
        runs.push(start_on(&engine, "counted", "q").await);
    }
    for run in &runs {
        completed(&engine, run).await;
    }
    let max = SQLITE_GAUGE.max.load(Ordering::SeqCst);
    assert!((1..=2).contains(&max), "at most 2 at once, saw {max}");
    engine.shutdown().await;
}

/// Two engines on one PostgreSQL database: node `a` serves `a` and `default`, node `b`
/// serves `b`, both with a limit of 2 on `b`. Every run of `b` (all 20 started through
/// node `a`, at once) runs on `b`, never more than 2 at once; runs of `a` started through
/// `b` run on `a`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
)]
async fn postgres_two_nodes_route_by_queue_under_a_shared_limit() {
    let url = tether_test_env::postgres_url();
    let schema = format!("t_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    let node = |id: &'static str, queues: &[&str]| {
        let (url, schema) = (url.clone(), schema.clone());
        let queues: Vec<String> = queues.iter().map(|q| (*q).to_owned()).collect();
        async move {
            let store = PostgresStore::open_in_schema(&url, &schema)
                .await
                .unwrap_or_else(|e| panic!("open a store in schema {schema}: {e}"));
            let mut registry = Registry::new();
            if id == "a" {
                registry.workflow("counted", pg_counted_a);
            } else {
                registry.workflow("counted", pg_counted_b);
            }
            let config = EngineConfig {
                node_id: Some(id.into()),
                queues: Some(queues),
                queue_limits: limit("b", 2),
                poll_interval: Duration::from_millis(50),
                ..fast_config()
            };
            Engine::start(Arc::new(store), registry, config)
        }
    };
    let a = node("a", &["a", "default"]).await;
    let b = node("b", &["b"]).await;

    let starts = (0..20).map(|_| start_on(&a, "counted", "b"));
    let runs_b = futures::future::join_all(starts).await;
    let mut runs_a = Vec::new();
    for _ in 0..3 {
        runs_a.push(start_on(&b, "counted", "a").await);
    }
    for run in &runs_b {
        assert_eq!(
            completed(&a, run).await,
            json!("b"),
            "run {run} of b ran on b"
        );
    }
    for run in &runs_a {
        assert_eq!(
            completed(&b, run).await,
            json!("a"),
            "run {run} of a ran on a"
        );
    }
    let max = PG_GAUGE.max.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&max),
        "at most 2 runs of b at once, saw {max}"
    );
    assert_eq!(
        a.store().queue_depths().await.expect("depths"),
        Vec::new(),
        "nothing waits any more"
    );
    a.shutdown().await;
    b.shutdown().await;
    if let Err(e) = PostgresStore::drop_schema(&url, &schema).await {
        eprintln!("schema {schema} left behind: {e}");
    }
}
