//! What the HTTP API tests share (`api.rs`, `api_runs.rs`): a router over a real SQLite store
//! with the bundled examples, driven through `tower::ServiceExt::oneshot`, and the checks of
//! an answer's shape.
#![allow(dead_code)]

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

pub struct Api {
    pub router: Router,
    pub engine: Engine,
    pub _dir: TempDir,
}

pub async fn api() -> Api {
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
pub fn enc(s: &str) -> String {
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
    pub async fn raw(
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

    pub async fn get(&self, uri: &str) -> (StatusCode, Value) {
        let (s, v, _) = self.raw(Method::GET, uri, Vec::new(), &[]).await;
        (s, v)
    }

    pub async fn post(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        let (s, v, _) = self
            .raw(Method::POST, uri, body.to_string().into_bytes(), &[])
            .await;
        (s, v)
    }

    pub async fn start(&self, workflow: &str, input: Value) -> String {
        let (s, v) = self
            .post("/v1/runs", json!({"workflow": workflow, "input": input}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["run_id"].as_str().unwrap().to_string()
    }

    /// Poll the run's hooks until it has at least one.
    pub async fn hooks_of(&self, run_id: &str) -> Vec<Value> {
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

    pub async fn token_of(&self, run_id: &str) -> String {
        self.hooks_of(run_id).await[0]["token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn wait(&self, run_id: &str) -> Value {
        let (s, v) = self.get(&format!("/v1/runs/{run_id}?wait_ms=30000")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }

    pub async fn events(&self, run_id: &str) -> Vec<Value> {
        let (s, v) = self.get(&format!("/v1/runs/{run_id}/events")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v.as_array().unwrap().clone()
    }
}

pub fn assert_error(status: StatusCode, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status.as_u16(), want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

pub fn is_rfc3339_ms(s: &Value) -> bool {
    let s = s.as_str().unwrap_or("");
    let b = s.as_bytes();
    b.len() == 24
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] == b'.'
        && b[23] == b'Z'
        && s.starts_with("20")
}

pub fn count(events: &[Value], kind: &str) -> usize {
    events.iter().filter(|e| e["type"] == kind).count()
}

pub async fn api_with(config: EngineConfig) -> Api {
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
