//! Verified webhooks against a real server (TCP, SQLite): GitHub, Stripe, Slack and generic
//! HMAC signatures accepted or refused (`401`, nothing journaled, counted by reason), a
//! retried delivery stored once, and the bundled `github_events` example end to end.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tether_core::{Ctx, EventBody, Registry, WebhookOptions, WebhookVerifier, WorkflowError};
use tether_engine::{Engine, EngineConfig};
use tether_server::{router, serve, ServerOptions, WebhookSecrets};
use tether_store_sqlite::SqliteStore;

const SECRET: &str = "s3cret-for-tests";

/// A test workflow: a webhook verified by the scheme its input names, collecting JSON bodies
/// until one has `"last": true`.
async fn verified(ctx: Ctx, input: Value) -> Result<Value, WorkflowError> {
    let verifier = match input["scheme"].as_str().unwrap_or_default() {
        "stripe" => WebhookVerifier::stripe("TEST_STRIPE"),
        "slack" => WebhookVerifier::slack("TEST_SLACK"),
        "hmac" => WebhookVerifier::hmac_sha256("TEST_HMAC", "X-Signature")
            .prefix("sha256=")
            .delivery_id_header("X-Delivery"),
        "unset" => WebhookVerifier::github("TETHER_TEST_SECRET_NOBODY_SETS"),
        _ => WebhookVerifier::github("TEST_GITHUB"),
    };
    let options = if input["manual"] == json!(true) {
        WebhookOptions::manual()
    } else {
        WebhookOptions::default()
    };
    let mut webhook = ctx.create_webhook(options.verified(verifier)).await?;
    let mut bodies = Vec::new();
    loop {
        let request = webhook.recv().await?;
        let body = request.body.as_ref().map_or(Value::Null, |b| b.to_json());
        if input["manual"] == json!(true) {
            let answer = tether_core::WebhookResponse::json(200, json!({"got": body.clone()}));
            request.respond_with(&ctx, answer).await?;
        }
        let last = body["last"] == json!(true);
        bodies.push(body);
        if last {
            return Ok(json!({ "bodies": bodies }));
        }
    }
}

