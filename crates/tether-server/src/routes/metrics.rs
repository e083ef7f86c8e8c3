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
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let text = state.engine.render_metrics().await;
    ([(CONTENT_TYPE, METRICS_CONTENT_TYPE)], text)
}
