//! Resume links (issue #21 point 4) against a real server, on SQLite and PostgreSQL: made
//! behind the API token, a page on `GET` that resumes nothing, one resume on `POST`, `410` the
//! second time (on any node), `403` when altered or signed by an unknown key, `410` once
//! expired, keys rotated without breaking links in date, and bound to the hook they were made
//! for.

mod links_support;

use std::sync::Arc;
use std::time::Duration;

use links_support::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tether_engine::Clock;
use tether_server::LinkKeys;
use tether_store::Store;
use tether_store_postgres::PostgresStore;
use tether_store_sqlite::SqliteStore;

async fn sqlite(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    let path = dir.path().join("t.db");
    Arc::new(
        SqliteStore::open(&path.display().to_string())
            .await
            .expect("open"),
    )
}

fn decision(approved: bool) -> Value {
    json!({"approved": approved, "comment": if approved { "ok" } else { "no" }})
}

/// Made on `a`, seen and used on `a`, used again on `b` (the same node on SQLite).
async fn works_once(a: &Node, b: &Node) {
    let (run, token) = a.approval_run("o-1").await;
    let body = json!({"payload": decision(true), "label": "Approve order o-1?"});

    // Making a link needs the API token.
    let (status, answer) = a.create_link(&token, body.clone(), false).await;
    assert_eq!(
        (status, answer["error"]["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("unauthorized"))
    );
    let (status, answer) = a.create_link(&token, body.clone(), true).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let url = answer["url"].as_str().expect("a url").to_owned();
    assert!(url.starts_with(&a.url("/l/k1.")), "{url}");
    assert!(!url.contains(TOKEN));
    assert!(answer["expires_at_ms"].as_u64().is_some(), "{answer}");

    // The page, on either node, without the API token: label, payload, one button.
    for node in [a, b] {
        let (status, headers, page) = node.browse(Method::GET, &url).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(
            page.contains("<h1 id=\"label\">Approve order o-1?</h1>"),
            "{page}"
        );
        assert!(page.contains("&quot;approved&quot;: true"), "{page}");
        assert!(page.contains("<form method=\"post\">"), "{page}");
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        let csp = headers["content-security-policy"].to_str().expect("csp");
        assert!(csp.contains("default-src 'none'") && csp.contains("form-action 'self'"));
    }
    // ... which resumed nothing.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_ne!(a.run(&run).await["status"], json!("completed"));

    // The use: the run gets the payload.
    let (status, answer) = a.use_link(&url).await;
    assert_eq!(
        (status, answer.clone()),
        (StatusCode::OK, json!({"run_id": run}))
    );
    let output = a.output(&run).await;
    assert_eq!(output["approved"], json!(true), "{output}");

    // Again, on the other node: gone, as JSON and as a page.
    let (status, answer) = b.use_link(&url).await;
    assert_eq!(
        (status, answer["error"]["code"].clone()),
        (StatusCode::GONE, json!("link_used")),
        "{answer}"
    );
    let (status, headers, page) = b.browse(Method::POST, &url).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(headers["content-type"]
        .to_str()
        .unwrap_or("")
        .starts_with("text/html"));
    assert!(
        page.contains("already used") && page.contains("link_used"),
        "{page}"
    );
}

/// What a link cannot be made with, and links that do not open.
async fn refusals(a: &Node) {
    let (_run, token) = a.approval_run("o-2").await;
    let cases = [
        (
            json!({"payload": {"approved": "yes"}}),
            StatusCode::BAD_REQUEST,
            "invalid_payload",
        ),
        (
            json!({"payload": decision(true), "expires_in_ms": 25 * 3_600_000u64}),
            StatusCode::BAD_REQUEST,
            "invalid_link",
        ),
        (
            json!({"payload": decision(true), "expires_in_ms": 0}),
            StatusCode::BAD_REQUEST,
            "invalid_link",
        ),
        (
            json!({"payload": decision(true), "label": "x".repeat(201)}),
            StatusCode::BAD_REQUEST,
            "invalid_link",
        ),
        (
            json!({"payload": {"approved": true, "comment": "x".repeat(3000)}}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            json!({"payload": decision(true), "set": ""}),
            StatusCode::BAD_REQUEST,
            "invalid_link",
        ),
        (
            json!({"payload": decision(true), "extra": 1}),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
    ];
    for (body, status, code) in cases {
        let (got, answer) = a.create_link(&token, body.clone(), true).await;
        assert_eq!(
            (got, answer["error"]["code"].clone()),
            (status, json!(code)),
            "{body}: {answer}"
        );
    }
    let (got, answer) = a
        .create_link("no-such-token", json!({"payload": 1}), true)
        .await;
    assert_eq!(
        (got, answer["error"]["code"].clone()),
        (StatusCode::NOT_FOUND, json!("hook_not_found"))
    );
    let (_, answer) = a
        .create_link(
            &token,
            json!({"payload": decision(true), "expires_in_ms": 25 * 3_600_000u64}),
            true,
        )
        .await;
    let message = answer["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("--idempotency-window"), "{message}");

    // Altered: refused, the run untouched.
    let url = a.link(&token, json!({"payload": decision(false)})).await;
    for bad in [tampered(&url), format!("{url}x"), a.url("/l/nonsense")] {
        let (status, answer) = a.use_link(&bad).await;
        assert_eq!(
            (status, answer["error"]["code"].clone()),
            (StatusCode::FORBIDDEN, json!("link_invalid")),
            "{bad}"
        );
        let (status, _, page) = a.browse(Method::GET, &bad).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(page.contains("not valid"), "{page}");
    }
    // The real one still works.
    let (status, answer) = a.use_link(&url).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

#[tokio::test]
async fn sqlite_a_link_shows_a_page_then_resumes_once() {
    let dir = tempfile::tempdir().expect("dir");
    let a = node(sqlite(&dir).await, Setup::default()).await;
    works_once(&a, &a).await;
    refusals(&a).await;
    a.shutdown().await;
}

/// An "approve" and a "reject" link of one set: the first used wins, the other is used up.
async fn one_of_a_set(a: &Node) {
    let (run, token) = a.approval_run("o-set").await;
    let approve = a
        .link(
            &token,
            json!({"payload": decision(true), "set": "decision"}),
        )
        .await;
    let reject = a
        .link(
            &token,
            json!({"payload": decision(false), "set": "decision"}),
        )
        .await;
    let (status, answer) = a.use_link(&reject).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    for url in [&approve, &reject] {
        let (status, answer) = a.use_link(url).await;
        assert_eq!(
            (status, answer["error"]["code"].clone()),
            (StatusCode::GONE, json!("link_used")),
            "{answer}"
        );
    }
    let output = a.output(&run).await;
    assert_eq!(output["approved"], json!(false), "{output}");
}

#[tokio::test]
async fn sqlite_links_of_one_set_answer_once() {
    let dir = tempfile::tempdir().expect("dir");
    let a = node(sqlite(&dir).await, Setup::default()).await;
    one_of_a_set(&a).await;
    a.shutdown().await;
}

#[tokio::test]
async fn sqlite_an_expired_link_is_gone() {
    let dir = tempfile::tempdir().expect("dir");
    let clock = Clock::manual(1_700_000_000_000);
    let setup = Setup {
        clock: clock.clone(),
        ..Setup::default()
    };
    let a = node(sqlite(&dir).await, setup).await;
    let (run, token) = a.approval_run("o-3").await;
    let url = a
        .link(
            &token,
            json!({"payload": decision(true), "expires_in_ms": 60_000}),
        )
        .await;
    clock.advance(Duration::from_millis(60_000));
    let (status, answer) = a.use_link(&url).await;
    assert_eq!(
        (status, answer["error"]["code"].clone()),
        (StatusCode::GONE, json!("link_expired"))
    );
    let (status, _, page) = a.browse(Method::GET, &url).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(page.contains("expired"), "{page}");
    assert_ne!(a.run(&run).await["status"], json!("completed"));
    a.shutdown().await;
}

#[tokio::test]
async fn sqlite_rotated_keys_keep_links_in_date_working() {
    let dir = tempfile::tempdir().expect("dir");
    let a = node(sqlite(&dir).await, Setup::default()).await;
    let (run, token) = a.approval_run("o-4").await;
    let old = a.link(&token, json!({"payload": decision(true)})).await;

    // k2 signs, k1 still verifies (the configuration after a rotation): the old link works.
    let rotated = LinkKeys::parse([format!("k2={S2},k1={S1}").as_str()]).expect("keys");
    let b = sibling(&a, rotated).await;
    let (run2, token2) = b.approval_run("o-5").await;
    let new = b.link(&token2, json!({"payload": decision(true)})).await;
    assert!(new.starts_with(&a.url("/l/k2.")), "{new}");
    let (run3, token3) = b.approval_run("o-6").await;
    let old2 = a.link(&token3, json!({"payload": decision(false)})).await;
    let (status, answer) = b.use_link(&b.on(&old)).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"run_id": run})));

    // k1 removed: its links are refused, k2's work.
    let c = sibling(&a, LinkKeys::new("k2", S2).expect("a key")).await;
    let (status, answer) = c.use_link(&c.on(&old2)).await;
    assert_eq!(
        (status, answer["error"]["code"].clone()),
        (StatusCode::FORBIDDEN, json!("link_invalid"))
    );
    let message = answer["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("key this server does not have"),
        "{message}"
    );
    let (status, answer) = c.use_link(&c.on(&new)).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"run_id": run2})));

    // A server with its own generated key refuses another's links.
    let d = sibling(&a, LinkKeys::generate()).await;
    let (status, _) = d.use_link(&d.on(&old2)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = a.use_link(&old2).await;
    assert_eq!(status, StatusCode::OK);
    a.output(&run3).await;
    for n in [b, c, d] {
        n.shutdown().await;
    }
    a.shutdown().await;
}

