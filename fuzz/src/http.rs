//! The whole HTTP API on a real (SQLite) store: any request the router receives is answered
//! without a 5xx, and every error is a JSON `{"error": {"code", "message"}}`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request};
use tether_core::Registry;
use tether_engine::{Engine, EngineConfig};
use tether_server::{router, Router, ServerOptions};
use tether_store_sqlite::SqliteStore;
use tower::ServiceExt;

struct Api {
    runtime: tokio::runtime::Runtime,
    router: Router,
    _dir: tempfile::TempDir,
}

fn api() -> &'static Api {
    static API: OnceLock<Api> = OnceLock::new();
    API.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("fuzz.db").display().to_string();
        let router = runtime.block_on(async {
            let store = SqliteStore::open(&path).await.expect("store");
            let mut registry = Registry::new();
            tether_examples::register(&mut registry);
            let config = EngineConfig {
                max_payload_bytes: 64 * 1024,
                ..EngineConfig::default()
            };
            let engine = Engine::start(Arc::new(store), registry, config);
            let options = ServerOptions {
                max_wait: Duration::from_millis(1),
                ..ServerOptions::default()
            };
            router(engine, options)
        });
        Api {
            runtime,
            router,
            _dir: dir,
        }
    })
}

const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "X",
];

/// Paths the fuzzer starts from; the bytes it adds make the rest.
const PREFIXES: &[&str] = &[
    "/v1/runs",
    "/v1/runs/",
    "/v1/hooks/",
    "/v1/signals/",
    "/.well-known/workflow/v1/webhook/",
    "/healthz",
    "/v1/workflows",
    "/",
];

/// First byte: method and path prefix; then the rest of the path (up to `\n`, may hold a
/// query), header lines up to an empty line, and the body.
pub fn http_request(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let method = METHODS[usize::from(first & 7)];
    let prefix = PREFIXES[usize::from(first >> 3) % PREFIXES.len()];
    let (path, rest) = super::split(rest, b'\n');
    let mut uri = prefix.as_bytes().to_vec();
    uri.extend_from_slice(path);
    let Ok(uri) = axum::http::Uri::try_from(uri) else {
        return;
    };
    // Long-polls and streams are not what this target is about.
    if uri.path().ends_with("/stream") || uri.query().is_some_and(|q| q.contains("wait_ms")) {
        return;
    }
    let framed = [b"\n\n", rest].concat();
    let (_, _, headers, body) = super::parse_request(&framed);
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return;
    };
    let mut req = Request::builder().method(method).uri(uri);
    for (name, value) in &headers {
        req = req.header(name, value);
    }
    let Ok(req) = req.body(Body::from(body.to_vec())) else {
        return;
    };
    // A `HEAD` answer has no body by definition (found by this target: not a bug).
    let head = req.method() == Method::HEAD;
    let api = api();
    api.runtime.block_on(async {
        let resp = api.router.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        assert!(!status.is_server_error(), "a server error: {status}");
        if status.is_client_error() && !head {
            let json = resp
                .headers()
                .get("content-type")
                .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .expect("error body");
            let v: serde_json::Value =
                serde_json::from_slice(&bytes).expect("an error body is JSON");
            assert!(json, "an error answered as JSON");
            assert!(v["error"]["code"].is_string() && v["error"]["message"].is_string());
        }
    });
}
