//! `GET /metrics` on a real server (TCP, SQLite): resumes accepted and refused move the right
//! counters by the right amounts, runs are counted by workflow and status, every metric is
//! named `tether_…`, and the route sits behind the API token when one is set.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tempfile::TempDir;
use tether_core::Registry;
use tether_engine::{Engine, EngineConfig};
use tether_server::{router, serve, ServerOptions};
use tether_store_sqlite::SqliteStore;

/// Largest payload the test server accepts, small so that a 413 is cheap to provoke.
const LIMIT: usize = 2048;

struct Server {
    url: String,
    http: reqwest::Client,
    token: Option<String>,
    _engine: Engine,
    _dir: TempDir,
}

async fn server(api_token: Option<&str>) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.db");
    let store = SqliteStore::open(path.to_str().expect("utf-8 path"))
        .await
        .expect("open store");
    let mut registry = Registry::new();
    tether_examples::register(&mut registry);
    let config = EngineConfig {
        max_payload_bytes: LIMIT,
        // Count runs at every scrape (the test scrapes twice in quick succession).
        run_count_max_age: Duration::ZERO,
        ..EngineConfig::default()
    };
    let engine = Engine::start(Arc::new(store), registry, config);
    let options = ServerOptions {
        api_token: api_token.map(str::to_owned),
        ..ServerOptions::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("local addr"));
    let app = router(engine.clone(), options);
    tokio::spawn(serve(listener, app, std::future::pending()));
    Server {
        url,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
        token: api_token.map(str::to_owned),
        _engine: engine,
        _dir: dir,
    }
}

impl Server {
    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.url));
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    async fn json(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.req(method, path);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.expect("json answer")
    }

    async fn start(&self, workflow: &str, input: Value) -> String {
        let body = json!({ "workflow": workflow, "input": input });
        let answer = self
            .json(reqwest::Method::POST, "/v1/runs", Some(body))
            .await;
        answer["run_id"].as_str().expect("run_id").to_owned()
    }

    async fn token_of(&self, run_id: &str) -> String {
        let hooks = self
            .json(
                reqwest::Method::GET,
                &format!("/v1/runs/{run_id}/hooks"),
                None,
            )
            .await;
        hooks[0]["token"].as_str().expect("a hook token").to_owned()
    }

    /// POST raw bytes to a hook; returns the status and the error code, if any.
    async fn resume(&self, token: &str, body: &[u8], key: Option<&str>) -> (u16, String) {
        let mut req = self
            .req(reqwest::Method::POST, &format!("/v1/hooks/{}", enc(token)))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        let resp = req.send().await.expect("resume");
        let status = resp.status().as_u16();
        let answer: Value = resp.json().await.unwrap_or(Value::Null);
        let code = answer["error"]["code"].as_str().unwrap_or("").to_owned();
        (status, code)
    }

    /// Scrape `/metrics`: every sample, keyed by `name{labels}`.
    async fn scrape(&self) -> HashMap<String, f64> {
        let resp = self
            .req(reqwest::Method::GET, "/metrics")
            .send()
            .await
            .expect("scrape");
        assert_eq!(resp.status().as_u16(), 200);
        let content_type = resp.headers()["content-type"]
            .to_str()
            .expect("content type")
            .to_owned();
        assert!(content_type.contains("text"), "{content_type}");
        parse(&resp.text().await.expect("text"))
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

/// Parse the text format; panics on a line that is not `# ...` or `name[{labels}] value`, and
/// on a metric not named `tether_…`.
fn parse(text: &str) -> HashMap<String, f64> {
    assert!(text.ends_with("# EOF\n"), "no # EOF at the end:\n{text}");
    let mut samples = HashMap::new();
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut words = comment.split(' ');
            let kind = words.next().unwrap_or_default();
            if matches!(kind, "TYPE" | "HELP" | "UNIT") {
                let name = words.next().unwrap_or_default();
                assert!(
                    name.starts_with("tether_"),
                    "metric not named tether_…: {line}"
                );
            }
            continue;
        }
        let (key, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample line: {line:?}"));
        assert!(
            key.starts_with("tether_"),
            "sample not named tether_…: {line}"
        );
        let value: f64 = value
            .parse()
            .unwrap_or_else(|e| panic!("bad value in {line:?}: {e}"));
        samples.insert(key.to_owned(), value);
    }
    samples
}

/// A sample's value, 0 when absent.
fn get(samples: &HashMap<String, f64>, key: &str) -> f64 {
    samples.get(key).copied().unwrap_or(0.0)
}

/// How much a sample moved between two scrapes.
fn delta(before: &HashMap<String, f64>, after: &HashMap<String, f64>, key: &str) -> f64 {
    get(after, key) - get(before, key)
}

