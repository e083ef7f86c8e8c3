//! `ANY /.well-known/workflow/v1/webhook/{token}`: a webhook call. The token is the credential
//! (no API token needed). The request becomes the payload the workflow receives; the caller
//! gets the webhook's fixed response, or, in manual mode, the one the workflow sends (504 after
//! the webhook's timeout), whichever node sharing the store runs the workflow
//! ([`tether_engine::Engine::resume_webhook`]).
//!
//! A verified webhook ([`tether_core::WebhookVerifier`]) checks the request first
//! (`webhook_verify.rs`): a refused one is answered `401` (`503` when the server lacks the
//! secret), counted in `tether_webhook_rejected_total{reason}`, and not stored. A verified
//! request carrying the sender's delivery id is stored under the idempotency key
//! `delivery:{id}` with that id as its `request_id`, so a retried delivery (even with other
//! headers: a new timestamp, a retry counter) is stored once and answered as a duplicate: the
//! static response, or in manual mode `200 {"duplicate": true}` at once.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use tether_core::webhook::{RespondWith, WebhookMeta};
use tether_core::WebhookVerifier;
use tether_core::{WebhookBody, WebhookRequest, WebhookResponse, HOOK_KIND_WEBHOOK};
use tether_engine::EngineError;

use crate::error::ApiError;
use crate::json::body_bytes;
use crate::AppState;

/// The body as its type says: JSON if it parses, else UTF-8 text, else base64 bytes.
fn classify(bytes: &[u8]) -> Option<WebhookBody> {
    if bytes.is_empty() {
        return None;
    }
    if let Ok(v) = serde_json::from_slice(bytes) {
        return Some(WebhookBody::Json(v));
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Some(WebhookBody::Text(s.to_string())),
        Err(_) => Some(WebhookBody::Base64(
            base64::engine::general_purpose::STANDARD.encode(bytes),
        )),
    }
}

fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        out.entry(name.as_str().to_string())
            .and_modify(|old| {
                old.push_str(", ");
                old.push_str(&v);
            })
            .or_insert(v);
    }
    out
}

/// The request a webhook call becomes (what the workflow receives).
pub(crate) fn build_request(
    request_id: String,
    method: &str,
    token: &str,
    raw_query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> WebhookRequest {
    WebhookRequest {
        request_id,
        method: method.to_string(),
        path: format!("{}{}", tether_core::WEBHOOK_PATH, token),
        query: raw_query
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default(),
        headers: header_map(headers),
        body: classify(body),
    }
}

/// Turn the workflow's response into an HTTP one (bad header names or values are skipped).
fn to_http(resp: WebhookResponse) -> Response {
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (body, content_type) = match resp.body {
        None => (Body::empty(), None),
        Some(WebhookBody::Json(v)) => (Body::from(v.to_string()), Some("application/json")),
        Some(WebhookBody::Text(t)) => (Body::from(t), Some("text/plain; charset=utf-8")),
        Some(WebhookBody::Base64(b)) => (
            Body::from(
                base64::engine::general_purpose::STANDARD
                    .decode(b.as_bytes())
                    .unwrap_or_default(),
            ),
            Some("application/octet-stream"),
        ),
    };
    let mut out = (status, body).into_response();
    if let Some(ct) = content_type {
        out.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static(ct),
        );
    }
    for (k, v) in resp.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            out.headers_mut().insert(name, value);
        }
    }
    out
}

