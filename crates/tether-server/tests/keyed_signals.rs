//! `POST /v1/signals/{signal_id}` with an `Idempotency-Key` (issue #17): 32 callers send the
//! same signal with the same key at once; it is delivered once (to a waiting run, or kept
//! once), every caller gets the first answer, and the same key with another payload is
//! `409 idempotency_key_reused`, storing nothing.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::Router;
use serde_json::{json, Value};
use tether_core::event::EventBody;
use tether_engine::Engine;

mod keyed_support;

use keyed_support::{api, post};

const CALLERS: usize = 32;

/// `POST /v1/signals/{signal_id}` with `payload` (and `key`).
async fn send(
    r: &Router,
    signal_id: &str,
    payload: Value,
    key: Option<&str>,
) -> (StatusCode, Value) {
    post(r, &format!("/v1/signals/{signal_id}"), payload, key).await
}

/// `CALLERS` sends of `payload` with `key` at once: every answer.
async fn racing_sends(r: &Router, signal_id: &str, payload: Value, key: &str) -> Vec<Value> {
    let barrier = Arc::new(tokio::sync::Barrier::new(CALLERS));
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (r, barrier, payload) = (r.clone(), barrier.clone(), payload.clone());
            let (signal_id, key) = (signal_id.to_owned(), key.to_owned());
            tokio::spawn(async move {
                barrier.wait().await;
                send(&r, &signal_id, payload, Some(&key)).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        let (status, answer) = task.await.expect("a caller");
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        answers.push(answer);
    }
    answers
}

/// Start a `wait_signal` run on `signal_id` and wait until its wait is in its journal.
async fn waiting_run(r: &Router, engine: &Engine, signal_id: &str) -> String {
    let (status, answer) = post(
        r,
        "/v1/runs",
        json!({"workflow": "wait_signal", "input": {"signal_id": signal_id}}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let run = answer["run_id"].as_str().unwrap_or_default().to_owned();
    for _ in 0..500 {
        let journal = engine.events(&run).await.expect("the run's journal");
        if journal
            .iter()
            .any(|e| matches!(e.body, EventBody::SignalWaited { .. }))
        {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("run {run} never waited on {signal_id}");
}

/// How many `SignalReceived` entries the journal of `run` has.
async fn received(engine: &Engine, run: &str) -> usize {
    engine
        .events(run)
        .await
        .expect("the run's journal")
        .iter()
        .filter(|e| matches!(e.body, EventBody::SignalReceived { .. }))
        .count()
}

async fn output(engine: &Engine, run: &str) -> Option<Value> {
    engine
        .wait_for_run(run, Duration::from_secs(20))
        .await
        .expect("the run ends")
        .output
}

fn refused_code(answer: &(StatusCode, Value)) -> (StatusCode, Value) {
    (answer.0, answer.1["error"]["code"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_keyed_sends_deliver_once_to_the_waiting_run() {
    let (r, engine, _dir) = api().await;
    let first = waiting_run(&r, &engine, "order-7").await;
    let second = waiting_run(&r, &engine, "order-7").await;

    let answers = racing_sends(&r, "order-7", json!({"paid": 1}), "pay-1").await;
    let distinct: HashSet<String> = answers.iter().map(Value::to_string).collect();
    assert_eq!(
        distinct.into_iter().collect::<Vec<_>>(),
        vec![json!({"signal_id": "order-7", "delivered_to": first}).to_string()],
        "every caller gets the first answer: the oldest waiting run"
    );
    assert_eq!(output(&engine, &first).await, Some(json!({"paid": 1})));
    assert_eq!(received(&engine, &first).await, 1, "delivered once");
    assert_eq!(
        received(&engine, &second).await,
        0,
        "the other waiting run got nothing from the repeats"
    );

    let other = send(&r, "order-7", json!({"paid": 2}), Some("pay-1")).await;
    assert_eq!(
        refused_code(&other),
        (StatusCode::CONFLICT, json!("idempotency_key_reused"))
    );
    assert_eq!(
        received(&engine, &second).await,
        0,
        "a refused send stores nothing"
    );

    // The second run still waits: a new key reaches it.
    let (status, answer) = send(&r, "order-7", json!({"paid": 3}), Some("pay-2")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(answer["delivered_to"], json!(second));
    assert_eq!(output(&engine, &second).await, Some(json!({"paid": 3})));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_keyed_sends_keep_one_signal() {
    let (r, engine, _dir) = api().await;
    let answers = racing_sends(&r, "later", json!(42), "k").await;
    assert!(
        answers
            .iter()
            .all(|a| *a == json!({"signal_id": "later", "delivered_to": null})),
        "every caller: kept ({answers:?})"
    );
    let other = send(&r, "later", json!(43), Some("k")).await;
    assert_eq!(
        refused_code(&other),
        (StatusCode::CONFLICT, json!("idempotency_key_reused"))
    );

    // One signal was kept: the first wait takes it, the second finds nothing.
    let first = waiting_run(&r, &engine, "later").await;
    assert_eq!(output(&engine, &first).await, Some(json!(42)));
    let second = waiting_run(&r, &engine, "later").await;
    let (status, answer) = send(&r, "later", json!(44), None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        answer["delivered_to"],
        json!(second),
        "nothing else was kept: the second run was still waiting"
    );
    assert_eq!(output(&engine, &second).await, Some(json!(44)));

    // The first answer stands after the kept signal was taken.
    let (status, answer) = send(&r, "later", json!(42), Some("k")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(answer, json!({"signal_id": "later", "delivered_to": null}));
    engine.shutdown().await;
}
