//! The OpenAPI document at `GET /openapi.json`, against a real server (TCP, a real SQLite
//! store, the bundled examples): it describes every route the router serves and nothing
//! else, and the server's answers validate against it (status, content type, JSON body against
//! the schema of that route and status, error codes listed on that response).

mod links;
mod refusals;
mod schedules;
mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::*;
use tether_server::routes;

#[tokio::test]
async fn every_served_route_is_documented_and_nothing_else() {
    let s = server().await;
    let doc = fetch_document(&s).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));

    let mut served: BTreeSet<(String, String)> = BTreeSet::new();
    for (method, path) in routes() {
        let methods: Vec<String> = if method == "ANY" {
            OPENAPI_METHODS.iter().map(|m| m.to_string()).collect()
        } else {
            vec![method.to_ascii_lowercase()]
        };
        for m in methods {
            assert!(
                served.insert((m, path.to_string())),
                "{method} {path} is listed twice"
            );
        }
    }
    let mut documented: BTreeSet<(String, String)> = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if OPENAPI_METHODS.contains(&method.as_str()) {
                documented.insert((method.clone(), path.clone()));
                let id = op["operationId"].as_str().unwrap().to_string();
                assert!(ids.insert(id.clone()), "operationId {id} twice");
                assert!(
                    op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                    "{method} {path} has no responses"
                );
            }
        }
    }
    let undocumented: Vec<_> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "served, not documented: {undocumented:?}"
    );
    let stale: Vec<_> = documented.difference(&served).collect();
    assert!(stale.is_empty(), "documented, not served: {stale:?}");

    // The list is the router's: each route is answered (never the fallback's `404
    // not_found`, which means "no route"; `/ui/{asset}` answers it for an unknown asset).
    for (method, path) in routes() {
        if path.ends_with("/stream") || path == "/ui/{asset}" {
            continue;
        }
        let method = if method == "ANY" { "GET" } else { method };
        let resp = s
            .client
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                format!("http://{}{}", s.addr, concrete(path)),
            )
            .bearer_auth(TOKEN)
            .body("{}")
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        assert!(
            !(status == StatusCode::NOT_FOUND && body.contains("\"not_found\"")),
            "{method} {path}: no route answers it ({body})"
        );
    }

    // And the router is built from that list only: no route is added anywhere else.
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    let mut adders = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from(src)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for needle in [
                    ".route(",
                    ".route_service(",
                    ".nest(",
                    ".nest_service(",
                    ".merge(",
                ] {
                    for _ in text.matches(needle) {
                        adders.push(format!("{} {needle}", path.display()));
                    }
                }
            }
        }
    }
    assert_eq!(
        adders.len(),
        1,
        "routes must be added through lib.rs's route table only: {adders:?}"
    );
    s.shutdown().await;
}