struct Running {
    base: String,
    engine: Engine,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn server() -> Running {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("t.db").to_str().unwrap())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut registry = Registry::new();
    tether_examples::register(&mut registry);
    registry.workflow("verified", verified);
    let config = EngineConfig {
        public_url: Some(base.clone()),
        ..EngineConfig::default()
    };
    let engine = Engine::start(Arc::new(store), registry, config);
    let secrets = WebhookSecrets::new()
        .with("TEST_GITHUB", SECRET)
        .with("TEST_STRIPE", SECRET)
        .with("TEST_SLACK", SECRET)
        .with("TEST_HMAC", SECRET)
        .with(tether_examples::github_events::SECRET_ENV, "dev-secret");
    let options = ServerOptions {
        webhook_secrets: secrets,
        ..ServerOptions::default()
    };
    tokio::spawn(serve(
        listener,
        router(engine.clone(), options),
        std::future::pending(),
    ));
    Running {
        base,
        engine,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

fn sign(secret: &str, parts: &[&[u8]]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    for p in parts {
        mac.update(p);
    }
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl Running {
    /// Start `workflow` and return the run id and its webhook's URL.
    async fn start(&self, workflow: &str, input: Value) -> (String, String) {
        let run = self.engine.start_run(workflow, input).await.unwrap();
        loop {
            let hooks = self.engine.hooks(&run).await.unwrap();
            if let Some(h) = hooks.first() {
                let url = format!("{}{}{}", self.base, tether_core::WEBHOOK_PATH, h.token);
                return (run, url);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// POST `body` with `headers`; the status and the answer's body.
    async fn post(&self, url: &str, headers: &[(&str, String)], body: &str) -> (u16, Value) {
        let mut req = self.http.post(url).body(body.to_owned());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// How many payloads the run's journal holds.
    async fn received(&self, run: &str) -> usize {
        let events = self.engine.events(run).await.unwrap();
        events
            .iter()
            .filter(|e| matches!(e.body, EventBody::HookReceived { .. }))
            .count()
    }

    async fn output(&self, run: &str) -> Value {
        let r = self
            .engine
            .wait_for_run(run, Duration::from_secs(20))
            .await
            .unwrap();
        assert_eq!(r.status, tether_core::RunStatus::Completed, "{:?}", r.error);
        r.output.unwrap()
    }

    /// `tether_webhook_rejected_total{reason=...}` from `GET /metrics`.
    async fn rejected(&self, reason: &str) -> u64 {
        let text = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let prefix = format!("tether_webhook_rejected_total{{reason=\"{reason}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map_or(0, |n| n.trim().parse().unwrap())
    }
}

fn github(secret: &str, body: &str, delivery: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "x-hub-signature-256",
            format!("sha256={}", sign(secret, &[body.as_bytes()])),
        ),
        ("x-github-delivery", delivery.to_owned()),
        ("content-type", "application/json".to_owned()),
    ]
}

#[tokio::test]
async fn github_signatures_are_checked_and_refusals_store_nothing() {
    let s = server().await;
    let (run, url) = s.start("verified", json!({"scheme": "github"})).await;
    let body = r#"{"n":1}"#;

    let (status, err) = s.post(&url, &github("wrong", body, "d1"), body).await;
    assert_eq!(status, 401);
    assert_eq!(err["error"]["code"], "webhook_signature_invalid", "{err}");
    let (status, err) = s.post(&url, &[], body).await;
    assert_eq!(status, 401);
    assert_eq!(err["error"]["code"], "webhook_signature_missing", "{err}");
    // Signed, then the body changed on the way: refused.
    let (status, _) = s
        .post(&url, &github(SECRET, body, "d1"), r#"{"n":2}"#)
        .await;
    assert_eq!(status, 401);
    assert_eq!(
        s.received(&run).await,
        0,
        "a refused request is never stored"
    );
    assert_eq!(s.rejected("signature_invalid").await, 2);
    assert_eq!(s.rejected("signature_missing").await, 1);

    let (status, _) = s.post(&url, &github(SECRET, body, "d1"), body).await;
    assert_eq!(status, 202);
    let last = r#"{"last":true}"#;
    let (status, _) = s.post(&url, &github(SECRET, last, "d2"), last).await;
    assert_eq!(status, 202);
    assert_eq!(
        s.output(&run).await,
        json!({"bodies": [{"n": 1}, {"last": true}]})
    );
}

#[tokio::test]
async fn a_retried_delivery_is_accepted_once_even_with_other_headers() {
    let s = server().await;
    let (run, url) = s.start("verified", json!({"scheme": "github"})).await;
    let body = r#"{"n":1}"#;
    let mut first = github(SECRET, body, "same-delivery");
    let (status, _) = s.post(&url, &first, body).await;
    assert_eq!(status, 202);
    // The same delivery again, identical, then with an extra header (another payload).
    let (status, _) = s.post(&url, &first, body).await;
    assert_eq!(status, 202);
    first.push(("x-retry", "2".to_owned()));
    let (status, _) = s.post(&url, &first, body).await;
    assert_eq!(status, 202);
    assert_eq!(
        s.received(&run).await,
        1,
        "the journal holds the delivery once"
    );
    let last = r#"{"last":true}"#;
    s.post(&url, &github(SECRET, last, "other"), last).await;
    assert_eq!(
        s.output(&run).await,
        json!({"bodies": [{"n": 1}, {"last": true}]})
    );
}

#[tokio::test]
async fn a_manual_webhook_answers_a_retried_delivery_as_a_duplicate() {
    let s = server().await;
    let (run, url) = s
        .start("verified", json!({"scheme": "hmac", "manual": true}))
        .await;
    let body = r#"{"n":1}"#;
    let sig = format!("sha256={}", sign(SECRET, &[body.as_bytes()]));
    let mut headers = vec![("x-signature", sig), ("x-delivery", "abc".to_owned())];
    let (status, answer) = s.post(&url, &headers, body).await;
    assert_eq!((status, answer), (200, json!({"got": {"n": 1}})));
    let (status, answer) = s.post(&url, &headers, body).await;
    assert_eq!((status, answer), (200, json!({"duplicate": true})));
    headers.push(("x-retry", "1".to_owned()));
    let (status, answer) = s.post(&url, &headers, body).await;
    assert_eq!((status, answer), (200, json!({"duplicate": true})));
    assert_eq!(s.received(&run).await, 1);
    // The generic scheme refuses a digest without its prefix.
    let bare = sign(SECRET, &[body.as_bytes()]);
    let (status, err) = s.post(&url, &[("x-signature", bare)], body).await;
    assert_eq!(status, 401);
    assert_eq!(err["error"]["code"], "webhook_signature_missing", "{err}");
    let last = r#"{"last":true}"#;
    let sig = format!("sha256={}", sign(SECRET, &[last.as_bytes()]));
    let (status, _) = s.post(&url, &[("x-signature", sig)], last).await;
    assert_eq!(status, 200);
    assert_eq!(s.received(&run).await, 2);
}

#[tokio::test]
async fn stripe_checks_the_timestamp_and_dedups_by_event_id() {
    let s = server().await;
    let (run, url) = s.start("verified", json!({"scheme": "stripe"})).await;
    let stripe = |t: u64, body: &str| {
        let v1 = sign(SECRET, &[t.to_string().as_bytes(), b".", body.as_bytes()]);
        vec![("stripe-signature", format!("t={t},v1=deadbeef,v1={v1}"))]
    };
    let body = r#"{"id":"evt_1","type":"charge.succeeded"}"#;
    let stale = now_secs() - 3600;
    let (status, err) = s.post(&url, &stripe(stale, body), body).await;
    assert_eq!(status, 401);
    assert_eq!(err["error"]["code"], "webhook_timestamp_stale", "{err}");
    assert_eq!(s.rejected("timestamp_stale").await, 1);
    assert_eq!(s.received(&run).await, 0);

    let (status, _) = s.post(&url, &stripe(now_secs(), body), body).await;
    assert_eq!(status, 202);
    // Stripe's retry: same event, a new timestamp and signature.
    let (status, _) = s.post(&url, &stripe(now_secs() + 1, body), body).await;
    assert_eq!(status, 202);
    assert_eq!(s.received(&run).await, 1);
    let last = r#"{"id":"evt_2","last":true}"#;
    s.post(&url, &stripe(now_secs(), last), last).await;
    let out = s.output(&run).await;
    assert_eq!(out["bodies"].as_array().unwrap().len(), 2, "{out}");
}

#[tokio::test]
async fn slack_signatures_are_checked() {
    let s = server().await;
    let (run, url) = s.start("verified", json!({"scheme": "slack"})).await;
    let slack = |secret: &str, ts: u64, body: &str| {
        let sig = sign(
            secret,
            &[b"v0:", ts.to_string().as_bytes(), b":", body.as_bytes()],
        );
        vec![
            ("x-slack-signature", format!("v0={sig}")),
            ("x-slack-request-timestamp", ts.to_string()),
        ]
    };
    let body = r#"{"event_id":"Ev1","last":true}"#;
    let (status, _) = s.post(&url, &slack("nope", now_secs(), body), body).await;
    assert_eq!(status, 401);
    let (status, err) = s
        .post(&url, &slack(SECRET, now_secs() - 301 - 60, body), body)
        .await;
    assert_eq!(status, 401);
    assert_eq!(err["error"]["code"], "webhook_timestamp_stale");
    assert_eq!(s.received(&run).await, 0);
    let (status, _) = s.post(&url, &slack(SECRET, now_secs(), body), body).await;
    assert_eq!(status, 202);
    assert_eq!(
        s.output(&run).await["bodies"],
        json!([{"event_id": "Ev1", "last": true}])
    );
}

#[tokio::test]
async fn a_secret_the_server_lacks_is_a_configuration_error() {
    let s = server().await;
    let (run, url) = s.start("verified", json!({"scheme": "unset"})).await;
    let (status, err) = s.post(&url, &[], "{}").await;
    assert_eq!(status, 503);
    assert_eq!(err["error"]["code"], "webhook_secret_missing", "{err}");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("TETHER_TEST_SECRET_NOBODY_SETS"),
        "{message}"
    );
    assert_eq!(s.received(&run).await, 0);
    assert_eq!(s.rejected("secret_missing").await, 1);
}

#[tokio::test]
async fn github_events_example_end_to_end() {
    let s = server().await;
    let (run, url) = s.start("github_events", json!({})).await;
    // Only the secret's name is in the hook's stored metadata.
    let hook = &s.engine.hooks(&run).await.unwrap()[0];
    assert!(!hook.metadata.to_string().contains("dev-secret"));
    assert_eq!(
        hook.metadata["verify"],
        json!({"scheme": "github", "secret": "TETHER_EXAMPLE_GITHUB_SECRET"})
    );
    let events = [
        r#"{"action":"opened","number":1}"#,
        r#"{"action":"labeled","number":1}"#,
        r#"{"action":"closed","number":1}"#,
    ];
    for (i, body) in events.iter().enumerate() {
        let headers = github("dev-secret", body, &format!("delivery-{i}"));
        let (status, _) = s.post(&url, &headers, body).await;
        assert_eq!(status, 202, "{body}");
        if i == 0 {
            // GitHub redelivers the first one.
            let (status, _) = s.post(&url, &headers, body).await;
            assert_eq!(status, 202);
        }
    }
    let expected: Vec<Value> = events
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    assert_eq!(s.output(&run).await, json!({ "events": expected }));
    assert_eq!(s.received(&run).await, 3);
}
