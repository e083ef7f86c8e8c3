//! `App::router` mounted under a path prefix of an existing axum app: the API, the web UI and
//! webhooks all answer under the prefix, and webhook URLs carry it.

use std::sync::Arc;
use std::time::Duration;

use tether::prelude::*;
use tether::server::ServerOptions;
use tether::sqlite::SqliteStore;

/// Waits for one call on a webhook; returns its method and body.
async fn inbox(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let mut webhook = ctx.create_webhook(WebhookOptions::default()).await?;
    let request = webhook.recv().await?;
    let body = request.body.as_ref().map_or(Value::Null, |b| b.to_json());
    Ok(json!({ "method": request.method, "body": body }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_works_under_a_prefix() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let store = SqliteStore::open(&dir.path().join("t.db").display().to_string()).await?;
    let config = EngineConfig {
        public_url: Some(format!("http://{addr}/tether")),
        ..EngineConfig::default()
    };
    let engine = App::new()
        .workflow("inbox", inbox)
        .engine(Arc::new(store), config)?;

    // The host application: a route of its own, Tether under /tether.
    let app = axum::Router::new()
        .route("/hello", axum::routing::get(|| async { "hello" }))
        .nest("/tether", App::router(&engine, ServerOptions::default()));
    let server =
        tokio::spawn(
            async move { tether::server::serve(listener, app, std::future::pending()).await },
        );

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let base = format!("http://{addr}");

    let hello = http.get(format!("{base}/hello")).send().await?;
    assert_eq!(
        hello.status(),
        200,
        "the host app's own route still answers"
    );

    let started: Value = http
        .post(format!("{base}/tether/v1/runs"))
        .json(&json!({ "workflow": "inbox", "input": null }))
        .send()
        .await?
        .json()
        .await?;
    let run_id = started["run_id"].as_str().ok_or("no run_id")?.to_owned();

    let hooks: Value = http
        .get(format!("{base}/tether/v1/runs/{run_id}/hooks"))
        .send()
        .await?
        .json()
        .await?;
    let url = hooks[0]["url"].as_str().ok_or("no webhook url")?.to_owned();
    assert!(
        url.starts_with(&format!("{base}/tether/.well-known/workflow/v1/webhook/")),
        "the webhook URL carries the prefix: {url}"
    );
    let called = http.post(&url).body("{\"n\": 1}").send().await?;
    assert_eq!(
        called.status(),
        202,
        "the webhook URL answers under the prefix"
    );

    let run: Value = http
        .get(format!("{base}/tether/v1/runs/{run_id}?wait_ms=5000"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["output"]["body"], json!({ "n": 1 }));

    // The UI: pages at the prefix load their assets and link under it.
    let page = http.get(format!("{base}/tether")).send().await?;
    assert_eq!(page.status(), 200);
    let html = page.text().await?;
    assert!(html.contains("src=\"/tether/ui/common.js\""), "{html}");
    let script = http
        .get(format!("{base}/tether/ui/common.js"))
        .send()
        .await?;
    assert_eq!(script.status(), 200);
    let run_page = http
        .get(format!("{base}/tether/runs/{run_id}"))
        .send()
        .await?;
    let html = run_page.text().await?;
    assert!(html.contains("src=\"/tether/ui/run.js\""), "{html}");
    assert!(html.contains("href=\"/tether/\""), "{html}");
    let metrics = http.get(format!("{base}/tether/metrics")).send().await?;
    assert_eq!(metrics.status(), 200);

    engine.shutdown().await;
    server.abort();
    let _ = tokio::time::timeout(Duration::from_secs(1), server).await;
    Ok(())
}
