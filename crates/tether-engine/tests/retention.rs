//! Bounded disk (#17 point 6, and the key window of point 2): with `retention` set, ended
//! runs past it are deleted with their journals and keys, live ones are kept; idempotency
//! keys are forgotten after their window; both are counted in the metrics.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tether_core::{Ctx, HookOptions, Registry, RunStatus, WorkflowError};
use tether_engine::{Clock, EngineConfig, RetentionPass};

const T0: u64 = 1_735_689_600_000; // 2025-01-01T00:00:00Z
const HOUR: Duration = Duration::from_secs(3600);

async fn wait_once(ctx: Ctx, input: Value) -> Result<Value, WorkflowError> {
    let token = input["token"].as_str().unwrap_or("t").to_owned();
    let mut hook = ctx
        .create_hook::<Value>(HookOptions::new().token(&token))
        .await?;
    hook.recv().await
}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.workflow("wait_once", wait_once);
    r
}

#[tokio::test]
async fn ended_runs_and_old_keys_go_live_runs_stay() {
    let db = TestDb::new();
    let clock = Clock::manual(T0);
    let config = EngineConfig {
        clock: clock.clone(),
        retention: Some(HOUR),
        idempotency_window: Some(2 * HOUR),
        retention_interval: Duration::from_secs(3600), // passes are made by hand below
        ..fast_config()
    };
    let engine = db.engine(registry(), config).await;
    let done = engine
        .start_run("wait_once", json!({"token": "a"}))
        .await
        .unwrap();
    let alive = engine
        .start_run("wait_once", json!({"token": "b"}))
        .await
        .unwrap();
    engine.settle().await;
    engine
        .resume_hook("a", json!(1), Some("key-a".into()))
        .await
        .unwrap();
    engine.settle().await;
    assert_eq!(
        engine.get_run(&done).await.unwrap().status,
        RunStatus::Completed
    );

    // Younger than the retention: nothing goes.
    clock.advance(HOUR / 2);
    assert_eq!(
        engine.apply_retention().await.unwrap(),
        RetentionPass::default()
    );

    clock.advance(HOUR);
    let pass = engine.apply_retention().await.unwrap();
    assert_eq!(
        pass,
        RetentionPass {
            runs_deleted: 1,
            keys_deleted: 0,
        },
        "the ended run goes with its key; the live run stays"
    );
    assert!(
        engine.get_run(&done).await.is_err(),
        "the ended run is gone"
    );
    assert_eq!(
        engine.get_run(&alive).await.unwrap().status,
        RunStatus::Suspended
    );

    // A key on the live run is kept for its window, then forgotten.
    engine
        .resume_hook("b", json!(2), Some("key-b".into()))
        .await
        .unwrap();
    clock.advance(3 * HOUR);
    let pass = engine.apply_retention().await.unwrap();
    assert_eq!(pass.keys_deleted, 0, "key-b went with its run, which ended");
    let snapshot = engine.metrics().snapshot();
    assert_eq!(snapshot.runs_deleted, 2);
    let text = engine.render_metrics().await;
    assert!(text.contains("tether_runs_deleted_total 2"), "{text}");
    assert!(
        text.contains("tether_idempotency_keys_deleted_total"),
        "{text}"
    );
}

#[tokio::test]
async fn keys_are_forgotten_after_their_window_while_the_run_lives() {
    let db = TestDb::new();
    let clock = Clock::manual(T0);
    let config = EngineConfig {
        clock: clock.clone(),
        retention: None,
        idempotency_window: Some(HOUR),
        retention_interval: Duration::from_secs(3600),
        ..fast_config()
    };
    let engine = db.engine(registry(), config).await;
    let run = engine
        .start_run("wait_once", json!({"token": "c"}))
        .await
        .unwrap();
    engine.settle().await;
    // Another run keeps waiting: the window, not retention, is what forgets the key.
    let keep = engine
        .start_run("wait_once", json!({"token": "d"}))
        .await
        .unwrap();
    engine.settle().await;
    engine
        .resume_hook("c", json!(1), Some("k".into()))
        .await
        .unwrap();
    engine.settle().await;
    assert_eq!(engine.apply_retention().await.unwrap().keys_deleted, 0);
    clock.advance(2 * HOUR);
    assert_eq!(
        engine.apply_retention().await.unwrap(),
        RetentionPass {
            runs_deleted: 0,
            keys_deleted: 1,
        },
        "without --retention, runs stay; the key is forgotten after its window"
    );
    assert_eq!(
        engine.get_run(&run).await.unwrap().status,
        RunStatus::Completed
    );
    assert_eq!(
        engine.get_run(&keep).await.unwrap().status,
        RunStatus::Suspended
    );
    assert_eq!(engine.metrics().snapshot().idempotency_keys_deleted, 1);
}
