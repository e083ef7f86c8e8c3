//! The front door, as a user meets it: a crate outside this workspace with `tether` (by path)
//! as its only Tether dependency, the documented `main`, built and run as a real binary.
//!
//! `serve` on SQLite (start, resume, output, UI, `/metrics`, a webhook, `--api-token`
//! refusing a bad token), the client commands against it, `replay --all` passing, then a
//! change to the workflow that moves a waiting run's commands: the rebuilt binary's
//! `replay --all` exits 1 naming that run. A test of its own (a crate of another name):
//! two `serve` processes on one PostgreSQL, resumed through either, one killed with SIGKILL,
//! the other finishes the run (ignored without `TETHER_TEST_POSTGRES`, failing under CI
//! without it: the rule is in `tether-test-env`).

mod project;
mod server;

use std::time::Duration;

use serde_json::{json, Value};

use project::Project;
use server::{Serve, PATIENCE};

const TOKEN: &str = "s3cret-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_binary_serves_and_replays() {
    let project = Project::create("myflows");
    project.build();
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("app.db").display());

    // ---- serve on SQLite, with an API token
    let server = Serve::start(&project.binary(), &["--db", &db, "--api-token", TOKEN]);
    let http = reqwest::Client::new();
    let url = server.url.clone();

    let refused = http
        .post(format!("{url}/v1/runs"))
        .bearer_auth("wrong")
        .json(&json!({ "workflow": "greet", "input": "ada" }))
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status(), 401, "a bad token is refused");

    let greet = start(&http, &url, "greet", json!("ada")).await;
    let run = wait_run(&http, &url, &greet).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["output"], json!({ "greeting": "hello ada" }));

    let approve = start(&http, &url, "approve", json!({ "order_id": "o-1" })).await;
    let resumed = http
        .post(format!("{url}/v1/hooks/approve:o-1"))
        .bearer_auth(TOKEN)
        .json(&json!({ "approved": true }))
        .send()
        .await
        .expect("resume");
    assert_eq!(resumed.status(), 202);
    let run = wait_run(&http, &url, &approve).await;
    assert_eq!(
        run["output"],
        json!({ "order_id": "o-1", "decision": { "approved": true } })
    );

    // A webhook: its URL needs no API token (its token is the credential).
    let inbox = start(&http, &url, "inbox", Value::Null).await;
    let hooks: Value = get_json(&http, &format!("{url}/v1/runs/{inbox}/hooks")).await;
    let hook_url = hooks[0]["url"].as_str().expect("webhook url").to_owned();
    let called = http
        .post(&hook_url)
        .body("{\"ping\": 1}")
        .send()
        .await
        .expect("webhook");
    assert_eq!(called.status(), 202);
    let run = wait_run(&http, &url, &inbox).await;
    assert_eq!(run["output"]["body"], json!({ "ping": 1 }));

    // The UI and the metrics.
    let page = http.get(format!("{url}/")).send().await.expect("ui");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap_or_default().contains("<html"));
    let metrics = http
        .get(format!("{url}/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("metrics");
    assert_eq!(metrics.status(), 200);
    assert!(metrics
        .text()
        .await
        .unwrap_or_default()
        .contains("tether_resumes_accepted"));

    // The client commands of the same binary.
    let client = |args: &[&str]| {
        project.run(&[&["--server", &url, "--api-token", TOKEN][..], args].concat())
    };
    let (code, out, err) = client(&[
        "runs",
        "start",
        "approve",
        "--input",
        "{\"order_id\": \"c-1\"}",
    ]);
    assert_eq!(code, 0, "{err}");
    let c1 = out.trim().to_owned();
    let (code, _, err) = client(&[
        "hooks",
        "resume",
        "approve:c-1",
        "--payload",
        "{\"approved\": false}",
    ]);
    assert_eq!(code, 0, "{err}");
    wait_run(&http, &url, &c1).await;
    let (code, out, err) = client(&["--json", "runs", "show", &c1]);
    assert_eq!(code, 0, "{err}");
    let shown: Value = serde_json::from_str(&out).expect("runs show --json");
    assert_eq!(shown["run"]["status"], "completed", "{out}");
    let (code, out, _) = client(&["runs", "list", "--status", "completed"]);
    assert_eq!(code, 0);
    assert!(out.contains(&c1), "{out}");
    let (code, out, _) = client(&["signal", "nobody-waits", "--payload", "1"]);
    assert_eq!(code, 0);
    assert!(out.contains("kept"), "{out}");

    // One run left waiting on its hook for the deploy check.
    let waiting = start(&http, &url, "approve", json!({ "order_id": "o-wait" })).await;
    server.stop();

    // ---- replay --all: this binary reproduces every unfinished run.
    let (code, out, err) = project.run(&["replay", "--all", "--db", &db]);
    assert_eq!(code, 0, "stdout {out}\nstderr {err}");
    assert!(out.contains(&waiting), "{out}");

    // ---- the workflow changes under the waiting run: a step before its hook.
    project.change_approve();
    project.build();
    let (code, out, err) = project.run(&["replay", "--all", "--db", &db]);
    assert_eq!(code, 1, "stdout {out}\nstderr {err}");
    assert!(err.contains(&waiting), "the failure names the run: {err}");
    assert!(
        out.contains("non-determinism at command #1") && out.contains("step \"audit\""),
        "the report names the position and both commands: {out}"
    );
    let (code, _, err) = project.run(&["replay", &waiting, "--db", &db]);
    assert_eq!(code, 1, "{err}");
    project.restore_approve();
}

/// Two nodes on one schema: resume through either; SIGKILL one, the other finishes its run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
)]
async fn a_user_binary_clusters_on_postgres() {
    let pg = server::postgres_url();
    let project = Project::create("myflows_pg");
    project.build();
    let schema = format!("userbin_{}", std::process::id());
    let cluster = [
        "--db",
        &pg,
        "--pg-schema",
        &schema,
        "--lease-ms",
        "1000",
        "--poll-interval-ms",
        "100",
    ];
    let a = Serve::start(&project.binary(), &cluster);
    let b = Serve::start(&project.binary(), &cluster);
    let http = reqwest::Client::new();

    let first = start(&http, &a.url, "approve", json!({ "order_id": "pg-1" })).await;
    let resumed = http
        .post(format!("{}/v1/hooks/approve:pg-1", b.url))
        .json(&json!({ "via": "b" }))
        .send()
        .await
        .expect("resume through b");
    assert_eq!(resumed.status(), 202);
    let run = wait_run(&http, &a.url, &first).await;
    assert_eq!(run["output"]["decision"], json!({ "via": "b" }), "{run}");

    let second = start(&http, &a.url, "approve", json!({ "order_id": "pg-2" })).await;
    a.kill();
    let resumed = http
        .post(format!("{}/v1/hooks/approve:pg-2", b.url))
        .json(&json!({ "after": "kill" }))
        .send()
        .await
        .expect("resume after the kill");
    assert_eq!(resumed.status(), 202);
    let run = wait_run(&http, &b.url, &second).await;
    assert_eq!(
        run["status"], "completed",
        "node b took the run over: {run}"
    );
    b.stop();

    let (code, out, err) = project.run(&["replay", "--all", "--db", &pg, "--pg-schema", &schema]);
    assert_eq!(code, 0, "stdout {out}\nstderr {err}");
    server::drop_schema(&pg, &schema).await;
}

async fn start(http: &reqwest::Client, url: &str, workflow: &str, input: Value) -> String {
    let resp = http
        .post(format!("{url}/v1/runs"))
        .bearer_auth(TOKEN)
        .json(&json!({ "workflow": workflow, "input": input }))
        .send()
        .await
        .expect("start");
    let status = resp.status();
    let body: Value = resp.json().await.expect("start answer");
    assert_eq!(status, 201, "{body}");
    body["run_id"].as_str().expect("run_id").to_owned()
}

async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    http.get(url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json")
}

/// The run once it has ended (long-polls until then).
async fn wait_run(http: &reqwest::Client, url: &str, run_id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let run = get_json(http, &format!("{url}/v1/runs/{run_id}?wait_ms=5000")).await;
        if ["completed", "failed", "cancelled"].contains(&run["status"].as_str().unwrap_or("")) {
            return run;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run never ended: {run}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