#[tokio::test]
async fn sqlite_a_link_feeds_only_the_hook_it_was_made_for() {
    let dir = tempfile::tempdir().expect("dir");
    let a = node(sqlite(&dir).await, Setup::default()).await;
    let start = |channel: &'static str| {
        let a = &a;
        async move {
            let resp = a
                .client
                .post(a.url("/v1/runs"))
                .bearer_auth(TOKEN)
                .json(&json!({"workflow": "slack_bot", "input": {"channel": channel}}))
                .send()
                .await
                .expect("start");
            let body: Value = resp.json().await.expect("json");
            body["run_id"].as_str().expect("a run").to_owned()
        }
    };
    let token = "slack_messages:c1";
    let first = start("c1").await;
    a.engine.settle().await;
    let url = a
        .link(token, json!({"payload": {"text": "from the link"}}))
        .await;
    // The run ends; another takes the same chosen token.
    let resp = a
        .client
        .post(a.url(&format!("/v1/hooks/{token}")))
        .bearer_auth(TOKEN)
        .json(&json!({"text": "/stop"}))
        .send()
        .await
        .expect("stop");
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    a.output(&first).await;
    let second = start("c1").await;
    a.engine.settle().await;
    let (status, answer) = a.use_link(&url).await;
    assert_eq!(
        (status, answer["error"]["code"].clone()),
        (StatusCode::NOT_FOUND, json!("hook_not_found")),
        "{answer}"
    );
    // The second run got nothing.
    let resp = a
        .client
        .post(a.url(&format!("/v1/hooks/{token}")))
        .bearer_auth(TOKEN)
        .json(&json!({"text": "/stop"}))
        .send()
        .await
        .expect("stop");
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(a.output(&second).await, json!({"messages": []}));
    a.shutdown().await;
}

