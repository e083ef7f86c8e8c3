//! `POST /v1/hooks/{token}/resume-or-start` over HTTP (issue #17 point 3): 32 callers post a
//! payload for the token of a run that does not exist yet, at once; one run is started and
//! receives every payload once; a retry with the same `Idempotency-Key` stores nothing new;
//! once the token is free, another input for the run it names is `409 run_exists`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::Router;
use serde_json::{json, Value};

mod keyed_support;

use keyed_support::api;

const CALLERS: usize = 32;
const URI: &str = "/v1/hooks/slack_messages:ops/resume-or-start";

async fn post(r: &Router, body: Value, key: Option<&str>) -> (StatusCode, Value) {
    keyed_support::post(r, URI, body, key).await
}

fn body(text: &str, channel: &str) -> Value {
    json!({"payload": {"text": text}, "workflow": "slack_bot", "input": {"channel": channel}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_posts_start_one_run_that_gets_every_payload_once() {
    let (r, engine, _dir) = api().await;
    let barrier = Arc::new(tokio::sync::Barrier::new(CALLERS));
    let tasks: Vec<_> = (0..CALLERS)
        .map(|i| {
            let (r, barrier) = (r.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                post(&r, body(&format!("m{i}"), "ops"), Some(&format!("k{i}"))).await
            })
        })
        .collect();
    let mut runs = HashSet::new();
    let mut started = 0;
    for task in tasks {
        let (status, answer) = task.await.expect("a caller");
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        runs.insert(answer["run_id"].as_str().unwrap_or_default().to_owned());
        started += usize::from(answer["started"] == json!(true));
    }
    assert_eq!(runs.len(), 1, "one run: {runs:?}");
    assert_eq!(started, 1, "one caller started it");
    let run = runs.into_iter().next().unwrap_or_default();

    // A retry with the same key and payload: the same answer, nothing stored.
    let (status, answer) = post(&r, body("m0", "ops"), Some("k0")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(answer["run_id"], json!(run));
    // The same key with another payload is refused.
    let (status, answer) = post(&r, body("other", "ops"), Some("k0")).await;
    assert_eq!(
        (status, answer["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("idempotency_key_reused"))
    );

    let (status, _) = post(&r, body("/stop", "ops"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let done = engine
        .wait_for_run(&run, Duration::from_secs(20))
        .await
        .expect("the run");
    let mut messages: Vec<String> = done
        .output
        .as_ref()
        .and_then(|o| o["messages"].as_array())
        .map(|m| {
            m.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    messages.sort();
    let mut expected: Vec<String> = (0..CALLERS).map(|i| format!("m{i}")).collect();
    expected.sort();
    assert_eq!(messages, expected, "every payload once: {done:?}");
    // The token is free again, and the run it names exists with another input: refused.
    let (status, answer) = post(&r, body("x", "elsewhere"), None).await;
    assert_eq!(
        (status, answer["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("run_exists"))
    );
    engine.shutdown().await;
}