/// Any method on a webhook URL.
#[utoipa::path(
    method(get, put, post, delete, options, head, patch, trace),
    path = "/.well-known/workflow/v1/webhook/{token}",
    tag = "hooks",
    summary = "Call a webhook (any method; never needs the API token)",
    description = "The request (method, query, headers, and its body: JSON, text or bytes) becomes the payload the workflow receives. The caller gets the webhook's fixed response (`202` with no body by default), or in manual mode the one the workflow sends, or `504 webhook_timeout` after the webhook's timeout.",
    params(("token" = String, Path, description = "The webhook's token")),
    responses(
        (status = "default", description = "The webhook's response: any status, headers and body the workflow chose"),
        (status = 400, description = "`invalid_json` (the body could not be read)", body = crate::openapi::ErrorBody),
        (status = 401, description = "A verified webhook refused the request, nothing was stored: `webhook_signature_missing` (no signature, or no timestamp where the sender signs one), `webhook_signature_invalid`, `webhook_timestamp_stale` (outside the tolerance)", body = crate::openapi::ErrorBody),
        (status = 404, description = "`hook_not_found` (unknown token, or not a webhook)", body = crate::openapi::ErrorBody),
        (status = 408, description = "`request_timeout`", body = crate::openapi::ErrorBody),
        (status = 413, description = "`payload_too_large`", body = crate::openapi::ErrorBody),
        (status = 503, description = "`webhook_secret_missing` (the server has no value for the secret the webhook names: a configuration error), or a storage error", body = crate::openapi::ErrorBody),
        (status = 504, description = "`webhook_timeout`", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn call(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let token = match path {
        Ok(Path(t)) => t,
        Err(_) => return Err(EngineError::HookNotFound.into()),
    };
    let hook = state.engine.hook(&token).await?;
    // A plain hook's token is not a URL: answered exactly like an unknown token.
    if hook.kind != HOOK_KIND_WEBHOOK {
        return Err(EngineError::HookNotFound.into());
    }
    let meta: WebhookMeta = serde_json::from_value(hook.metadata.clone()).map_err(|e| {
        ApiError::internal(format!(
            "webhook {} has unreadable settings: {e}",
            hook.run_id
        ))
    })?;
    let bytes = body_bytes(body, state.payload_limit())?;
    let delivery = match &meta.verify {
        Some(verifier) => checked(&state, verifier, &headers, &bytes)?,
        None => None,
    };
    let request_id = delivery
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let key = delivery;
    let keyed = key.is_some();
    let request = build_request(
        request_id,
        method.as_str(),
        &token,
        query.as_deref(),
        &headers,
        &bytes,
    );
    match meta.respond_with {
        RespondWith::Static { response } => {
            let payload = serde_json::to_value(&request)
                .map_err(|e| ApiError::internal(format!("cannot encode the request: {e}")))?;
            match state.engine.resume_hook(&token, payload, key).await {
                // A retried delivery whose headers changed: already stored, answered alike.
                Ok(_) | Err(EngineError::IdempotencyKeyReused) if keyed => Ok(to_http(response)),
                Ok(_) => Ok(to_http(response)),
                Err(e) => Err(e.into()),
            }
        }
        RespondWith::Manual { timeout_ms } => {
            let wait = Duration::from_millis(timeout_ms);
            match state
                .engine
                .resume_webhook(&token, &request, wait, key)
                .await
            {
                Ok(Some(response)) => Ok(to_http(response)),
                Ok(None) => Err(ApiError::webhook_timeout(timeout_ms)),
                Err(EngineError::IdempotencyKeyReused) if keyed => {
                    Ok(to_http(WebhookResponse::duplicate()))
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// Verify a request; `Ok` carries its delivery key (`delivery:{id}`, or `delivery:sha256:…`
/// for an id too long or odd to be a key), if the sender gave a delivery id. A refusal is
/// counted by reason; the secret never appears in a log or an answer.
fn checked(
    state: &AppState,
    verifier: &WebhookVerifier,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<String>, ApiError> {
    let now_secs = state.engine.clock().now_ms() / 1000;
    match crate::webhook_verify::verify(
        verifier,
        &state.options.webhook_secrets,
        headers,
        body,
        now_secs,
    ) {
        Ok(id) => Ok(id.map(|id| delivery_key(&id))),
        Err(refusal) => {
            state.engine.metrics().webhook_rejected(refusal.reason());
            tracing::debug!(
                reason = refusal.reason(),
                "webhook request refused by its verifier"
            );
            Err(refusal.into_api_error())
        }
    }
}

/// The idempotency key (and request id) of a delivery id.
fn delivery_key(id: &str) -> String {
    let plain = id.len() <= 200 && id.chars().all(|c| c.is_ascii_graphic());
    if plain {
        return format!("delivery:{id}");
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(id.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("delivery:sha256:{hex}")
}
