//! Hook threads, shared state and signals (the HotMesh model) on a real SQLite store.
#![allow(missing_docs, missing_debug_implementations)]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tether_core::{Ctx, Registry, RetryPolicy, RunStatus, SpawnOptions, WorkflowError};
use tether_engine::EngineError;

#[tokio::test]
async fn enrich_runs_a_hook_thread_in_the_namespace_and_gets_its_signal() {
    let db = TestDb::new();
    let engine = db.engine(examples(), fast_config()).await;
    let run = engine
        .start_run("enrich", json!({"name": "ada"}))
        .await
        .unwrap();
    let out = output(&engine, &run).await;
    assert_eq!(
        out,
        json!({
            "signal": {"greeting": "hello ada"},
            "state": {"name": "ada", "greeting": "hello ada", "hook_runs": 1}
        })
    );
    assert_eq!(
        engine.state(&run).await.unwrap(),
        json!({"name": "ada", "greeting": "hello ada", "hook_runs": 1})
            .as_object()
            .unwrap()
            .clone()
    );
    let threads = engine.threads(&run).await.unwrap();
    assert_eq!(threads.len(), 1, "one spawn, one thread: {threads:?}");
    assert_eq!(threads[0].workflow, "enrich_hook");
    assert_eq!(threads[0].status, RunStatus::Completed);
    // Threads are not runs of their own in listings.
    let listed = engine
        .list_runs(&tether_store::RunFilter::default())
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    engine.shutdown().await;
}

#[tokio::test]
async fn outside_spawns_share_the_state_and_bad_targets_are_refused() {
    let db = TestDb::new();
    let engine = db.engine(examples(), fast_config()).await;
    let run = engine
        .start_run("enrich", json!({"name": "bo", "wait": true}))
        .await
        .unwrap();
    let token = hook_token(&engine, &run).await;
    let hook_id = engine
        .spawn_hook(&run, SpawnOptions::new("enrich_hook").args(json!({})))
        .await
        .unwrap();
    // Wait for the outside thread to finish (it counts itself in hook_runs).
    for _ in 0..2000 {
        if engine.state(&run).await.unwrap().get("hook_runs") == Some(&json!(2)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(engine
        .threads(&run)
        .await
        .unwrap()
        .iter()
        .any(|t| t.run_id == hook_id));
    match engine.spawn_hook(&run, SpawnOptions::default()).await {
        Err(e @ EngineError::HookSelfTarget { .. }) => {
            assert_eq!(e.code(), "hook_self_target");
            assert!(e.to_string().contains("loop"), "{e}")
        }
        other => panic!("self-target must be refused, got {other:?}"),
    }
    assert!(matches!(
        engine
            .spawn_hook("no-such-run", SpawnOptions::new("enrich_hook"))
            .await,
        Err(EngineError::RunNotFound { .. })
    ));
    engine.resume_hook(&token, json!({}), None).await.unwrap();
    let out = output(&engine, &run).await;
    assert_eq!(out["state"]["hook_runs"], json!(2));
    assert!(matches!(
        engine
            .spawn_hook(&run, SpawnOptions::new("enrich_hook"))
            .await,
        Err(EngineError::RunFinished { .. })
    ));
    engine.shutdown().await;
}

#[tokio::test]
async fn signals_sent_before_the_wait_are_kept() {
    let db = TestDb::new();
    let engine = db.engine(examples(), fast_config()).await;
    assert_eq!(engine.signal("early", json!({"n": 1})).await.unwrap(), None);
    let run = engine
        .start_run("wait_signal", json!({"signal_id": "early"}))
        .await
        .unwrap();
    assert_eq!(output(&engine, &run).await, json!({"n": 1}));

    let waiting = engine
        .start_run("wait_signal", json!({"signal_id": "late"}))
        .await
        .unwrap();
    assert_eq!(
        engine.signal("late", json!("hi")).await.unwrap(),
        Some(waiting.clone())
    );
    assert_eq!(output(&engine, &waiting).await, json!("hi"));
    engine.shutdown().await;
}

async fn two_waits(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let (a, b) = tether_core::join(ctx.wait_for::<Value>("a"), ctx.wait_for::<Value>("b")).await;
    Ok(json!([a?, b?]))
}

#[tokio::test]
async fn several_waits_can_be_pending_at_once() {
    let db = TestDb::new();
    let mut reg = examples();
    reg.workflow("two_waits", two_waits);
    let engine = db.engine(reg, fast_config()).await;
    let run = engine.start_run("two_waits", json!(null)).await.unwrap();
    engine.signal("b", json!(2)).await.unwrap();
    engine.signal("a", json!(1)).await.unwrap();
    assert_eq!(output(&engine, &run).await, json!([1, 2]));
    engine.shutdown().await;
}

fn flaky_registry(calls: Arc<AtomicU32>, fail_times: u32) -> Registry {
    let mut reg = examples();
    reg.workflow("caller", |ctx: Ctx, _: Value| async move {
        let policy = RetryPolicy {
            maximum_attempts: 3,
            initial_interval: Duration::from_millis(20),
            ..RetryPolicy::default()
        };
        match ctx
            .exec_hook::<Value>(SpawnOptions::new("flaky_hook").retry(policy))
            .await
        {
            Ok(v) => Ok(json!({"ok": v})),
            Err(e) => Ok(json!({"err": e.code(), "message": e.to_string()})),
        }
    });
    reg.workflow("flaky_hook", move |ctx: Ctx, args: Value| {
        let calls = calls.clone();
        async move {
            let n: u32 = ctx
                .step("count", calls.clone(), move |calls| async move {
                    Ok(calls.fetch_add(1, Ordering::SeqCst) + 1)
                })
                .await?;
            if n <= fail_times {
                return Err(WorkflowError::with_code(
                    "flaky",
                    format!("attempt {n} failed"),
                ));
            }
            let _ = args;
            let signal_id = ctx.exec_signal_id().unwrap_or_default();
            ctx.signal(&signal_id, &json!({"attempt": n})).await?;
            Ok(json!(n))
        }
    });
    reg
}

#[tokio::test]
async fn a_failing_hook_thread_is_retried_then_its_error_reaches_exec_hook() {
    let db = TestDb::new();
    let calls = Arc::new(AtomicU32::new(0));
    let engine = db
        .engine(flaky_registry(calls.clone(), 1), fast_config())
        .await;
    let run = engine.start_run("caller", json!(null)).await.unwrap();
    assert_eq!(output(&engine, &run).await, json!({"ok": {"attempt": 2}}));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    engine.shutdown().await;

    let db = TestDb::new();
    let calls = Arc::new(AtomicU32::new(0));
    let engine = db
        .engine(flaky_registry(calls.clone(), 99), fast_config())
        .await;
    let run = engine.start_run("caller", json!(null)).await.unwrap();
    let out = output(&engine, &run).await;
    assert_eq!(out["err"], json!("flaky"), "{out}");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "3 attempts, then the error"
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn a_spawn_survives_a_restart_exactly_once() {
    let db = TestDb::new();
    let engine = db.engine(examples(), fast_config()).await;
    let run = engine
        .start_run("enrich", json!({"name": "cy", "wait": true}))
        .await
        .unwrap();
    let token = hook_token(&engine, &run).await;
    engine.shutdown().await;
    let engine = db.engine(examples(), fast_config()).await;
    engine.resume_hook(&token, json!({}), None).await.unwrap();
    let out = output(&engine, &run).await;
    assert_eq!(out["state"]["hook_runs"], json!(1));
    assert_eq!(engine.threads(&run).await.unwrap().len(), 1);
    engine.shutdown().await;
}
