//! SQLite out of space and read-only, through the HTTP API: the caller gets a clear error
//! (`507 storage_full`, `503 storage_read_only`) and nothing of the refused request is kept;
//! reads go on; the file stays sound (`PRAGMA integrity_check`); once space returns (or writes
//! are allowed again) the service resumes and every payload accepted before is there, once,
//! in order.
//!
//! A full disk is made with `PRAGMA max_page_count` on the store's writer connection
//! ([`SqliteStore::set_max_pages`]): SQLite then answers `SQLITE_FULL`, as on a full disk. A
//! read-only database with `PRAGMA query_only` ([`SqliteStore::set_read_only`]): the tests
//! run as root, which ignores file permissions.

use std::sync::Arc;
use std::time::Duration;

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
    store: SqliteStore,
    path: std::path::PathBuf,
    _dir: TempDir,
}

async fn api() -> Api {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.db");
    let store = SqliteStore::open(path.to_str().expect("utf-8 path"))
        .await
        .expect("open store");
    let mut registry = Registry::new();
    tether_examples::register(&mut registry);
    let config = EngineConfig {
        retry_delay: Duration::from_millis(50),
        poll_interval: Duration::from_millis(50),
        ..EngineConfig::default()
    };
    let engine = Engine::start(Arc::new(store.clone()), registry, config);
    Api {
        router: router(engine.clone(), ServerOptions::default()),
        engine,
        store,
        path,
        _dir: dir,
    }
}

impl Api {
    async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
        key: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = req.body(Body::from(body)).expect("request");
        let resp = self.router.clone().oneshot(req).await.expect("response");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body");
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{uri}: body is not JSON ({e}): {bytes:?}"));
        (status, value)
    }

    async fn start_collect(&self) -> (String, String) {
        let (s, v) = self
            .call(
                Method::POST,
                "/v1/runs",
                Some(json!({"workflow": "collect", "input": {}})),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let run_id = v["run_id"].as_str().expect("run_id").to_string();
        let hook = self
            .engine
            .hooks(&run_id)
            .await
            .expect("hooks")
            .into_iter()
            .next()
            .expect("collect waits on a hook");
        (run_id, hook.token)
    }

    async fn resume(&self, token: &str, payload: &Value, key: &str) -> (StatusCode, Value) {
        let uri = format!("/v1/hooks/{token}");
        self.call(Method::POST, &uri, Some(payload.clone()), Some(key))
            .await
    }

    /// Send payload `k` until it is accepted (the store may still be failing for a moment).
    async fn resume_until_accepted(&self, token: &str, k: u64, payload: &Value) {
        for _ in 0..200 {
            let (s, v) = self.resume(token, payload, &format!("p-{k}")).await;
            if s == StatusCode::ACCEPTED {
                return;
            }
            assert!(s.is_server_error(), "payload {k}: {s} {v}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("payload {k} never accepted");
    }

    async fn finished(&self, run_id: &str) -> Value {
        let run = self
            .engine
            .wait_for_run(run_id, Duration::from_secs(30))
            .await
            .expect("wait for run");
        assert!(run.status.is_terminal(), "{run:?}");
        let (s, v) = self
            .call(Method::GET, &format!("/v1/runs/{run_id}"), None, None)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }

    /// `PRAGMA integrity_check` on a connection of its own.
    fn integrity(&self) -> String {
        let conn = rusqlite::Connection::open(&self.path).expect("open for check");
        conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("integrity_check")
    }

    fn page_count(&self) -> u64 {
        let conn = rusqlite::Connection::open(&self.path).expect("open for page_count");
        conn.query_row("PRAGMA page_count", [], |r| r.get(0))
            .expect("page_count")
    }
}

/// Payload `k` of `last`, padded so that each one needs new pages.
fn payload(k: u64, last: u64) -> Value {
    let pad = "x".repeat(48 * 1024);
    if k == last {
        json!({"i": k, "pad": pad, "done": true})
    } else {
        json!({"i": k, "pad": pad})
    }
}

fn received(run: &Value) -> Vec<u64> {
    run["output"]["payloads"]
        .as_array()
        .expect("payloads")
        .iter()
        .map(|p| p["i"].as_u64().expect("i"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_a_clear_error_and_service_resumes_when_space_returns() {
    const LAST: u64 = 40;
    let api = api().await;
    let (run_id, token) = api.start_collect().await;
    for k in 1..=3 {
        let (s, v) = api
            .resume(&token, &payload(k, LAST), &format!("p-{k}"))
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    }

    // Hold the file at (about) its size now: payloads go on until one needs a page more.
    let pages = api.page_count();
    let cap = api.store.set_max_pages(Some(pages)).await.expect("cap");
    assert!(cap >= pages, "cap {cap} < {pages}");
    let mut refused = None;
    for k in 4..LAST {
        let (s, v) = api
            .resume(&token, &payload(k, LAST), &format!("p-{k}"))
            .await;
        if s == StatusCode::ACCEPTED {
            continue;
        }
        assert_eq!(s, StatusCode::INSUFFICIENT_STORAGE, "payload {k}: {v}");
        assert_eq!(v["error"]["code"], "storage_full", "{v}");
        let message = v["error"]["message"].as_str().expect("message");
        assert!(message.contains("full"), "{message}");
        refused = Some(k);
        break;
    }
    let refused = refused.expect("the capped database never filled up");

    // Reads go on.
    let (s, v) = api
        .call(
            Method::GET,
            &format!("/v1/runs/{run_id}/events"),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let kept = v
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "hook_received")
        .count() as u64;
    assert_eq!(kept, refused - 1, "only the accepted payloads are kept");
    assert_eq!(api.integrity(), "ok");

    // Space returns: the refused payload (same key) and the rest go through.
    api.store.set_max_pages(None).await.expect("lift the cap");
    for k in refused..=LAST {
        api.resume_until_accepted(&token, k, &payload(k, LAST))
            .await;
    }
    let run = api.finished(&run_id).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(received(&run), (1..=LAST).collect::<Vec<_>>());
    assert_eq!(api.integrity(), "ok");
    eprintln!("capped at {cap} pages; payload {refused} was the first refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_database_is_a_clear_error_and_writes_resume_after() {
    const LAST: u64 = 6;
    let api = api().await;
    let (run_id, token) = api.start_collect().await;
    for k in 1..=2 {
        let (s, v) = api
            .resume(&token, &payload(k, LAST), &format!("p-{k}"))
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    }

    api.store.set_read_only(true).await.expect("read-only");
    let (s, v) = api.resume(&token, &payload(3, LAST), "p-3").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["error"]["code"], "storage_read_only", "{v}");
    let message = v["error"]["message"].as_str().expect("message");
    assert!(message.contains("read"), "{message}");
    let (s, v) = api
        .call(
            Method::POST,
            "/v1/runs",
            Some(json!({"workflow": "collect", "input": {}})),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["error"]["code"], "storage_read_only", "{v}");
    // Reads go on.
    let (s, v) = api
        .call(Method::GET, &format!("/v1/runs/{run_id}"), None, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "suspended", "{v}");
    assert_eq!(api.integrity(), "ok");

    api.store
        .set_read_only(false)
        .await
        .expect("writable again");
    for k in 3..=LAST {
        api.resume_until_accepted(&token, k, &payload(k, LAST))
            .await;
    }
    let run = api.finished(&run_id).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(received(&run), (1..=LAST).collect::<Vec<_>>());
    assert_eq!(api.integrity(), "ok");
}
