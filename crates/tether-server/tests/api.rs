//! The HTTP API against a real SQLite store, through `tower::ServiceExt::oneshot`: a run's
//! round trip, hook and routing errors, idempotency keys (more in `api_runs.rs`).

mod api_support;

use std::time::{Duration, Instant};

use api_support::*;
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_round_trip() {
    let api = api().await;
    let run_id = api.start("approval", json!({"order_id": "o-1"})).await;

    let hooks = api.hooks_of(&run_id).await;
    assert_eq!(hooks.len(), 1);
    let hook = &hooks[0];
    assert_eq!(hook["kind"], "hook");
    assert_eq!(hook["metadata"], json!({"order_id": "o-1"}));
    assert!(is_rfc3339_ms(&hook["created_at"]), "{hook}");
    let mut keys: Vec<&String> = hook.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["created_at", "kind", "metadata", "schema", "token"]);
    // The definition publishes its payload's JSON Schema (issue #21): `approved` a boolean,
    // `comment` a string, both required.
    let schema = &hook["schema"];
    assert_eq!(schema["type"], "object", "{schema}");
    assert_eq!(
        schema["properties"]["approved"]["type"], "boolean",
        "{schema}"
    );
    assert_eq!(
        schema["properties"]["comment"]["type"], "string",
        "{schema}"
    );
    let mut required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    required.sort();
    assert_eq!(required, ["approved", "comment"]);
    let token = hook["token"].as_str().unwrap().to_string();

    let (s, v) = api.get(&format!("/v1/hooks/{}", enc(&token))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["run_id"], run_id.as_str());
    assert_eq!(v["token"], token.as_str());
    assert_eq!(v["definition"], "approval.decision");
    assert_eq!(&v["schema"], schema);
    let (s, doc) = api.get("/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        doc["components"]["schemas"]["HookPayload.approval.decision"]["properties"],
        schema["properties"],
        "the OpenAPI document lists the published payload schema"
    );

    let (s, v) = api.get(&format!("/v1/runs/{run_id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "suspended");
    assert_eq!(v["output"], Value::Null);

    let payload = json!({"approved": true, "comment": "ship it", "by": "ann"});
    let (s, v) = api
        .post(&format!("/v1/hooks/{}", enc(&token)), payload.clone())
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v, json!({"run_id": run_id}));

    let run = api.wait(&run_id).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["output"], payload);
    assert_eq!(run["error"], Value::Null);
    assert_eq!(run["workflow"], "approval");
    assert_eq!(run["input"], json!({"order_id": "o-1"}));
    assert!(is_rfc3339_ms(&run["created_at"]), "{run}");
    assert!(is_rfc3339_ms(&run["updated_at"]), "{run}");
    assert_eq!(run["schedule_id"], Value::Null, "not started by a schedule");
    let mut keys: Vec<&String> = run.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "created_at",
            "error",
            "input",
            "output",
            "parent_run_id",
            "queue",
            "run_id",
            "schedule_id",
            "status",
            "updated_at",
            "workflow"
        ]
    );

    // The token is released once the run has ended.
    let (s, v) = api
        .post(&format!("/v1/hooks/{}", enc(&token)), payload)
        .await;
    assert_error(s, &v, 404, "hook_not_found");
    let (s, v) = api.get(&format!("/v1/hooks/{}", enc(&token))).await;
    assert_error(s, &v, 404, "hook_not_found");
    let (s, v) = api.get(&format!("/v1/runs/{run_id}/hooks")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!([]));

    let events = api.events(&run_id).await;
    assert_eq!(events[0]["type"], "run_started");
    assert_eq!(events[0]["seq"], 1);
    assert!(events[0]["at_ms"].is_u64());
    for e in &events {
        assert!(is_rfc3339_ms(&e["at"]), "{e}");
    }
    assert_eq!(count(&events, "hook_created"), 1);
    assert_eq!(count(&events, "hook_received"), 1);
    assert_eq!(events.last().unwrap()["type"], "run_completed");
    api.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hook_errors() {
    let api = api().await;
    let run_id = api.start("approval", json!({"order_id": "o-2"})).await;
    let token = api.token_of(&run_id).await;
    let uri = format!("/v1/hooks/{}", enc(&token));

    // Malformed JSON: serde's message, with the position.
    let (s, v, _) = api
        .raw(Method::POST, &uri, b"{\"approved\": tru".to_vec(), &[])
        .await;
    assert_error(s, &v, 400, "invalid_json");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("line 1 column"), "{msg}");

    // Empty body.
    let (s, v, _) = api.raw(Method::POST, &uri, Vec::new(), &[]).await;
    assert_error(s, &v, 400, "invalid_json");

    // Over the limit (1 MiB by default): 2 MiB.
    let big = format!(
        "{{\"approved\": true, \"comment\": \"{}\"}}",
        "x".repeat(2 << 20)
    );
    let (s, v, _) = api.raw(Method::POST, &uri, big.into_bytes(), &[]).await;
    assert_error(s, &v, 413, "payload_too_large");

    // Failed validation: the reason, and nothing reaches the run.
    let (s, v) = api.post(&uri, json!({"approved": "yes"})).await;
    assert_error(s, &v, 400, "invalid_payload");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("expected a boolean"), "{msg}");
    let (s, v) = api.post(&uri, json!({"approved": true})).await;
    assert_error(s, &v, 400, "invalid_payload");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("comment"),
        "{v}"
    );

    // Unknown tokens, including odd characters.
    for t in ["nope", "slack_messages:C1", "ünï cödé/✓", "%"] {
        let (s, v) = api
            .post(&format!("/v1/hooks/{}", enc(t)), json!({"a": 1}))
            .await;
        assert_error(s, &v, 404, "hook_not_found");
    }
    // A path segment that does not decode to UTF-8.
    let (s, v) = api.post("/v1/hooks/%FF%FE", json!({})).await;
    assert_error(s, &v, 404, "hook_not_found");

    let (s, run) = api.get(&format!("/v1/runs/{run_id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(run["status"], "suspended", "{run}");
    let events = api.events(&run_id).await;
    assert_eq!(count(&events, "hook_received"), 0, "{events:?}");
    assert_eq!(api.hooks_of(&run_id).await.len(), 1);

    // Still resumable afterwards.
    let (s, _) = api
        .post(&uri, json!({"approved": false, "comment": "no"}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let run = api.wait(&run_id).await;
    assert_eq!(run["output"], json!({"approved": false, "comment": "no"}));
    api.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_and_routing_errors() {
    let api = api().await;

    let (s, v) = api
        .post("/v1/runs", json!({"workflow": "nope", "input": {}}))
        .await;
    assert_error(s, &v, 404, "workflow_not_found");

    let (s, v) = api
        .post(
            "/v1/runs",
            json!({"workflow": "approval", "input": {"order": 1}}),
        )
        .await;
    assert_error(s, &v, 400, "invalid_input");
    let (s, v) = api
        .post("/v1/runs", json!({"workflow": "steps", "input": {"n": -1}}))
        .await;
    assert_error(s, &v, 400, "invalid_input");

    let (s, v, _) = api
        .raw(Method::POST, "/v1/runs", b"{\"workflow\":".to_vec(), &[])
        .await;
    assert_error(s, &v, 400, "invalid_json");
    let (s, v) = api.post("/v1/runs", json!({"input": {}})).await;
    assert_error(s, &v, 400, "invalid_json");
    assert!(v["error"]["message"].as_str().unwrap().contains("workflow"));

    // `input` defaults to {}.
    let (s, v) = api.post("/v1/runs", json!({"workflow": "collect"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["run_id"].as_str().unwrap();
    let (_, run) = api.get(&format!("/v1/runs/{id}")).await;
    assert_eq!(run["input"], json!({}));

    for uri in ["/nope", "/v1", "/v1/runs/x/y/z", "/v1/hooks/"] {
        let (s, v) = api.get(uri).await;
        assert_error(s, &v, 404, "not_found");
    }
    let (s, v, headers) = api.raw(Method::DELETE, "/v1/runs", Vec::new(), &[]).await;
    assert_error(s, &v, 405, "method_not_allowed");
    assert!(headers.get("allow").is_some(), "{headers:?}");
    let (s, v, _) = api.raw(Method::PUT, "/v1/hooks/t", Vec::new(), &[]).await;
    assert_error(s, &v, 405, "method_not_allowed");
    let (s, v) = api.post("/healthz", json!({})).await;
    assert_error(s, &v, 405, "method_not_allowed");

    for uri in [
        "/v1/runs/nope",
        "/v1/runs/nope?wait_ms=50",
        "/v1/runs/nope/events",
        "/v1/runs/nope/hooks",
    ] {
        let (s, v) = api.get(uri).await;
        assert_error(s, &v, 404, "run_not_found");
    }
    let (s, v) = api.post("/v1/runs/nope/cancel", json!({})).await;
    assert_error(s, &v, 404, "run_not_found");

    for uri in [
        "/v1/runs?status=bogus",
        "/v1/runs?limit=many",
        "/v1/runs?limit=-1",
        &format!("/v1/runs/{id}?wait_ms=soon"),
    ] {
        let (s, v) = api.get(uri).await;
        assert_error(s, &v, 400, "invalid_query");
    }

    // A short wait on a run that does not end answers after the wait with the run as it is.
    let started = Instant::now();
    let (s, v) = api.get(&format!("/v1/runs/{id}?wait_ms=200")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!v["status"].as_str().unwrap().is_empty());
    assert!(started.elapsed() >= Duration::from_millis(150));
    api.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key() {
    let api = api().await;
    let run_id = api.start("collect", json!({})).await;
    let token = api.token_of(&run_id).await;
    let uri = format!("/v1/hooks/{}", enc(&token));
    let body = json!({"i": 1}).to_string().into_bytes();

    let mut answers = Vec::new();
    for _ in 0..2 {
        let (s, v, _) = api
            .raw(
                Method::POST,
                &uri,
                body.clone(),
                &[("Idempotency-Key", "k-1")],
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        answers.push(v["run_id"].as_str().unwrap().to_string());
    }
    assert_eq!(answers, [run_id.clone(), run_id.clone()]);

    // The same key with another payload: 409, nothing stored (issue #17). Key order and
    // whitespace are not "another payload".
    let (s, v, _) = api
        .raw(
            Method::POST,
            &uri,
            json!({"i": 99}).to_string().into_bytes(),
            &[("Idempotency-Key", "k-1")],
        )
        .await;
    assert_error(s, &v, 409, "idempotency_key_reused");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("another payload") && m.contains("new key")),
        "{v}"
    );
    let (s, v, _) = api
        .raw(
            Method::POST,
            &uri,
            b" { \"i\" : 1 } ".to_vec(),
            &[("Idempotency-Key", "k-1")],
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(count(&api.events(&run_id).await, "hook_received"), 1);

    let (s, _) = api.post(&uri, json!({"i": 2, "done": true})).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let run = api.wait(&run_id).await;
    assert_eq!(
        run["output"],
        json!({"payloads": [{"i": 1}, {"i": 2, "done": true}]})
    );
    let events = api.events(&run_id).await;
    assert_eq!(count(&events, "hook_received"), 2, "{events:?}");

    // A key never used, on a token no hook holds: not found, nothing stored.
    let (s, v, _) = api
        .raw(
            Method::POST,
            &format!("/v1/hooks/{}", enc("never-held")),
            b"{}".to_vec(),
            &[("Idempotency-Key", "k-1")],
        )
        .await;
    assert_error(s, &v, 404, "hook_not_found");

    // A retry after the run ended still gets the first answer.
    let (s, v, _) = api
        .raw(Method::POST, &uri, body, &[("Idempotency-Key", "k-1")])
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["run_id"], run_id.as_str());
    assert_eq!(count(&api.events(&run_id).await, "hook_received"), 2);
    // ... and the same key with another payload is still refused.
    let (s, v, _) = api
        .raw(
            Method::POST,
            &uri,
            b"{}".to_vec(),
            &[("Idempotency-Key", "k-1")],
        )
        .await;
    assert_error(s, &v, 409, "idempotency_key_reused");
    assert_eq!(count(&api.events(&run_id).await, "hook_received"), 2);
    api.engine.shutdown().await;
}
