//! `GET /metrics`: the engine's metrics in the Prometheus / OpenMetrics text format.
//!
//! Behind the API token like `/v1/...` when one is set (Prometheus sends it with
//! `authorization: {credentials: ...}` in its scrape config); open otherwise.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use tether_engine::metrics::CONTENT_TYPE as METRICS_CONTENT_TYPE;

use crate::AppState;

/// `GET /metrics` → every `tether_…` metric, as text. The run counts come from one grouped
/// query on the store; the rest is read from memory.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "meta",
    summary = "Metrics, every one named tether_…",
    responses((
        status = 200,
        description = "OpenMetrics text (`application/openmetrics-text; version=1.0.0; charset=utf-8`), which Prometheus reads",
        content_type = "application/openmetrics-text",
        body = String,
    )),
)]
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let text = state.engine.render_metrics().await;
    ([(CONTENT_TYPE, METRICS_CONTENT_TYPE)], text)
}
