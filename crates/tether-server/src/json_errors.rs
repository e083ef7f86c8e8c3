//! The safety net behind "every error is JSON": an error answer that is not
//! `application/json` (an extractor's plain-text rejection, in a route that forgot to map it)
//! is rewritten as `{"error": {"code", "message"}}` with the same status. Webhook answers are
//! left alone (a workflow chooses those itself), and so are a resume link's (`/l/{link}`:
//! HTML error pages for a browser).

use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Most bytes of a plain-text error kept as the JSON error's message.
const MAX_MESSAGE: usize = 1024;

/// A stable code for a status without one of ours.
pub(crate) fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_request",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers_too_large",
        StatusCode::URI_TOO_LONG => "uri_too_long",
        s if s.is_server_error() => "internal",
        _ => "request_error",
    }
}

/// Whether answers to a request for `path` are left as they are: a webhook's (the workflow
/// chooses it) and a resume link's (HTML for a browser).
pub(crate) fn exempt(path: &str) -> bool {
    path.starts_with(tether_core::WEBHOOK_PATH) || path.starts_with("/l/")
}

/// `resp` as a JSON error if it is an error answer that is not JSON yet, unless the request
/// was [`exempt`].
pub(crate) async fn as_json(exempt: bool, resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
    if exempt || is_json || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = match axum::body::to_bytes(body, MAX_MESSAGE * 4).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    };
    let mut message: String = text.trim().chars().take(MAX_MESSAGE).collect();
    if message.is_empty() {
        message = status.canonical_reason().unwrap_or("error").to_string();
    }
    let mut out = ApiError::new(status, code_of(status), message).into_response();
    // Keep headers that still mean something (e.g. `Allow`, `WWW-Authenticate`).
    for (name, value) in parts.headers.iter() {
        if name != CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}
