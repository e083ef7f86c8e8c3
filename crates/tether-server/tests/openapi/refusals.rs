//! Refused starts (unknown workflow, invalid input, bad JSON, a bad queue name) and unknown
//! runs and hooks (404 on every route that names one), for the document check of `main.rs`.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{code, Checker, TOKEN};

/// Each refusal once, plus a run stored on a queue no node serves (201).
pub(crate) async fn exercise(c: &mut Checker) {
    // Starting: unknown workflow, invalid input, not JSON, unknown field.
    let a = c
        .post("/v1/runs", "/v1/runs", json!({"workflow": "nope"}))
        .await;
    assert_eq!(
        (a.status, code(&a)),
        (StatusCode::NOT_FOUND, "workflow_not_found")
    );
    let a = c
        .post(
            "/v1/runs",
            "/v1/runs",
            json!({"workflow": "approval", "input": 7}),
        )
        .await;
    assert_eq!(
        (a.status, code(&a)),
        (StatusCode::BAD_REQUEST, "invalid_input")
    );
    let a = c
        .call_as(
            Some(TOKEN),
            Method::POST,
            "/v1/runs",
            "/v1/runs",
            Some(b"{nope".to_vec()),
        )
        .await;
    assert_eq!(code(&a), "invalid_json");
    let a = c
        .post(
            "/v1/runs",
            "/v1/runs",
            json!({"workflow": "approval", "inptu": {}}),
        )
        .await;
    assert_eq!(code(&a), "invalid_json");
    let a = c
        .post(
            "/v1/runs",
            "/v1/runs",
            json!({"workflow": "approval", "queue": "no spaces"}),
        )
        .await;
    assert_eq!(
        (a.status, code(&a)),
        (StatusCode::BAD_REQUEST, "invalid_input")
    );
    let a = c
        .post(
            "/v1/runs",
            "/v1/runs",
            json!({"workflow": "slack_bot", "input": {"channel": "Q"}, "queue": "elsewhere"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "a run on a queue is stored");

    // Unknown runs and hooks: 404 everywhere.
    for template in [
        "/v1/runs/{run_id}",
        "/v1/runs/{run_id}/events",
        "/v1/runs/{run_id}/hooks",
        "/v1/runs/{run_id}/state",
        "/v1/runs/{run_id}/threads",
        "/v1/runs/{run_id}/stream",
    ] {
        let a = c.get(template, &template.replace("{run_id}", "nope")).await;
        assert_eq!(
            (a.status, code(&a)),
            (StatusCode::NOT_FOUND, "run_not_found"),
            "{template}"
        );
    }
    let a = c
        .post(
            "/v1/runs/{run_id}/cancel",
            "/v1/runs/nope/cancel",
            json!({}),
        )
        .await;
    assert_eq!(code(&a), "run_not_found");
    let a = c
        .post(
            "/v1/runs/{run_id}/hooks",
            "/v1/runs/nope/hooks",
            json!({"workflow_name": "enrich_hook"}),
        )
        .await;
    assert_eq!(code(&a), "run_not_found");
    let a = c.get("/v1/hooks/{token}", "/v1/hooks/nope").await;
    assert_eq!(code(&a), "hook_not_found");
}
