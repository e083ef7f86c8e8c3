//! Entry points for the fuzz targets in `fuzz/` (not part of the supported API): the exact
//! decoding the handlers apply to request bodies, and the webhook request the server builds
//! from an HTTP request.

use axum::http::HeaderMap;
use tether_core::WebhookRequest;

use crate::error::ApiError;
use crate::json::parse_json;

/// The request bodies the API parses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// `POST /v1/runs`.
    StartRun,
    /// `POST /v1/runs/{run_id}/hooks`.
    SpawnHook,
    /// `POST /v1/runs/{run_id}/cancel`.
    Cancel,
    /// `POST /v1/hooks/{token}` and `POST /v1/signals/{id}`: any JSON value.
    Payload,
}

/// Decode `bytes` as the handler of `kind` does, stopping before the engine is called.
pub fn decode_body(kind: BodyKind, bytes: &[u8]) -> Result<(), ApiError> {
    match kind {
        BodyKind::StartRun => parse_json::<crate::routes::runs::StartRun>(bytes).map(drop),
        BodyKind::SpawnHook => parse_json::<crate::routes::threads::SpawnBody>(bytes).map(drop),
        BodyKind::Cancel => crate::routes::runs::cancel_body(bytes).map(drop),
        BodyKind::Payload => parse_json::<serde_json::Value>(bytes).map(drop),
    }
}

/// The [`WebhookRequest`] the webhook handler builds for this HTTP request.
pub fn webhook_request(
    method: &str,
    token: &str,
    raw_query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> WebhookRequest {
    crate::routes::webhooks::build_request(
        "fuzz".to_string(),
        method,
        token,
        raw_query,
        headers,
        body,
    )
}