/// A fresh PostgreSQL schema, dropped (best effort) when this is dropped.
struct Schema {
    url: String,
    name: String,
}

impl Schema {
    fn new() -> Schema {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Schema {
            url: tether_test_env::postgres_url(),
            name: format!("t_links_{}", &id[..12]),
        }
    }

    async fn store(&self) -> Arc<dyn Store> {
        Arc::new(
            PostgresStore::open_in_schema(&self.url, &self.name)
                .await
                .unwrap_or_else(|e| panic!("open a store in schema {}: {e}", self.name)),
        )
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(PostgresStore::drop_schema(&url, &name)).ok()
        })
        .join();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES"
)]
async fn postgres_a_link_works_once_across_nodes() {
    let schema = Schema::new();
    let setup = |id: &str| Setup {
        node_id: Some(id.to_owned()),
        ..Setup::default()
    };
    let a = node(schema.store().await, setup("node-a")).await;
    let b = node(schema.store().await, setup("node-b")).await;
    // Used on A, used again on B: 410.
    works_once(&a, &b).await;
    // Made on A, used on B.
    let (run, token) = a.approval_run("o-8").await;
    let url = a.link(&token, json!({"payload": decision(false)})).await;
    let on_b = b.on(&url);
    let (status, answer) = b.use_link(&on_b).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"run_id": run})));
    let (status, answer) = a.use_link(&url).await;
    assert_eq!(
        (status, answer["error"]["code"].clone()),
        (StatusCode::GONE, json!("link_used"))
    );
    assert_eq!(b.output(&run).await["approved"], json!(false));
    refusals(&b).await;
    one_of_a_set(&a).await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES"
)]
async fn postgres_racing_uses_resume_once() {
    let schema = Schema::new();
    let a = node(
        schema.store().await,
        Setup {
            node_id: Some("node-a".into()),
            ..Setup::default()
        },
    )
    .await;
    let b = node(
        schema.store().await,
        Setup {
            node_id: Some("node-b".into()),
            ..Setup::default()
        },
    )
    .await;
    let (run, token) = a.approval_run("o-9").await;
    let url = a.link(&token, json!({"payload": decision(true)})).await;
    let on_b = b.on(&url);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (client, url) = (
                a.client.clone(),
                if i % 2 == 0 {
                    url.clone()
                } else {
                    on_b.clone()
                },
            );
            tokio::spawn(async move { client.post(url).send().await.map(|r| r.status()) })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        match task.await.expect("a task").expect("an answer") {
            StatusCode::OK => ok += 1,
            StatusCode::GONE => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(ok, 1, "one use wins");
    a.output(&run).await;
    let events = a
        .client
        .get(a.url(&format!("/v1/runs/{run}/events")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("events")
        .text()
        .await
        .expect("text");
    assert_eq!(events.matches("\"hook_received\"").count(), 1, "{events}");
    a.shutdown().await;
    b.shutdown().await;
}
