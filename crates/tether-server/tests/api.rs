//! The HTTP API against a real SQLite store, through `tower::ServiceExt::oneshot`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tempfile::TempDir;
use tether_core::Registry;
use tether_engine::{Engine, EngineConfig};
use tether_server::{router, ServerOptions};
use tether_store_sqlite::SqliteStore;
use tower::ServiceExt;

struct Api {
    router: Router,
    engine: Engine,
    _dir: TempDir,
}

async fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    let mut registry = Registry::new();
    tether_examples::register(&mut registry);
    let engine = Engine::start(Arc::new(store), registry, EngineConfig::default());
    Api {
        router: router(engine.clone(), ServerOptions::default()),
        engine,
        _dir: dir,
    }
}

/// Percent-encode every byte outside `[A-Za-z0-9_.~-]`.
fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"_.~-".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Api {
    async fn raw(
        &self,
        method: Method,
        uri: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value, axum::http::HeaderMap) {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Body::from(body)).unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let value: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{uri}: body is not JSON ({e}): {bytes:?}"));
        (status, value, headers)
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        let (s, v, _) = self.raw(Method::GET, uri, Vec::new(), &[]).await;
        (s, v)
    }

    async fn post(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        let (s, v, _) = self
            .raw(Method::POST, uri, body.to_string().into_bytes(), &[])
            .await;
        (s, v)
    }

    async fn start(&self, workflow: &str, input: Value) -> String {
        let (s, v) = self
            .post("/v1/runs", json!({"workflow": workflow, "input": input}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["run_id"].as_str().unwrap().to_string()
    }

    /// Poll the run's hooks until it has at least one.
    async fn hooks_of(&self, run_id: &str) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (s, v) = self.get(&format!("/v1/runs/{run_id}/hooks")).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            let hooks = v.as_array().unwrap().clone();
            if !hooks.is_empty() {
                return hooks;
            }
            assert!(Instant::now() < deadline, "run {run_id} created no hook");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn token_of(&self, run_id: &str) -> String {
        self.hooks_of(run_id).await[0]["token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn wait(&self, run_id: &str) -> Value {
        let (s, v) = self.get(&format!("/v1/runs/{run_id}?wait_ms=30000")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }

    async fn events(&self, run_id: &str) -> Vec<Value> {
        let (s, v) = self.get(&format!("/v1/runs/{run_id}/events")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v.as_array().unwrap().clone()
    }
}

fn assert_error(status: StatusCode, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status.as_u16(), want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

fn is_rfc3339_ms(s: &Value) -> bool {
    let s = s.as_str().unwrap_or("");
    let b = s.as_bytes();
    b.len() == 24
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] == b'.'
        && b[23] == b'Z'
        && s.starts_with("20")
}

fn count(events: &[Value], kind: &str) -> usize {
    events.iter().filter(|e| e["type"] == kind).count()
}

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

async fn api_with(config: EngineConfig) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    let mut registry = Registry::new();
    tether_examples::register(&mut registry);
    let engine = Engine::start(Arc::new(store), registry, config);
    Api {
        router: router(engine.clone(), ServerOptions::default()),
        engine,
        _dir: dir,
    }
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
