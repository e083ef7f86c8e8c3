//! Workflows, health, and the JSON answers for unknown routes and methods.

use axum::extract::State;
use axum::http::{Method, Uri};
use axum::Json;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::AppState;

/// `GET /v1/workflows` → `{"workflows": [names, sorted]}`.
#[utoipa::path(
    get,
    path = "/v1/workflows",
    tag = "meta",
    summary = "The registered workflows",
    responses((status = 200, description = "Their names, sorted", body = crate::openapi::Workflows)),
)]
pub(crate) async fn workflows(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "workflows": state.engine.registry().workflow_names() }))
}

/// `GET /healthz` → `{"ok": true, "backend": "sqlite"}`.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "meta",
    summary = "Health (never needs the API token)",
    responses((status = 200, description = "Up", body = crate::openapi::Health)),
)]
pub(crate) async fn healthz(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "ok": true, "backend": state.engine.store().backend_name() }))
}

/// Any unknown route → `404 not_found`.
pub(crate) async fn not_found(method: Method, uri: Uri) -> ApiError {
    // The path only: a query string could carry anything.
    ApiError::route_not_found(method.as_str(), uri.path())
}

/// A known route with a method it does not serve → `405 method_not_allowed`.
pub(crate) async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::method_not_allowed(method.as_str())
}