#[tokio::test]
async fn resumes_move_the_counters_by_the_right_amounts() {
    let s = server(None).await;
    let before = s.scrape().await;
    for key in [
        "tether_resumes_accepted_total",
        "tether_journal_commit_seconds_count",
        "tether_journal_commit_ops_count",
        "tether_resume_wake_seconds_count",
        "tether_live_runs",
        "tether_live_run_cache_hits_total",
        "tether_live_run_cache_misses_total",
        "tether_lease_takeovers_total",
        "tether_resumes_refused_total{reason=\"hook_not_found\"}",
    ] {
        assert!(
            before.contains_key(key),
            "{key} missing from the first scrape"
        );
    }

    let collect = s.start("collect", json!({})).await;
    let approval = s.start("approval", json!({ "order_id": "o-1" })).await;
    let collect_token = s.token_of(&collect).await;
    let approval_token = s.token_of(&approval).await;

    // Accepted: 4 answers of 202, one of them an idempotent retry (3 payloads stored).
    assert_eq!(
        s.resume(&collect_token, br#"{"n":1}"#, Some("k1")).await.0,
        202
    );
    assert_eq!(
        s.resume(&collect_token, br#"{"n":1}"#, Some("k1")).await.0,
        202
    );
    assert_eq!(s.resume(&collect_token, br#"{"n":2}"#, None).await.0, 202);
    // Refused: 2 unknown tokens, 1 invalid JSON, 1 too large, 1 failing the hook's type.
    for token in ["no-such-token", "another-unknown"] {
        assert_eq!(
            s.resume(token, b"{}", None).await,
            (404, "hook_not_found".into())
        );
    }
    assert_eq!(
        s.resume(&collect_token, b"{not json", None).await,
        (400, "invalid_json".into())
    );
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(LIMIT));
    assert_eq!(
        s.resume(&collect_token, big.as_bytes(), None).await,
        (413, "payload_too_large".into())
    );
    assert_eq!(
        s.resume(&approval_token, br#"{"approved":"yes"}"#, None)
            .await,
        (400, "invalid_payload".into())
    );
    assert_eq!(
        s.resume(&collect_token, br#"{"done":true}"#, None).await.0,
        202
    );
    let ended = s
        .json(
            reqwest::Method::GET,
            &format!("/v1/runs/{collect}?wait_ms=20000"),
            None,
        )
        .await;
    assert_eq!(ended["status"], "completed", "{ended}");

    let after = s.scrape().await;
    let moved = |key: &str| delta(&before, &after, key);
    assert_eq!(moved("tether_resumes_accepted_total"), 4.0);
    for (reason, n) in [
        ("hook_not_found", 2.0),
        ("invalid_json", 1.0),
        ("payload_too_large", 1.0),
        ("invalid_payload", 1.0),
        ("run_finished", 0.0),
    ] {
        let key = format!("tether_resumes_refused_total{{reason=\"{reason}\"}}");
        assert_eq!(moved(&key), n, "{key}");
    }
    // Three payloads were stored and the run applied each one (it completed on the last).
    assert_eq!(moved("tether_resume_wake_seconds_count"), 3.0);
    assert!(moved("tether_resume_wake_seconds_sum") > 0.0);
    assert_eq!(
        get(&after, "tether_resume_wake_seconds_bucket{le=\"+Inf\"}"),
        get(&after, "tether_resume_wake_seconds_count")
    );
    // Group commits: at least the two creations and the three stored payloads.
    assert!(moved("tether_journal_commit_seconds_count") >= 5.0);
    assert!(moved("tether_journal_commit_ops_sum") >= 5.0);
    assert_eq!(
        moved("tether_journal_commit_seconds_count"),
        moved("tether_journal_commit_ops_count")
    );
    // The payloads found their run live in memory.
    assert_eq!(moved("tether_live_run_cache_hits_total"), 3.0);
    assert_eq!(moved("tether_live_run_cache_misses_total"), 0.0);
    assert_eq!(moved("tether_lease_takeovers_total"), 0.0);
    // Runs by workflow and status, read from the store.
    assert_eq!(
        get(
            &after,
            "tether_runs{workflow=\"collect\",status=\"completed\"}"
        ),
        1.0
    );
    assert_eq!(
        get(
            &after,
            "tether_runs{workflow=\"approval\",status=\"suspended\"}"
        ),
        1.0
    );
    assert!(!after.contains_key("tether_runs{workflow=\"collect\",status=\"suspended\"}"));
    assert!(get(&after, "tether_live_runs") >= 1.0);
}

#[tokio::test]
async fn metrics_need_the_api_token_when_one_is_set() {
    let s = server(Some("s3cret")).await;
    let url = format!("{}/metrics", s.url);
    let anonymous = s.http.get(&url).send().await.expect("scrape");
    assert_eq!(anonymous.status().as_u16(), 401);
    let wrong = s
        .http
        .get(&url)
        .bearer_auth("nope")
        .send()
        .await
        .expect("scrape");
    assert_eq!(wrong.status().as_u16(), 401);
    let samples = s.scrape().await; // with the token
    assert!(samples.contains_key("tether_resumes_accepted_total"));
}
