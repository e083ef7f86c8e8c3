//! The HTTP API against a real SQLite store (continued from `api.rs`): listing and filters,
//! the journal's shape, cancellation, tokens with any characters, evicted runs under
//! concurrent senders, long polls when the server stops.

mod api_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use api_support::*;
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use tether_engine::EngineConfig;
use tether_server::{router, ServerOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters() {
    let api = api().await;
    let s1 = api.start("steps", json!({"n": 2})).await;
    let s2 = api.start("steps", json!({"n": 1})).await;
    let c1 = api.start("collect", json!({})).await;
    for id in [&s1, &s2] {
        assert_eq!(api.wait(id).await["status"], "completed");
    }
    api.hooks_of(&c1).await;

    let ids = |v: &Value| -> Vec<String> {
        v["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["run_id"].as_str().unwrap().to_string())
            .collect()
    };
    let (s, v) = api.get("/v1/runs").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        ids(&v),
        [c1.clone(), s2.clone(), s1.clone()],
        "newest first"
    );
    let (_, v) = api.get("/v1/runs?workflow=steps").await;
    assert_eq!(ids(&v), [s2.clone(), s1.clone()]);
    let (_, v) = api.get("/v1/runs?status=completed&workflow=&limit=").await;
    assert_eq!(ids(&v), [s2.clone(), s1.clone()]);
    let (_, v) = api.get("/v1/runs?status=suspended").await;
    assert_eq!(ids(&v), vec![c1.clone()]);
    assert_eq!(v["runs"][0]["status"], "suspended");
    let (_, v) = api.get("/v1/runs?limit=1&workflow=steps").await;
    assert_eq!(ids(&v), vec![s2.clone()]);
    assert_eq!(v["runs"][0]["output"], json!({"steps": 1}));
    let (_, v) = api.get("/v1/runs?workflow=approval").await;
    assert_eq!(v, json!({"runs": []}));

    let (s, v) = api.get("/v1/workflows").await;
    assert_eq!(s, StatusCode::OK);
    let names = v["workflows"].as_array().unwrap();
    for n in [
        "approval",
        "collect",
        "handoff",
        "slack_bot",
        "steps",
        "timeout_approval",
    ] {
        assert!(names.contains(&json!(n)), "{v}");
    }
    let (s, v) = api.get("/healthz").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!({"ok": true, "backend": "sqlite"}));
    api.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_shape() {
    let api = api().await;
    let id = api.start("steps", json!({"n": 3})).await;
    assert_eq!(api.wait(&id).await["output"], json!({"steps": 3}));
    let events = api.events(&id).await;
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>());
    assert_eq!(events[0]["workflow"], "steps");
    assert_eq!(events[0]["input"], json!({"n": 3}));
    let steps: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "step_completed")
        .collect();
    assert_eq!(steps.len(), 3);
    assert_eq!(steps[0]["name"], "step-0");
    assert_eq!(steps[2]["output"], 2);
    let last = events.last().unwrap();
    assert_eq!(last["type"], "run_completed");
    assert_eq!(last["output"], json!({"steps": 3}));
    api.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_run() {
    let api = api().await;
    let id = api.start("collect", json!({})).await;
    let token = api.token_of(&id).await;

    let (s, v, _) = api
        .raw(
            Method::POST,
            &format!("/v1/runs/{id}/cancel"),
            b"{\"reason\":".to_vec(),
            &[],
        )
        .await;
    assert_error(s, &v, 400, "invalid_json");

    let (s, v) = api
        .post(&format!("/v1/runs/{id}/cancel"), json!({"reason": "test"}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v, json!({"run_id": id}));
    let run = api.wait(&id).await;
    assert_eq!(run["status"], "cancelled", "{run}");
    let events = api.events(&id).await;
    let requested: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "cancel_requested")
        .collect();
    assert_eq!(requested.len(), 1);
    assert_eq!(requested[0]["reason"], "test");

    // Finished: 409; its token is released.
    let (s, v) = api.post(&format!("/v1/runs/{id}/cancel"), json!({})).await;
    assert_error(s, &v, 409, "run_finished");
    let (s, v) = api
        .post(&format!("/v1/hooks/{}", enc(&token)), json!({"i": 1}))
        .await;
    assert_error(s, &v, 404, "hook_not_found");

    // Cancel without a body.
    let id2 = api.start("collect", json!({})).await;
    let (s, _, _) = api
        .raw(
            Method::POST,
            &format!("/v1/runs/{id2}/cancel"),
            Vec::new(),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(api.wait(&id2).await["status"], "cancelled");
    api.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_with_any_characters() {
    let api = api().await;
    let channel = "C1/ü x?#%&";
    let id = api.start("slack_bot", json!({"channel": channel})).await;
    let token = api.token_of(&id).await;
    assert_eq!(token, format!("slack_messages:{channel}"));
    let uri = format!("/v1/hooks/{}", enc(&token));

    let (s, v) = api.get(&uri).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["run_id"], id.as_str());
    for text in ["hello", "/stop"] {
        let (s, v) = api.post(&uri, json!({"text": text})).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    }
    let run = api.wait(&id).await;
    assert_eq!(run["output"], json!({"messages": ["hello"]}));
    api.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evicted_runs_and_concurrent_senders() {
    let api = api_with(EngineConfig {
        max_live_runs: 2,
        ..EngineConfig::default()
    })
    .await;
    let api = Arc::new(api);
    let mut runs = Vec::new();
    for _ in 0..5 {
        let id = api.start("collect", json!({})).await;
        let token = api.token_of(&id).await;
        runs.push((id, token));
    }
    // Round-robin over the runs, so most deliveries hit an evicted run.
    for i in 1..=10 {
        for (_, token) in &runs {
            let (s, v) = api
                .post(&format!("/v1/hooks/{}", enc(token)), json!({"i": i}))
                .await;
            assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        }
    }
    // Then concurrent senders on each token: all accepted, none twice.
    let mut tasks = Vec::new();
    for (_, token) in &runs {
        for j in 0..8 {
            let api = api.clone();
            let uri = format!("/v1/hooks/{}", enc(token));
            tasks.push(tokio::spawn(async move {
                let key = format!("c-{j}");
                let body = json!({"c": j}).to_string().into_bytes();
                let (s, v, _) = api
                    .raw(Method::POST, &uri, body, &[("Idempotency-Key", &key)])
                    .await;
                assert_eq!(s, StatusCode::ACCEPTED, "{v}");
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    for (id, token) in &runs {
        let (s, _) = api
            .post(&format!("/v1/hooks/{}", enc(token)), json!({"done": true}))
            .await;
        assert_eq!(s, StatusCode::ACCEPTED);
        let run = api.wait(id).await;
        assert_eq!(run["status"], "completed", "{run}");
        let payloads = run["output"]["payloads"].as_array().unwrap();
        assert_eq!(payloads.len(), 10 + 8 + 1, "{run}");
        let firsts: Vec<Value> = payloads[..10].to_vec();
        assert_eq!(
            firsts,
            (1..=10).map(|i| json!({"i": i})).collect::<Vec<_>>()
        );
        let mut cs: Vec<u64> = payloads[10..18]
            .iter()
            .map(|p| p["c"].as_u64().unwrap())
            .collect();
        cs.sort();
        assert_eq!(cs, (0..8).collect::<Vec<_>>());
        // The order the workflow saw is the journal's acceptance order.
        let received: Vec<Value> = api
            .events(id)
            .await
            .into_iter()
            .filter(|e| e["type"] == "hook_received")
            .map(|e| e["payload"].clone())
            .collect();
        assert_eq!(&received, payloads);
    }
    // Finished runs leave the cache (their actors stop on their own, so give them a moment).
    let deadline = Instant::now() + Duration::from_secs(10);
    while api.engine.live_runs() > 5 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        api.engine.live_runs() <= 5,
        "{} live",
        api.engine.live_runs()
    );
    api.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polls_answer_when_the_server_stops() {
    let mut api = api().await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    api.router = router(
        api.engine.clone(),
        ServerOptions {
            stopping: Some(stop_rx),
            ..ServerOptions::default()
        },
    );
    let id = api.start("collect", json!({})).await;
    api.hooks_of(&id).await;
    let api = Arc::new(api);
    let poll = {
        let api = api.clone();
        let id = id.clone();
        tokio::spawn(async move { api.get(&format!("/v1/runs/{id}?wait_ms=60000")).await })
    };
    stop_tx.send(true).unwrap();
    let (s, v) = tokio::time::timeout(Duration::from_secs(30), poll)
        .await
        .expect("the long-poll ended with the stop signal")
        .unwrap();
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "suspended");
    api.engine.shutdown().await;
}
