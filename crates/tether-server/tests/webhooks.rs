//! Webhook round trips with a real HTTP client against a real server (a TCP listener).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tether_core::Registry;
use tether_engine::{Engine, EngineConfig};
use tether_server::{router, serve, ServerOptions};
use tether_store_sqlite::SqliteStore;

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
    let config = EngineConfig {
        public_url: Some(base.clone()),
        ..EngineConfig::default()
    };
    let engine = Engine::start(Arc::new(store), registry, config);
    let app = router(engine.clone(), ServerOptions::default());
    tokio::spawn(serve(listener, app, std::future::pending()));
    Running {
        base,
        engine,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Running {
    async fn start(&self, mode: &str) -> (String, Value) {
        let v: Value = self
            .http
            .post(format!("{}/v1/runs", self.base))
            .json(&json!({"workflow": "webhook_echo", "input": {"mode": mode}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let run = v["run_id"].as_str().unwrap().to_string();
        let hooks: Value = self
            .http
            .get(format!("{}/v1/runs/{run}/hooks", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (run, hooks[0].clone())
    }

    async fn output(&self, run: &str) -> Value {
        let r = self
            .engine
            .wait_for_run(run, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(r.status, tether_core::RunStatus::Completed, "{:?}", r.error);
        r.output.unwrap()
    }
}

#[tokio::test]
async fn static_webhook_answers_202_and_the_run_gets_the_request() {
    let s = server().await;
    let (run, hook) = s.start("static").await;
    assert_eq!(hook["kind"], "webhook");
    let url = hook["url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with(&format!("{}/.well-known/workflow/v1/webhook/", s.base)),
        "{url}"
    );
    let resp = s
        .http
        .put(format!("{url}?a=1&b=two"))
        .header("x-custom", "yes")
        .json(&json!({"hello": "world"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    assert_eq!(
        s.output(&run).await,
        json!({"method": "PUT", "body": {"hello": "world"}})
    );
    let journal = s.engine.events(&run).await.unwrap();
    let request = journal
        .iter()
        .find_map(|e| match &e.body {
            tether_core::EventBody::HookReceived { payload, .. } => Some(payload.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(request["query"], json!({"a": "1", "b": "two"}));
    assert_eq!(request["headers"]["x-custom"], "yes");
    // Released with the run: the URL is gone.
    let resp = s.http.post(&url).body("late").send().await.unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn manual_webhook_answers_with_the_workflows_response() {
    let s = server().await;
    let (run, hook) = s.start("manual").await;
    let url = hook["url"].as_str().unwrap().to_string();
    let resp = s
        .http
        .post(&url)
        .json(&json!({"n": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"echo": {"n": 7}}));
    assert_eq!(
        s.output(&run).await,
        json!({"method": "POST", "body": {"n": 7}})
    );
}

#[tokio::test]
async fn plain_hook_tokens_and_unknown_tokens_are_not_webhooks() {
    let s = server().await;
    let v: Value = s
        .http
        .post(format!("{}/v1/runs", s.base))
        .json(&json!({"workflow": "slack_bot", "input": {"channel": "W"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v["run_id"].is_string());
    for token in ["slack_messages:W", "no-such-token"] {
        let resp = s
            .http
            .post(format!(
                "{}/.well-known/workflow/v1/webhook/{token}",
                s.base
            ))
            .json(&json!({"text": "hi"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{token}");
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["error"]["code"], "hook_not_found");
    }
    // The plain hook still works through its own endpoint.
    let resp = s
        .http
        .post(format!("{}/v1/hooks/slack_messages:W", s.base))
        .json(&json!({"text": "/stop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
}

#[tokio::test]
async fn a_manual_webhook_without_an_answer_times_out_with_504() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("t.db").to_str().unwrap())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut registry = Registry::new();
    registry.workflow("silent", |ctx: tether_core::Ctx, _: Value| async move {
        let options = tether_core::WebhookOptions {
            respond_with: tether_core::RespondWith::Manual { timeout_ms: 100 },
            metadata: Some(json!({"purpose": "test"})),
            verify: None,
        };
        let mut hook = ctx.create_webhook(options).await?;
        let req = hook.recv().await?;
        Ok(json!(req.method))
    });
    let config = EngineConfig {
        public_url: Some(base.clone()),
        ..EngineConfig::default()
    };
    let engine = Engine::start(Arc::new(store), registry, config);
    tokio::spawn(serve(
        listener,
        router(engine.clone(), ServerOptions::default()),
        std::future::pending(),
    ));
    let run = engine.start_run("silent", json!(null)).await.unwrap();
    let hooks = engine.hooks(&run).await.unwrap();
    let url = format!("{base}/.well-known/workflow/v1/webhook/{}", hooks[0].token);
    let resp = reqwest::Client::new().delete(&url).send().await.unwrap();
    assert_eq!(resp.status(), 504);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "webhook_timeout");
    // The request was delivered all the same.
    let done = engine
        .wait_for_run(&run, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(done.output, Some(json!("DELETE")));
}

#[tokio::test]
async fn a_plain_resume_of_a_webhook_token_must_be_a_webhook_request() {
    let s = server().await;
    let (run, hook) = s.start("static").await;
    let token = hook["token"].as_str().unwrap();
    // Some JSON sent to the plain resume route would fail the run when it reads it as a
    // request: refused before it is stored, with a pointer to the webhook URL.
    let resp = s
        .http
        .post(format!("{}/v1/hooks/{token}", s.base))
        .json(&json!({"x": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_payload", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("belongs to a webhook"),
        "{body}"
    );
    let events = s.engine.events(&run).await.unwrap();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e.body, tether_core::EventBody::HookReceived { .. })),
        "nothing was stored"
    );
    // The webhook URL still works and the run completes.
    let url = hook["url"].as_str().unwrap();
    let called = s.http.post(url).body("{\"y\": 2}").send().await.unwrap();
    assert_eq!(called.status(), 202);
    assert_eq!(s.output(&run).await["body"], json!({"y": 2}));
}
