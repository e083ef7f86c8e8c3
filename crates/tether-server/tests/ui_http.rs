//! The web UI without a browser: pages and assets are served as HTML/CSS/JS with a strict
//! CSP, the live streams emit events when runs change, and the threads listing.

mod ui_support;

use serde_json::json;
use ui_support::{Server, SseReader};

/// GET a path, answering (status, content type, headers, body text).
async fn get_text(s: &Server, path: &str) -> (u16, String, reqwest::header::HeaderMap, String) {
    let resp = s.http.get(s.url(path)).send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let ctype = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, ctype, headers, resp.text().await.expect("body"))
}

async fn open_stream(s: &Server, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = s
        .http
        .get(s.url(path))
        .header("accept", "text/event-stream");
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("stream request")
}

#[tokio::test]
async fn pages_are_html_with_a_strict_policy() {
    let s = Server::start(None).await;
    let run_id = s.start_run("approval", json!({ "order_id": "o-1" })).await;

    let (status, ctype, headers, body) = get_text(&s, "/").await;
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/html"), "{ctype}");
    assert!(body.contains("<title>Tether — runs</title>"), "{body}");
    assert!(body.contains("id=\"runs-table\""));
    assert!(
        body.contains("id=\"schedules-table\""),
        "the schedules and their next tick"
    );
    let csp = headers["content-security-policy"]
        .to_str()
        .unwrap_or_default();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff");

    let (status, ctype, _, body) = get_text(&s, &format!("/runs/{run_id}")).await;
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/html"), "{ctype}");
    assert!(body.contains("id=\"resume-form\""), "{body}");
    // The page never echoes the request: the id is read by the script from the address.
    let (_, _, _, hostile) = get_text(&s, "/runs/%3Cscript%3Ealert(1)%3C%2Fscript%3E").await;
    assert!(!hostile.contains("<script>alert"), "{hostile}");

    for (asset, kind) in [
        ("app.css", "text/css"),
        ("common.js", "text/javascript"),
        ("list.js", "text/javascript"),
        ("run.js", "text/javascript"),
    ] {
        let (status, ctype, _, body) = get_text(&s, &format!("/ui/{asset}")).await;
        assert_eq!(status, 200, "{asset}");
        assert!(ctype.starts_with(kind), "{asset}: {ctype}");
        assert!(!body.trim().is_empty(), "{asset} is empty");
    }
    let (status, _, _, body) = get_text(&s, "/ui/secret.txt").await;
    assert_eq!(status, 404, "{body}");
    let (status, _, _, _) = get_text(&s, "/ui/..%2FCargo.toml").await;
    assert_eq!(status, 404);
    s.stop().await;
}

#[tokio::test]
async fn run_stream_emits_a_change_when_the_run_changes() {
    let s = Server::start(None).await;
    let run_id = s.start_run("approval", json!({ "order_id": "o-2" })).await;
    let token = s.first_token(&run_id).await;
    let other = s.start_run("approval", json!({ "order_id": "o-3" })).await;

    let resp = open_stream(&s, &format!("/v1/runs/{run_id}/stream"), None).await;
    assert_eq!(resp.status().as_u16(), 200);
    let ctype = resp.headers()["content-type"].to_str().unwrap_or_default();
    assert!(ctype.starts_with("text/event-stream"), "{ctype}");
    let mut events = SseReader::new(resp);
    assert_eq!(events.expect_next("ready").await.name, "ready");

    // Another run's change is not this stream's business.
    let other_token = s.first_token(&other).await;
    let (st, v) = s
        .post(
            &format!("/v1/hooks/{other_token}"),
            r#"{"approved": false, "comment": "other"}"#,
        )
        .await;
    assert_eq!(st, 202, "{v}");

    let (st, v) = s
        .post(
            &format!("/v1/hooks/{token}"),
            r#"{"approved": true, "comment": "ok"}"#,
        )
        .await;
    assert_eq!(st, 202, "{v}");
    let ev = events.expect_change_of(&run_id).await;
    assert_eq!(ev.data["lagged"], false, "{:?}", ev.data);
    for change in ev.data["changes"].as_array().into_iter().flatten() {
        assert_eq!(
            change["run_id"],
            run_id.as_str(),
            "only this run: {:?}",
            ev.data
        );
    }
    // The run ends: a change is announced until its terminal entry, then the run reads completed.
    loop {
        let run = s.get_json(&format!("/v1/runs/{run_id}")).await;
        if run["status"] == "completed" {
            break;
        }
        events.expect_change_of(&run_id).await;
    }
    s.stop().await;
}