/// Poll a run's hooks until it has one; the first.
#[tokio::test]
async fn the_servers_answers_validate_against_the_document() {
    let server = server().await;
    let doc = fetch_document(&server).await;
    let mut c = Checker {
        doc,
        server,
        seen: BTreeSet::new(),
    };

    // Meta, metrics, the document itself, the UI.
    c.get("/healthz", "/healthz").await;
    c.get("/v1/workflows", "/v1/workflows").await;
    let a = c.get("/metrics", "/metrics").await;
    assert_eq!(a.status, StatusCode::OK);
    c.get("/openapi.json", "/openapi.json").await;
    c.call_as(None, Method::GET, "/", "/", None).await;
    c.call_as(None, Method::GET, "/runs/{run_id}", "/runs/abc", None)
        .await;
    c.call_as(None, Method::GET, "/ui/{asset}", "/ui/app.css", None)
        .await;
    c.call_as(None, Method::GET, "/ui/{asset}", "/ui/run.js", None)
        .await;
    let a = c
        .call_as(None, Method::GET, "/ui/{asset}", "/ui/nope.js", None)
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);

    // 401: no token, a wrong one.
    for (template, uri) in [
        ("/v1/runs", "/v1/runs"),
        ("/metrics", "/metrics"),
        ("/openapi.json", "/openapi.json"),
        ("/v1/runs/{run_id}", "/v1/runs/x"),
    ] {
        let a = c
            .call_as(Some("wrong"), Method::GET, template, uri, None)
            .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        let a = c.call_as(None, Method::GET, template, uri, None).await;
        assert_eq!(code(&a), "unauthorized");
    }

    // approval: start, hooks, hook by token, invalid payload, resume, get, events, state.
    let run = start(&mut c, "approval", json!({"order_id": "o-1"})).await;
    let hook = first_hook(&mut c, &run).await;
    let token = hook["token"].as_str().unwrap().to_string();
    let a = c
        .get("/v1/hooks/{token}", &format!("/v1/hooks/{token}"))
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let a = c
        .post(
            "/v1/hooks/{token}",
            &format!("/v1/hooks/{token}"),
            json!({"approved": "yes"}),
        )
        .await;
    assert_eq!(
        (a.status, code(&a)),
        (StatusCode::BAD_REQUEST, "invalid_payload")
    );
    let a = c
        .call_as(
            Some(TOKEN),
            Method::POST,
            "/v1/hooks/{token}",
            &format!("/v1/hooks/{token}"),
            Some(b"{nope".to_vec()),
        )
        .await;
    assert_eq!(code(&a), "invalid_json");
    let a = c
        .call_as(
            Some(TOKEN),
            Method::POST,
            "/v1/hooks/{token}",
            &format!("/v1/hooks/{token}"),
            Some(vec![b' '; 1024 * 1024 + 1]),
        )
        .await;
    assert_eq!(
        (a.status, code(&a)),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    let a = c
        .post(
            "/v1/hooks/{token}",
            &format!("/v1/hooks/{token}"),
            json!({"approved": true, "comment": "ok"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    let done = wait(&mut c, &run).await;
    assert_eq!(done["status"], "completed", "{done}");

    links::exercise(&mut c).await;

    // resume-or-start: a payload for a token whose run does not exist yet, then refusals.
    let ros = "/v1/hooks/{token}/resume-or-start";
    let body = |text: &str, channel: &str| json!({"payload": {"text": text}, "workflow": "slack_bot", "input": {"channel": channel}});
    let a = c
        .post(
            ros,
            "/v1/hooks/slack_messages:doc/resume-or-start",
            body("hi", "doc"),
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    assert_eq!(a.json.as_ref().map(|j| &j["started"]), Some(&json!(true)));
    let a = c
        .post(
            ros,
            "/v1/hooks/slack_messages:doc/resume-or-start",
            body("/stop", "doc"),
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    assert_eq!(a.json.as_ref().map(|j| &j["started"]), Some(&json!(false)));
    let a = c
        .post(
            ros,
            "/v1/hooks/slack_messages:doc/resume-or-start",
            json!({"payload": 1, "workflow": "nope"}),
        )
        .await;
    assert_eq!(code(&a), "workflow_not_found");
    let a = c
        .post(
            ros,
            "/v1/hooks/slack_messages:x/resume-or-start",
            json!({"payload": 1}),
        )
        .await;
    assert_eq!(code(&a), "invalid_json");
    c.get("/v1/runs/{run_id}", &format!("/v1/runs/{run}")).await;
    c.get(
        "/v1/runs/{run_id}/events",
        &format!("/v1/runs/{run}/events"),
    )
    .await;
    c.get("/v1/runs/{run_id}/state", &format!("/v1/runs/{run}/state"))
        .await;
    c.get(
        "/v1/runs/{run_id}/threads",
        &format!("/v1/runs/{run}/threads"),
    )
    .await;
    c.get("/v1/runs/{run_id}/hooks", &format!("/v1/runs/{run}/hooks"))
        .await;
    c.get(
        "/v1/runs/{run_id}/children",
        &format!("/v1/runs/{run}/children"),
    )
    .await;
    // Finished: 409 on cancel and on spawn; its token is released.
    let a = c
        .post(
            "/v1/runs/{run_id}/cancel",
            &format!("/v1/runs/{run}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!((a.status, code(&a)), (StatusCode::CONFLICT, "run_finished"));
    let a = c
        .post(
            "/v1/runs/{run_id}/hooks",
            &format!("/v1/runs/{run}/hooks"),
            json!({"workflow_name": "enrich_hook"}),
        )
        .await;
    assert_eq!((a.status, code(&a)), (StatusCode::CONFLICT, "run_finished"));
    let a = c
        .post(
            "/v1/hooks/{token}",
            &format!("/v1/hooks/{token}"),
            json!({"approved": true, "comment": ""}),
        )
        .await;
    assert_eq!(
        (a.status, code(&a)),
        (StatusCode::NOT_FOUND, "hook_not_found")
    );

    // enrich: hook threads, shared state, the journal of several threads, spawn errors.
    let run = start(&mut c, "enrich", json!({"name": "ana", "wait": true})).await;
    let a = c
        .post(
            "/v1/runs/{run_id}/hooks",
            &format!("/v1/runs/{run}/hooks"),
            json!({"workflow_name": "enrich_hook", "args": {}, "retry": {"maximum_attempts": 2}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{:?}", a.json);
    let a = c
        .post(
            "/v1/runs/{run_id}/hooks",
            &format!("/v1/runs/{run}/hooks"),
            json!({"workflow_name": "enrich", "args": {}}),
        )
        .await;
    assert_eq!(
        (a.status, code(&a)),
        (StatusCode::BAD_REQUEST, "hook_self_target")
    );
    let a = c
        .post(
            "/v1/runs/{run_id}/hooks",
            &format!("/v1/runs/{run}/hooks"),
            json!({"args": 1}),
        )
        .await;
    assert_eq!(code(&a), "invalid_json");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let a = c
            .get("/v1/runs/{run_id}/state", &format!("/v1/runs/{run}/state"))
            .await;
        if a.json.as_ref().is_some_and(|s| s["hook_runs"] == json!(2)) {
            break;
        }
        assert!(Instant::now() < deadline, "{:?}", a.json);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let a = c
        .get(
            "/v1/runs/{run_id}/events",
            &format!("/v1/runs/{run}/events"),
        )
        .await;
    let events = a.json.unwrap();
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["thread_workflow"].is_string()),
        "{events}"
    );
    let a = c
        .get(
            "/v1/runs/{run_id}/threads",
            &format!("/v1/runs/{run}/threads"),
        )
        .await;
    assert!(!a.json.unwrap().as_array().unwrap().is_empty());
    let hook = first_hook(&mut c, &run).await;
    let token = hook["token"].as_str().unwrap().to_string();
    c.post(
        "/v1/hooks/{token}",
        &format!("/v1/hooks/{token}"),
        json!({}),
    )
    .await;
    assert_eq!(wait(&mut c, &run).await["status"], "completed");

    // Signals: kept, then delivered to a waiting run.
    let a = c
        .post(
            "/v1/signals/{signal_id}",
            "/v1/signals/kept-1",
            json!({"paid": true}),
        )
        .await;
    assert_eq!(a.json.unwrap()["delivered_to"], Value::Null);
    let run = start(&mut c, "wait_signal", json!({"signal_id": "later-1"})).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let a = c
            .post("/v1/signals/{signal_id}", "/v1/signals/later-1", json!(42))
            .await;
        assert_eq!(a.status, StatusCode::ACCEPTED);
        if a.json.unwrap()["delivered_to"] == json!(run) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the run never waited on its signal"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    wait(&mut c, &run).await;
    let a = c
        .call_as(
            Some(TOKEN),
            Method::POST,
            "/v1/signals/{signal_id}",
            "/v1/signals/x",
            Some(b"{".to_vec()),
        )
        .await;
    assert_eq!(code(&a), "invalid_json");

    // A webhook: listed with its URL, looked up, called (its own answer), then gone.
    let run = start(&mut c, "webhook_echo", json!({"mode": "static"})).await;
    let hook = first_hook(&mut c, &run).await;
    assert!(hook["url"].is_string(), "{hook}");
    let token = hook["token"].as_str().unwrap().to_string();
    c.get("/v1/hooks/{token}", &format!("/v1/hooks/{token}"))
        .await;
    let webhook = "/.well-known/workflow/v1/webhook/{token}";
    let a = c
        .call_as(
            None,
            Method::PUT,
            webhook,
            &format!("/.well-known/workflow/v1/webhook/{token}"),
            Some(b"{\"a\": 1}".to_vec()),
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    assert_eq!(wait(&mut c, &run).await["status"], "completed");
    let a = c
        .call_as(
            None,
            Method::GET,
            webhook,
            "/.well-known/workflow/v1/webhook/nope",
            None,
        )
        .await;
    assert_eq!(
        (a.status, code(&a)),
        (StatusCode::NOT_FOUND, "hook_not_found")
    );

    // Cancel: a waiting run, with a reason; then it has an error.
    let run = start(&mut c, "approval", json!({"order_id": "o-2"})).await;
    let a = c
        .post(
            "/v1/runs/{run_id}/cancel",
            &format!("/v1/runs/{run}/cancel"),
            json!({"reason": "no"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    let done = wait(&mut c, &run).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    assert!(done["error"].is_object(), "{done}");
    let a = c
        .post(
            "/v1/runs/{run_id}/cancel",
            &format!("/v1/runs/{run}/cancel"),
            json!({"nope": 1}),
        )
        .await;
    assert_eq!(code(&a), "invalid_json");

    // Lists, with filters; bad queries.
    c.get("/v1/runs", "/v1/runs").await;
    c.get(
        "/v1/runs",
        "/v1/runs?status=completed&limit=2&workflow=approval",
    )
    .await;
    let a = c.get("/v1/runs", "/v1/runs?status=bogus").await;
    assert_eq!(code(&a), "invalid_query");
    let a = c.get("/v1/runs", "/v1/runs?limit=-1").await;
    assert_eq!(code(&a), "invalid_query");
    let a = c
        .get("/v1/runs/{run_id}", &format!("/v1/runs/{run}?wait_ms=soon"))
        .await;
    assert_eq!(code(&a), "invalid_query");

    refusals::exercise(&mut c).await;
    schedules::exercise(&mut c).await;

    // Streams: documented as server-sent events.
    c.get("/v1/runs/stream", "/v1/runs/stream").await;
    c.get(
        "/v1/runs/{run_id}/stream",
        &format!("/v1/runs/{run}/stream"),
    )
    .await;

    // What no operation answers: an unknown path, a method a path does not serve. Their
    // bodies are the error envelope, with a listed code.
    let error_body = json!({"$ref": "#/components/schemas/ErrorBody"});
    for (method, uri, want) in [
        (Method::GET, "/v2/nothing", "not_found"),
        (Method::DELETE, "/v1/runs", "method_not_allowed"),
    ] {
        let resp = c
            .server
            .client
            .request(method, format!("http://{}{uri}", c.server.addr))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let body: Value = resp.json().await.unwrap();
        validate(&c.doc, &error_body, &body, uri);
        assert_eq!(body["error"]["code"], want);
    }

    // Every operation was met at least once, with a success.
    let met: BTreeSet<(String, String)> = c
        .seen
        .iter()
        .filter(|(_, _, status)| *status < 300)
        .map(|(m, p, _)| (m.to_ascii_lowercase(), p.clone()))
        .collect();
    for (method, path) in routes() {
        let method = if method == "ANY" { "put" } else { method };
        assert!(
            met.contains(&(method.to_ascii_lowercase(), path.to_string())),
            "{method} {path} was never answered with a success in this test"
        );
    }
    c.server.shutdown().await;
}

/// The validation above has teeth: `$ref`s resolve, unknown codes, missing or extra fields and
/// malformed timestamps are refused.
#[tokio::test]
async fn the_validation_refuses_what_the_document_does_not_allow() {
    let s = server().await;
    let doc = fetch_document(&s).await;
    let compile = |name: &str| {
        let mut root = json!({"$ref": format!("#/components/schemas/{name}")});
        root["components"] = doc["components"].clone();
        jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&root)
            .unwrap()
    };
    let refuses = |name: &str, instance: Value| {
        assert!(
            !compile(name).is_valid(&instance),
            "{name} accepts {instance}"
        );
    };
    refuses(
        "ErrorBody",
        json!({"error": {"code": "no_such_code", "message": "x"}}),
    );
    refuses("ErrorBody", json!({"error": {"code": "run_not_found"}}));
    let run = json!({
        "run_id": "r", "workflow": "w", "status": "completed", "input": {}, "output": 1,
        "error": null, "created_at": "2024-01-01T00:00:00.000Z",
        "updated_at": "2024-01-01T00:00:00.000Z", "parent_run_id": null, "schedule_id": null,
        "queue": "default",
    });
    assert!(compile("Run").is_valid(&run), "a valid run is refused");
    let mut extra = run.clone();
    extra["surprise"] = json!(1);
    refuses("Run", extra);
    let mut bad_status = run.clone();
    bad_status["status"] = json!("sleeping");
    refuses("Run", bad_status);
    let mut bad_time = run.clone();
    bad_time["created_at"] = json!("yesterday");
    refuses("Run", bad_time);
    let mut missing = run;
    missing.as_object_mut().unwrap().remove("output");
    refuses("Run", missing);
    s.shutdown().await;
}
