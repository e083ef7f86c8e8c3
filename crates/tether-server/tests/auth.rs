//! `ServerOptions::api_token`: `/v1/...` needs the bearer token; `/healthz` and webhook URLs
//! do not.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use serde_json::Value;
use tether_core::Registry;
use tether_engine::{Engine, EngineConfig};
use tether_server::{router, ServerOptions};
use tether_store_sqlite::SqliteStore;
use tower::ServiceExt;

async fn guarded(dir: &tempfile::TempDir, token: Option<&str>) -> Router {
    let path = dir.path().join("t.db");
    let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    let mut registry = Registry::new();
    tether_examples::register(&mut registry);
    let engine = Engine::start(Arc::new(store), registry, EngineConfig::default());
    let options = ServerOptions {
        api_token: token.map(str::to_string),
        ..ServerOptions::default()
    };
    router(engine, options)
}

async fn call(router: &Router, method: &str, uri: &str, auth: Option<&str>) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = router
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    if status == StatusCode::UNAUTHORIZED {
        assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    }
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn token_required_on_v1_only() {
    let dir = tempfile::tempdir().unwrap();
    let r = guarded(&dir, Some("s3cret")).await;
    for auth in [
        None,
        Some("Bearer s3cre"),
        Some("Bearer s3cretX"),
        Some("Basic s3cret"),
    ] {
        let (status, body) = call(&r, "GET", "/v1/runs", auth).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(body["error"]["code"], "unauthorized");
        // Never echo what was sent.
        assert!(!body.to_string().contains("s3cre"), "{body}");
    }
    let (status, _) = call(&r, "GET", "/v1/runs", Some("Bearer s3cret")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&r, "GET", "/v1/runs", Some("bearer s3cret")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&r, "GET", "/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
    // A webhook URL is reached without the API token (unknown token: 404, not 401).
    let (status, _) = call(&r, "POST", "/.well-known/workflow/v1/webhook/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn no_token_configured_means_open() {
    let dir = tempfile::tempdir().unwrap();
    let r = guarded(&dir, None).await;
    let (status, _) = call(&r, "GET", "/v1/runs", None).await;
    assert_eq!(status, StatusCode::OK);
}
