//! A wait for a run's end (`Engine::wait_for_run`, behind `GET /v1/runs/{id}?wait_ms=`) held
//! while the run ends on this node answers with the run as the store has it afterwards: it
//! takes the ending from the commit instead of reading the run again, and must not differ from
//! a read.
#![allow(missing_docs, missing_debug_implementations)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use tether_core::RunStatus;
use tether_engine::Engine;

/// Start waiting on `run`, let `end` end it, and compare the wait's answer with a read.
async fn answer_matches_a_read(
    engine: &Engine,
    run: &str,
    end: impl std::future::Future<Output = ()>,
) {
    let waiting = {
        let engine = engine.clone();
        let run = run.to_string();
        tokio::spawn(async move { engine.wait_for_run(&run, Duration::from_secs(20)).await })
    };
    // Let the wait read the run and start waiting before the end is sent.
    tokio::time::sleep(Duration::from_millis(50)).await;
    end.await;
    let answered = waiting.await.expect("wait task").expect("wait");
    let read = engine.get_run(run).await.expect("read");
    assert!(answered.status.is_terminal(), "{answered:?}");
    assert_eq!(
        answered, read,
        "the wait's answer differs from the stored run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_wait_answers_a_completed_run_as_stored() {
    let db = TestDb::new();
    let engine = db.engine(examples(), fast_config()).await;
    let run = engine.start_run("collect", json!({})).await.unwrap();
    let token = hook_token(&engine, &run).await;
    answer_matches_a_read(&engine, &run, async {
        engine
            .resume_hook(&token, json!({"done": true}), None)
            .await
            .unwrap();
    })
    .await;
    assert_eq!(
        engine.get_run(&run).await.unwrap().status,
        RunStatus::Completed
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_wait_answers_a_cancelled_run_as_stored() {
    let db = TestDb::new();
    let engine = db.engine(examples(), fast_config()).await;
    let run = engine.start_run("collect", json!({})).await.unwrap();
    hook_token(&engine, &run).await;
    answer_matches_a_read(&engine, &run, async {
        engine
            .cancel_run(&run, Some("no longer needed".into()))
            .await
            .unwrap();
    })
    .await;
    assert_eq!(
        engine.get_run(&run).await.unwrap().status,
        RunStatus::Cancelled
    );
    engine.shutdown().await;
}