#[tokio::test]
async fn list_stream_emits_a_change_for_a_new_run() {
    let s = Server::start(None).await;
    let resp = open_stream(&s, "/v1/runs/stream", None).await;
    assert_eq!(resp.status().as_u16(), 200);
    let mut events = SseReader::new(resp);
    assert_eq!(events.expect_next("ready").await.name, "ready");
    let run_id = s.start_run("steps", json!({ "n": 1 })).await;
    events.expect_change_of(&run_id).await;
    s.stop().await;
}

#[tokio::test]
async fn a_hook_thread_changes_its_runs_stream_and_is_listed() {
    let s = Server::start(None).await;
    let run_id = s
        .start_run("enrich", json!({ "name": "ada", "wait": true }))
        .await;
    let resp = open_stream(&s, &format!("/v1/runs/{run_id}/stream"), None).await;
    let mut events = SseReader::new(resp);
    assert_eq!(events.expect_next("ready").await.name, "ready");

    let (st, v) = s
        .post(
            &format!("/v1/runs/{run_id}/hooks"),
            r#"{"workflow_name": "enrich_hook", "args": {}}"#,
        )
        .await;
    assert_eq!(st, 202, "{v}");
    let hook_id = v["hook_id"].as_str().expect("hook_id").to_string();
    events.expect_change_of(&hook_id).await;

    let threads = s.get_json(&format!("/v1/runs/{run_id}/threads")).await;
    let ids: Vec<&str> = threads
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|t| t["run_id"].as_str())
        .collect();
    assert!(ids.contains(&hook_id.as_str()), "{threads}");
    assert!(threads[0]["workflow"] == "enrich_hook", "{threads}");
    s.stop().await;
}

#[tokio::test]
async fn unknown_runs_have_no_stream_nor_threads() {
    let s = Server::start(None).await;
    let resp = open_stream(&s, "/v1/runs/no-such-run/stream", None).await;
    assert_eq!(resp.status().as_u16(), 404);
    let v: serde_json::Value = resp.json().await.expect("JSON error");
    assert_eq!(v["error"]["code"], "run_not_found", "{v}");
    let resp = s
        .http
        .get(s.url("/v1/runs/no-such-run/threads"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 404);
    s.stop().await;
}

#[tokio::test]
async fn with_a_token_pages_are_open_and_data_and_streams_are_not() {
    let s = Server::start(Some("s3cret")).await;
    let (status, ctype, _, _) = get_text(&s, "/").await;
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/html"));
    let (status, _, _, _) = get_text(&s, "/ui/run.js").await;
    assert_eq!(status, 200);

    let resp = open_stream(&s, "/v1/runs/stream", None).await;
    assert_eq!(resp.status().as_u16(), 401);
    let resp = open_stream(&s, "/v1/runs/stream?access_token=s3cret", None).await;
    assert_eq!(resp.status().as_u16(), 401, "no token in URLs");
    let resp = open_stream(&s, "/v1/runs/stream", Some("s3cret")).await;
    assert_eq!(resp.status().as_u16(), 200);
    let mut events = SseReader::new(resp);
    assert_eq!(events.expect_next("ready").await.name, "ready");
    // The stream is open: stopping the server must end it rather than wait for it.
    s.stop().await;
    assert!(
        events.next().await.is_none(),
        "the stream ends when the server stops"
    );
}
