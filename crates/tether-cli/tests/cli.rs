//! The `tether runs | hooks | signal | schedules` client commands, run as processes against a real
//! `tether dev`, with and without an API token.

mod common;

use common::*;
use serde_json::{json, Value};

/// Parse a command's stdout as JSON.
fn parse(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_start_list_show_cancel() {
    let (_dir, db) = temp_db();
    let server = Server::start(&db);
    let url = server.url.as_str();

    let out = cli_ok(url, None, &["runs", "start", "collect", "--input", "{}"]);
    let run_id = out.trim().to_string();
    assert!(!run_id.is_empty() && !run_id.contains(' '), "{out:?}");
    assert_eq!(
        server.client.get_run(&run_id).await.unwrap().workflow,
        "collect"
    );

    let list = cli_ok(url, None, &["runs", "list", "--workflow", "collect"]);
    let mut lines = list.lines();
    let header = lines.next().unwrap_or_default();
    for col in ["RUN ID", "WORKFLOW", "STATUS", "CREATED"] {
        assert!(header.contains(col), "{list}");
    }
    let row = lines.next().unwrap_or_default();
    assert!(
        row.starts_with(&run_id) && row.contains("collect"),
        "{list}"
    );

    let listed = parse(&cli_ok(
        url,
        None,
        &["runs", "list", "--limit", "5", "--json"],
    ));
    assert_eq!(listed["runs"][0]["run_id"], json!(run_id));
    let none = parse(&cli_ok(
        url,
        None,
        &["runs", "--json", "list", "--status", "failed"],
    ));
    assert_eq!(none["runs"], json!([]));

    hooks_of(&server.client, &run_id).await;
    let cancel = cli_ok(url, None, &["runs", "cancel", &run_id, "--reason", "bored"]);
    assert!(cancel.contains(&run_id), "{cancel}");
    assert_eq!(finished(&server.client, &run_id).await.status, "cancelled");

    let show = cli_ok(url, None, &["runs", "show", &run_id]);
    assert!(show.contains("status    cancelled"), "{show}");
    assert!(
        show.contains("run_started") && show.contains("run_cancelled"),
        "{show}"
    );
    assert!(show.contains("bored"), "{show}");
    let shown = parse(&cli_ok(url, None, &["runs", "show", &run_id, "--json"]));
    assert_eq!(shown["run"]["status"], "cancelled");
    assert!(shown["events"].as_array().is_some_and(|e| !e.is_empty()));

    // Errors: one line, exit 1; malformed JSON: exit 2.
    let missing = cli(url, None, &["runs", "show", "no-such-run"]);
    assert_eq!(missing.code, 1, "{missing:?}");
    assert_eq!(missing.stderr.lines().count(), 1, "{missing:?}");
    let bad = cli(url, None, &["runs", "start", "collect", "--input", "{oops"]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(
        bad.stderr.starts_with("tether: --input is not valid JSON"),
        "{bad:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_distinguishes_hook_threads() {
    let (_dir, db) = temp_db();
    let server = Server::start(&db);
    let url = server.url.as_str();
    let run_id = cli_ok(
        url,
        None,
        &["runs", "start", "enrich", "--input", r#"{"name":"ann"}"#],
    )
    .trim()
    .to_string();
    assert_eq!(finished(&server.client, &run_id).await.status, "completed");

    let events = server.client.events(&run_id).await.unwrap();
    let hook_id = events
        .iter()
        .filter_map(|e| e["thread"].as_str())
        .find(|t| *t != "main")
        .expect("a hook thread entry")
        .to_string();
    let show = cli_ok(url, None, &["runs", "show", &run_id]);
    assert!(show.contains("output    {"), "{show}");
    assert!(
        show.lines()
            .any(|l| l.contains(" main ") && l.contains("run_started")),
        "{show}"
    );
    assert!(
        show.lines()
            .any(|l| l.contains(&hook_id) && l.contains("enrich_hook") && l.contains("state_set")),
        "{show}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_resume_and_signal() {
    let (_dir, db) = temp_db();
    let server = Server::start(&db);
    let url = server.url.as_str();
    let c = &server.client;

    let run_id = c
        .start_run("approval", &json!({"order_id": "o-1"}))
        .await
        .unwrap();
    let token = hooks_of(c, &run_id).await[0].token.clone();
    let bad = cli(url, None, &["hooks", "resume", &token, "--payload", "nope"]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(
        bad.stderr
            .starts_with("tether: --payload is not valid JSON"),
        "{bad:?}"
    );
    let payload = r#"{"approved": true, "comment": "ok"}"#;
    let out = cli_ok(
        url,
        None,
        &[
            "hooks",
            "resume",
            &token,
            "--payload",
            payload,
            "--idempotency-key",
            "k1",
        ],
    );
    assert_eq!(out.trim(), run_id);
    // Same key again: the first answer, nothing new.
    let again = parse(&cli_ok(
        url,
        None,
        &[
            "hooks",
            "resume",
            &token,
            "--payload",
            payload,
            "--idempotency-key",
            "k1",
            "--json",
        ],
    ));
    assert_eq!(again, json!({ "run_id": run_id }));
    assert_eq!(finished(c, &run_id).await.status, "completed");

    let unknown = cli(url, None, &["hooks", "resume", "nope", "--payload", "{}"]);
    assert_eq!(unknown.code, 1, "{unknown:?}");
    assert_eq!(unknown.stderr, "tether: hook not found: nope\n");
    assert_eq!(unknown.stdout, "");

    let waiting = c
        .start_run("wait_signal", &json!({"signal_id": "sig-1"}))
        .await
        .unwrap();
    let sent = parse(&cli_ok(
        url,
        None,
        &["signal", "sig-1", "--payload", r#"{"x": 1}"#, "--json"],
    ));
    assert_eq!(sent["signal_id"], "sig-1");
    let run = finished(c, &waiting).await;
    assert_eq!(run.output, Some(json!({"x": 1})));
    let text = cli_ok(url, None, &["signal", "sig-2", "--payload", "2"]);
    assert!(text.contains("sig-2"), "{text}");

    // A keyed signal: a retry gets the first answer (kept), another payload is refused.
    let keyed = |payload: &str| {
        cli(
            url,
            None,
            &[
                "signal",
                "sig-3",
                "--payload",
                payload,
                "--idempotency-key",
                "s1",
                "--json",
            ],
        )
    };
    for _ in 0..2 {
        let sent = keyed("3");
        assert_eq!(sent.code, 0, "{sent:?}");
        assert_eq!(
            parse(&sent.stdout),
            json!({ "signal_id": "sig-3", "delivered_to": null })
        );
    }
    let reused = keyed("4");
    assert_eq!(reused.code, 1, "{reused:?}");
    assert!(reused.stderr.contains("idempotency"), "{reused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_token_guards_the_api_but_not_health_or_webhooks() {
    let (_dir, db) = temp_db();
    let server = Server::start_with(&db, &["--api-token", "s3cret"]);
    let url = server.url.as_str();
    let http = reqwest::Client::new();

    for auth in [None, Some("Bearer wrong"), Some("Basic s3cret")] {
        let mut req = http.get(format!("{url}/v1/runs"));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401, "{auth:?}");
        assert_eq!(resp.headers()["www-authenticate"], "Bearer");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    }
    let health = http.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    // The CLI without the token: one line, exit 1; with it: works.
    let refused = cli(url, None, &["runs", "list"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.starts_with("tether: ") && refused.stderr.contains("API token"));
    let wrong = cli(url, Some("nope"), &["runs", "list"]);
    assert_eq!(wrong.code, 1, "{wrong:?}");
    let run_id = cli_ok(
        url,
        Some("s3cret"),
        &[
            "runs",
            "start",
            "webhook_echo",
            "--input",
            r#"{"mode":"static"}"#,
        ],
    )
    .trim()
    .to_string();

    // The webhook URL points at this server and needs no API token.
    let c = client(url).with_api_token("s3cret");
    hooks_of(&c, &run_id).await;
    let hooks: Value = http
        .get(format!("{url}/v1/runs/{run_id}/hooks"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hook_url = hooks[0]["url"].as_str().expect("a webhook url").to_string();
    assert!(
        hook_url.starts_with(&format!("{url}/.well-known/workflow/v1/webhook/")),
        "{hook_url}"
    );
    let resp = http
        .post(&hook_url)
        .json(&json!({"hi": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let run = finished(&c, &run_id).await;
    assert_eq!(
        run.output,
        Some(json!({"method": "POST", "body": {"hi": 1}}))
    );

    let listed = parse(&cli_ok(url, Some("s3cret"), &["runs", "list", "--json"]));
    assert_eq!(listed["runs"][0]["run_id"], json!(run_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_create_list_show_pause_resume_delete() {
    let (_dir, db) = temp_db();
    let server = Server::start(&db);
    let url = server.url.as_str();

    let created = parse(&cli_ok(
        url,
        None,
        &[
            "schedules",
            "create",
            "every-second",
            "collect",
            "* * * * * *",
            "--input",
            "{}",
            "--json",
        ],
    ));
    assert_eq!(created["id"], "every-second");
    assert_eq!(created["overlap"], "skip");
    assert_eq!(created["timezone"], "UTC");
    let list = cli_ok(url, None, &["schedules", "list"]);
    for col in ["ID", "WORKFLOW", "CRON", "NEXT TICK"] {
        assert!(list.contains(col), "{list}");
    }
    assert!(
        list.contains("every-second") && list.contains("active"),
        "{list}"
    );

    // The server ticks: the first tick's run carries the schedule's id.
    let mut last_run = Value::Null;
    for _ in 0..100 {
        let shown = parse(&cli_ok(
            url,
            None,
            &["schedules", "show", "every-second", "--json"],
        ));
        last_run = shown["last_run_id"].clone();
        if !last_run.is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let run_id = last_run
        .as_str()
        .expect("a tick ran within 10 s")
        .to_string();
    let run = server.client.get_run(&run_id).await.unwrap();
    assert_eq!(run.schedule_id.as_deref(), Some("every-second"));

    let paused = cli_ok(url, None, &["schedules", "pause", "every-second"]);
    assert!(paused.contains("state     paused"), "{paused}");
    let resumed = parse(&cli_ok(
        url,
        None,
        &["schedules", "resume", "every-second", "--json"],
    ));
    assert_eq!(resumed["paused"], false);
    let deleted = cli_ok(url, None, &["schedules", "delete", "every-second"]);
    assert!(deleted.contains("deleted"), "{deleted}");
    assert!(
        server.client.get_run(&run_id).await.is_ok(),
        "its runs stay"
    );

    // Errors: one line, exit 1, saying what to fix.
    let missing = cli(url, None, &["schedules", "show", "every-second"]);
    assert_eq!(missing.code, 1, "{missing:?}");
    let bad = cli(
        url,
        None,
        &["schedules", "create", "x", "collect", "every day"],
    );
    assert_eq!(bad.code, 1, "{bad:?}");
    assert!(bad.stderr.contains("cron expression"), "{bad:?}");
    assert_eq!(bad.stderr.lines().count(), 1, "{bad:?}");
}
