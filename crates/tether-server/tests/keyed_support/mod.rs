//! What the tests of keyed requests share (`idempotent_starts.rs`, `resume_or_start.rs`,
//! `keyed_signals.rs`): a router over a real SQLite engine with the bundled examples, and a
//! JSON `POST` with an optional `Idempotency-Key`.
#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use serde_json::Value;
use tempfile::TempDir;
use tether_core::Registry;
use tether_engine::{Engine, EngineConfig};
use tether_server::{router, ServerOptions};
use tether_store_sqlite::SqliteStore;
use tower::ServiceExt;

/// The API over a fresh SQLite file (kept until the `TempDir` is dropped).
pub async fn api() -> (Router, Engine, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("t.db");
    let store = SqliteStore::open(&path.display().to_string())
        .await
        .expect("open store");
    let mut registry = Registry::new();
    tether_examples::register(&mut registry);
    let engine = Engine::start(Arc::new(store), registry, EngineConfig::default());
    (
        router(engine.clone(), ServerOptions::default()),
        engine,
        dir,
    )
}

/// `POST uri` with `body` as JSON (and `key` as the `Idempotency-Key`): status and JSON answer.
pub async fn post(r: &Router, uri: &str, body: Value, key: Option<&str>) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(key) = key {
        req = req.header("Idempotency-Key", key);
    }
    let req = req.body(Body::from(body.to_string())).expect("a request");
    let resp = r.clone().oneshot(req).await.expect("an answer");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("a body");
    (status, serde_json::from_slice(&bytes).expect("a JSON body"))
}
