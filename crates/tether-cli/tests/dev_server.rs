//! `tether dev` as a user runs it: the real binary on a free port, driven through
//! `tether_client`, one server (and database) per test.

mod common;

use std::process::Stdio;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_round_trip() {
    let (_dir, db) = temp_db();
    let server = Server::start(&db);
    let c = &server.client;

    assert_eq!(
        c.health().await.unwrap(),
        json!({"ok": true, "backend": "sqlite"})
    );
    let names = c.workflows().await.unwrap();
    for n in [
        "approval",
        "collect",
        "handoff",
        "slack_bot",
        "steps",
        "timeout_approval",
    ] {
        assert!(names.iter().any(|x| x == n), "{names:?}");
    }

    let run_id = c
        .start_run("approval", &json!({"order_id": "o-9"}))
        .await
        .unwrap();
    let hooks = hooks_of(c, &run_id).await;
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].metadata, json!({"order_id": "o-9"}));
    assert_eq!(hooks[0].kind, "hook");
    let token = hooks[0].token.clone();
    assert!(token.len() >= 22, "generated token too short: {token}");

    // Invalid payload: refused, run untouched.
    let bad = c.resume_hook(&token, &json!({"approved": 1}), None).await;
    assert_api_error(bad, 400, "invalid_payload");

    let decision = json!({"approved": true, "comment": "fine"});
    assert_eq!(
        c.resume_hook(&token, &decision, None).await.unwrap(),
        run_id
    );
    let run = finished(c, &run_id).await;
    assert_eq!(run.status, "completed");
    assert_eq!(run.output, Some(decision.clone()));
    assert_eq!(run.workflow, "approval");
    let listed = c
        .list_runs(Some("completed"), Some("approval"), Some(10))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].run_id, run_id);
    assert_api_error(
        c.resume_hook(&token, &decision, None).await,
        404,
        "hook_not_found",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_bot_custom_token_and_stop() {
    let (_dir, db) = temp_db();
    let server = Server::start(&db);
    let c = &server.client;

    let run_id = c
        .start_run("slack_bot", &json!({"channel": "C1"}))
        .await
        .unwrap();
    let token = "slack_messages:C1";
    let hook = hook_held_by(c, token, &run_id).await;
    assert_eq!(hook.token, token);
    for text in ["hello", "how are you", "/stop"] {
        assert_eq!(
            c.resume_hook(token, &json!({"text": text}), None)
                .await
                .unwrap(),
            run_id
        );
    }
    let run = finished(c, &run_id).await;
    assert_eq!(
        run.output,
        Some(json!({"messages": ["hello", "how are you"]}))
    );
    assert_api_error(
        c.resume_hook(token, &json!({"text": "late"}), None).await,
        404,
        "hook_not_found",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handoff_releases_the_token() {
    let (_dir, db) = temp_db();
    let server = Server::start(&db);
    let c = &server.client;
    let token = "channel:X";

    let first = c
        .start_run("handoff", &json!({"channel": "X"}))
        .await
        .unwrap();
    hook_held_by(c, token, &first).await;
    c.resume_hook(token, &json!({"message": "hi"}), None)
        .await
        .unwrap();
    c.resume_hook(token, &json!({"message": "bye", "handoff": true}), None)
        .await
        .unwrap();

    // The first run now waits on a generated token and no longer holds channel:X.
    let after_token = poll("the first run's second hook", || async {
        let hooks = c.hooks(&first).await.unwrap();
        match hooks.as_slice() {
            [h] if h.token != token => Some(h.token.clone()),
            _ => None,
        }
    })
    .await;

    let second = c
        .start_run("handoff", &json!({"channel": "X"}))
        .await
        .unwrap();
    hook_held_by(c, token, &second).await;
    assert_eq!(
        c.resume_hook(token, &json!({"message": "for the second"}), None)
            .await
            .unwrap(),
        second
    );
    assert_eq!(c.get_run(&first).await.unwrap().status, "suspended");

    assert_eq!(
        c.resume_hook(&after_token, &json!({"x": 1}), None)
            .await
            .unwrap(),
        first
    );
    let run = finished(c, &first).await;
    assert_eq!(run.status, "completed", "{run:?}");
    assert_eq!(
        run.output,
        Some(json!({"messages": ["hi", "bye"], "after": {"x": 1}}))
    );
    let second_run = c.get_run(&second).await.unwrap();
    assert_eq!(second_run.status, "suspended", "{second_run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_approval_both_ways() {
    let (_dir, db) = temp_db();
    let server = Server::start(&db);
    let c = &server.client;

    let timed_out = c
        .start_run("timeout_approval", &json!({"timeout_ms": 100}))
        .await
        .unwrap();
    let run = finished(c, &timed_out).await;
    assert_eq!(run.output, Some(json!({"timed_out": true})), "{run:?}");
    assert!(c.hooks(&timed_out).await.unwrap().is_empty());

    let approved = c
        .start_run("timeout_approval", &json!({"timeout_ms": 60000}))
        .await
        .unwrap();
    let token = hooks_of(c, &approved).await[0].token.clone();
    c.resume_hook(&token, &json!({"ok": true}), None)
        .await
        .unwrap();
    let run = finished(c, &approved).await;
    assert_eq!(
        run.output,
        Some(json!({"timed_out": false, "approval": {"ok": true}})),
        "{run:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_twenty() {
    let (_dir, db) = temp_db();
    let server = Server::start(&db);
    let c = &server.client;
    let run_id = c.start_run("steps", &json!({"n": 20})).await.unwrap();
    let run = finished(c, &run_id).await;
    assert_eq!(run.output, Some(json!({"steps": 20})));
    let events = c.events(&run_id).await.unwrap();
    assert_eq!(of_type(&events, "step_completed").len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_conflict_fails_the_second_run_only() {
    let (_dir, db) = temp_db();
    let server = Server::start(&db);
    let c = &server.client;
    let token = "slack_messages:C7";

    let holder = c
        .start_run("slack_bot", &json!({"channel": "C7"}))
        .await
        .unwrap();
    hook_held_by(c, token, &holder).await;
    let loser = c
        .start_run("slack_bot", &json!({"channel": "C7"}))
        .await
        .unwrap();
    let run = finished(c, &loser).await;
    assert_eq!(run.status, "failed", "{run:?}");
    let error = run.error.expect("a failed run has an error");
    assert_eq!(error.code, "hook_conflict", "{error:?}");
    assert!(error.message.contains(token), "{error:?}");
    assert!(error.message.contains(&holder), "{error:?}");

    // The holder is not disturbed.
    assert_eq!(c.get_run(&holder).await.unwrap().status, "suspended");
    hook_held_by(c, token, &holder).await;
    for text in ["still here", "/stop"] {
        assert_eq!(
            c.resume_hook(token, &json!({"text": text}), None)
                .await
                .unwrap(),
            holder
        );
    }
    let run = finished(c, &holder).await;
    assert_eq!(run.output, Some(json!({"messages": ["still here"]})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_a_waiting_collect_run() {
    let (_dir, db) = temp_db();
    let server = Server::start(&db);
    let c = &server.client;

    let run_id = c.start_run("collect", &json!({})).await.unwrap();
    let token = hooks_of(c, &run_id).await[0].token.clone();
    c.resume_hook(&token, &json!({"i": 1}), Some("k1"))
        .await
        .unwrap();
    c.cancel_run(&run_id, Some("not needed")).await.unwrap();
    let run = finished(c, &run_id).await;
    assert_eq!(run.status, "cancelled", "{run:?}");
    assert!(c.hooks(&run_id).await.unwrap().is_empty());
    assert_api_error(
        c.resume_hook(&token, &json!({"i": 2}), None).await,
        404,
        "hook_not_found",
    );
    assert_api_error(c.cancel_run(&run_id, None).await, 409, "run_finished");
    let cancelled = c.list_runs(Some("cancelled"), None, None).await.unwrap();
    assert_eq!(cancelled.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_carry_code_and_message() {
    let (_dir, db) = temp_db();
    let server = Server::start(&db);
    let c = &server.client;
    let e = c.start_run("nope", &json!({})).await.unwrap_err();
    assert_eq!(e.code(), Some("workflow_not_found"));
    assert_eq!(e.status(), Some(404));
    assert!(e.to_string().contains("nope"), "{e}");
    assert_api_error(c.get_run("missing").await, 404, "run_not_found");
    assert_api_error(
        c.list_runs(Some("bogus"), None, None).await,
        400,
        "invalid_query",
    );
    assert_api_error(
        c.start_run("steps", &json!({"n": "many"})).await,
        400,
        "invalid_input",
    );
}

#[test]
fn start_errors_exit_with_a_clear_line() {
    let (dir, db) = temp_db();

    // A PostgreSQL server that cannot be reached (nothing listens on port 1): one clear
    // line, without the password.
    let out = tether()
        .args([
            "dev",
            "--addr",
            "127.0.0.1:0",
            "--db",
            "postgres://u:secret@127.0.0.1:1/db",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("tether: ")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains("cannot open database postgres://u:***@127.0.0.1:1/db"),
        "{err}"
    );
    assert!(lines[0].contains("storage unavailable"), "{err}");
    assert!(!err.contains("secret"), "{err}");
    assert!(out.stdout.is_empty());

    // An unknown database scheme is a usage error.
    let out = tether()
        .args([
            "dev",
            "--addr",
            "127.0.0.1:0",
            "--db",
            "mysql://u:secret@h/db",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unsupported database URL scheme"), "{err}");
    assert!(!err.contains("secret"), "{err}");

    // A port in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = tether()
        .args(["dev", "--addr", &addr, "--db"])
        .arg(&db)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot listen on"), "{err}");
    assert!(out.stdout.is_empty());

    // A lease or poll interval of zero is a usage error, given as a flag or in the
    // environment; nothing is created.
    let out = tether()
        .args(["dev", "--addr", "127.0.0.1:0", "--lease-ms", "0", "--db"])
        .arg(&db)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--lease-ms must be at least 1"), "{err}");
    let out = tether()
        .args(["dev", "--addr", "127.0.0.1:0", "--db"])
        .arg(&db)
        .env("TETHER_POLL_INTERVAL_MS", "0")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--poll-interval-ms must be at least 1"),
        "{err}"
    );
    assert!(!db.exists());

    // A database path that cannot be created (its parent is a file).
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let out = tether()
        .args(["dev", "--addr", "127.0.0.1:0", "--db"])
        .arg(file.join("t.db"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot open database"), "{err}");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_gracefully_and_answers_long_polls() {
    let (_dir, db) = temp_db();
    let server = Server::start(&db);
    let c = server.client.clone();
    let run_id = c.start_run("collect", &json!({})).await.unwrap();
    hooks_of(&c, &run_id).await;

    // A long-poll in flight when the server is told to stop gets the run as it is, at once.
    let url = format!("{}/v1/runs/{run_id}?wait_ms=60000", server.url);
    let poller = tokio::spawn(async move {
        let resp = reqwest::get(&url).await?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await?;
        Ok::<_, reqwest::Error>((status, body))
    });
    // Nothing observable says the request has reached the handler: give it a moment.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = tokio::task::spawn_blocking(move || {
        let mut server = server;
        server.wait_exit()
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    let (status, body) = poller.await.unwrap().expect("the long-poll got an answer");
    assert_eq!(status.as_u16(), 200, "{body}");
    assert_eq!(body["status"], "suspended", "{body}");

    // Restarted, the run is still there and still waiting.
    let server = Server::start(&db);
    let run = server.client.get_run(&run_id).await.unwrap();
    assert_eq!(run.status, "suspended");
}
