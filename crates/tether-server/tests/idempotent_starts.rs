//! Exactly-once starts and spawns (issue #17 point 3): `POST /v1/runs` with a caller-chosen
//! `run_id` or an `Idempotency-Key`, and `POST /v1/runs/{id}/hooks` with an `Idempotency-Key`,
//! sent by 32 callers at once, make one run (one thread); every caller gets its id; the same
//! id or key with another input is refused with `409` and stores nothing.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::Router;
use serde_json::{json, Value};
use tether_engine::{Engine, StartOptions};
use tether_store::RunFilter;

mod keyed_support;

use keyed_support::{api, post};

/// Callers racing on one id or key.
const CALLERS: usize = 32;

/// `CALLERS` posts of `body` to `uri` at once; their answers.
async fn race(r: &Router, uri: &str, body: Value, key: Option<&str>) -> Vec<(StatusCode, Value)> {
    let barrier = Arc::new(tokio::sync::Barrier::new(CALLERS));
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (r, uri, body, barrier) =
                (r.clone(), uri.to_owned(), body.clone(), barrier.clone());
            let key = key.map(str::to_owned);
            tokio::spawn(async move {
                barrier.wait().await;
                post(&r, &uri, body, key.as_deref()).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("a caller"));
    }
    answers
}

/// One `created` answer, the others `again`, all naming the same id (under `field`).
fn one_created(answers: &[(StatusCode, Value)], created: StatusCode, field: &str) -> String {
    let made = answers.iter().filter(|(s, _)| *s == created).count();
    let again = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    assert_eq!((made, again), (1, CALLERS - 1), "{answers:?}");
    let id = answers[0].1[field].as_str().expect("an id").to_owned();
    assert!(
        answers.iter().all(|(_, v)| v[field] == json!(id)),
        "{answers:?}"
    );
    id
}

async fn runs_of(engine: &Engine, workflow: &str) -> usize {
    let filter = RunFilter {
        workflow: Some(workflow.into()),
        limit: 1000,
        ..RunFilter::default()
    };
    engine
        .store()
        .list_runs(&filter)
        .await
        .expect("list runs")
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn starts_with_a_chosen_run_id_make_one_run() {
    let (r, engine, _dir) = api().await;
    let body = json!({"workflow": "approval", "input": {"order_id": "o-1"}, "run_id": "order-o-1"});
    let answers = race(&r, "/v1/runs", body, None).await;
    assert_eq!(
        one_created(&answers, StatusCode::CREATED, "run_id"),
        "order-o-1"
    );
    assert_eq!(runs_of(&engine, "approval").await, 1);

    // Another input (or workflow) under the id: refused, nothing stored.
    let (s, v) = post(
        &r,
        "/v1/runs",
        json!({"workflow": "approval", "input": {"order_id": "o-2"}, "run_id": "order-o-1"}),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "run_exists", "{v}");
    let (s, v) = post(
        &r,
        "/v1/runs",
        json!({"workflow": "collect", "input": {}, "run_id": "order-o-1"}),
        None,
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("run_exists"))
    );
    assert_eq!(runs_of(&engine, "approval").await, 1);
    assert_eq!(runs_of(&engine, "collect").await, 0);

    // An id that cannot name a run.
    let (s, v) = post(
        &r,
        "/v1/runs",
        json!({"workflow": "collect", "input": {}, "run_id": ""}),
        None,
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_input"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn starts_with_an_idempotency_key_make_one_run() {
    let (r, engine, _dir) = api().await;
    let body = json!({"workflow": "collect", "input": {"n": 1}});
    let answers = race(&r, "/v1/runs", body.clone(), Some("start-1")).await;
    let run_id = one_created(&answers, StatusCode::CREATED, "run_id");
    assert_eq!(run_id, StartOptions::run_id_for_key("start-1"));
    assert_eq!(runs_of(&engine, "collect").await, 1);

    let (s, v) = post(
        &r,
        "/v1/runs",
        json!({"workflow": "collect", "input": {"n": 2}}),
        Some("start-1"),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "idempotency_key_reused", "{v}");
    assert_eq!(runs_of(&engine, "collect").await, 1);

    // Another key is another run; no key is a new run every time.
    let (s, v) = post(&r, "/v1/runs", body.clone(), Some("start-2")).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_ne!(v["run_id"], json!(run_id));
    for _ in 0..2 {
        let (s, _) = post(&r, "/v1/runs", body.clone(), None).await;
        assert_eq!(s, StatusCode::CREATED);
    }
    assert_eq!(runs_of(&engine, "collect").await, 4);
}

/// Start an `enrich` run that waits (for threads to be spawned into it); its id.
async fn start_enrich(r: &Router) -> String {
    let (s, v) = post(
        r,
        "/v1/runs",
        json!({"workflow": "enrich", "input": {"name": "ana", "wait": true}}),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["run_id"].as_str().expect("a run id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spawns_with_an_idempotency_key_make_one_thread() {
    let (r, engine, _dir) = api().await;
    let run = start_enrich(&r).await;
    let uri = format!("/v1/runs/{run}/hooks");
    let body = json!({"workflow_name": "enrich_hook", "args": {}});
    let answers = race(&r, &uri, body, Some("spawn-1")).await;
    let hook_id = one_created(&answers, StatusCode::ACCEPTED, "hook_id");
    let threads = engine.threads(&run).await.expect("threads");
    let spawned: Vec<_> = threads.iter().filter(|t| t.run_id == hook_id).collect();
    assert_eq!(spawned.len(), 1, "{threads:?}");
    let from_outside = threads.iter().filter(|t| t.run_id.contains(".k")).count();
    assert_eq!(from_outside, 1, "one thread for the key: {threads:?}");

    let (s, v) = post(
        &r,
        &uri,
        json!({"workflow_name": "enrich_hook", "args": {"other": true}}),
        Some("spawn-1"),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "idempotency_key_reused", "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_keyed_spawn_retried_after_its_run_ended_gets_its_first_answer() {
    let (r, engine, _dir) = api().await;
    let run = start_enrich(&r).await;
    let uri = format!("/v1/runs/{run}/hooks");
    let body = json!({"workflow_name": "enrich_hook", "args": {}});
    let (s, first) = post(&r, &uri, body.clone(), Some("spawn-late")).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{first}");

    engine.cancel_run(&run, None).await.expect("cancel");
    let ended = engine
        .wait_for_run(&run, std::time::Duration::from_secs(10))
        .await
        .expect("the run ends");
    assert!(ended.status.is_terminal(), "{ended:?}");

    // The retry (the first answer was lost on its way back) names the same thread.
    let (s, again) = post(&r, &uri, body.clone(), Some("spawn-late")).await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["hook_id"], first["hook_id"], "{again}");
    // Another payload under the key is still refused as a reused key...
    let (s, v) = post(
        &r,
        &uri,
        json!({"workflow_name": "enrich_hook", "args": {"other": true}}),
        Some("spawn-late"),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "idempotency_key_reused", "{v}");
    // ...and a new key is told the run has ended.
    let (s, v) = post(&r, &uri, body, Some("spawn-new")).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "run_finished", "{v}");
}
