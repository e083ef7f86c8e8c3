//! The schedule operations, each answered with a success and with its errors, for the
//! document check of `main.rs`.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{code, Checker};

/// Create (201, then 200 for the same body), list, read, pause, resume, delete, and the
/// errors: a bad expression or zone, an unknown workflow, an existing id, an unknown id.
pub(crate) async fn exercise(c: &mut Checker) {
    let body = json!({
        "id": "nightly", "workflow": "approval", "cron": "0 3 * * *",
        "timezone": "Europe/Paris", "input": {"order_id": "o-s"},
    });
    let a = c.post("/v1/schedules", "/v1/schedules", body.clone()).await;
    assert_eq!(a.status, StatusCode::CREATED);
    let a = c.post("/v1/schedules", "/v1/schedules", body.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "the same create again");
    let mut other = body.clone();
    other["cron"] = json!("0 4 * * *");
    let a = c.post("/v1/schedules", "/v1/schedules", other).await;
    assert_eq!(
        (a.status, code(&a)),
        (StatusCode::CONFLICT, "schedule_exists")
    );
    for (field, value, want) in [
        ("cron", json!("every night"), "invalid_schedule"),
        ("timezone", json!("Mars/Olympus"), "invalid_schedule"),
        ("overlap", json!("never"), "invalid_schedule"),
        ("workflow", json!("nope"), "workflow_not_found"),
    ] {
        let mut bad = body.clone();
        bad["id"] = json!("bad");
        bad[field] = value;
        let a = c.post("/v1/schedules", "/v1/schedules", bad).await;
        assert_eq!(
            (a.status, code(&a)),
            (StatusCode::BAD_REQUEST, want),
            "{field}"
        );
    }
    c.get("/v1/schedules", "/v1/schedules").await;
    let a = c.get("/v1/schedules/{id}", "/v1/schedules/nightly").await;
    assert_eq!(a.status, StatusCode::OK);
    let a = c
        .post(
            "/v1/schedules/{id}/pause",
            "/v1/schedules/nightly/pause",
            json!({}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let a = c
        .post(
            "/v1/schedules/{id}/resume",
            "/v1/schedules/nightly/resume",
            json!({}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let a = c
        .call(
            Method::DELETE,
            "/v1/schedules/{id}",
            "/v1/schedules/nightly",
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    for (method, template, uri) in [
        (Method::GET, "/v1/schedules/{id}", "/v1/schedules/nightly"),
        (
            Method::DELETE,
            "/v1/schedules/{id}",
            "/v1/schedules/nightly",
        ),
        (
            Method::POST,
            "/v1/schedules/{id}/pause",
            "/v1/schedules/nightly/pause",
        ),
        (
            Method::POST,
            "/v1/schedules/{id}/resume",
            "/v1/schedules/nightly/resume",
        ),
    ] {
        let a = c.call(method, template, uri, None).await;
        assert_eq!(
            (a.status, code(&a)),
            (StatusCode::NOT_FOUND, "schedule_not_found"),
            "{uri}"
        );
    }
}
