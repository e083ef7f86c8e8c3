//! [`ApiError`]: every error the API returns, as `{"error": {"code", "message"}}` with a fitting
//! HTTP status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tether_engine::EngineError;

/// An error answer: HTTP status, stable machine-readable code and a human-readable message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable code (`hook_not_found`, `invalid_json`, ...).
    pub code: &'static str,
    /// What went wrong, for a person.
    pub message: String,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// `400 invalid_json`: the body is not the JSON the endpoint expects.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// 400 `invalid_json`.
    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_json", message)
    }

    /// `400 invalid_query`: a query parameter is malformed.
    pub fn invalid_query(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_query", message)
    }

    /// `413 payload_too_large`: the body is over the limit.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("payload too large: the request body is over the limit of {limit} bytes"),
        )
    }

    /// `401 unauthorized`: the API token is missing or wrong.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// `404 not_found`: no such route.
    pub fn route_not_found(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route for {method} {path}"),
        )
    }

    /// `405 method_not_allowed`: the route exists, the method does not.
    pub fn method_not_allowed(method: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("method {method} is not allowed on this route"),
        )
    }
}

/// The HTTP status of an engine error.
fn engine_status(e: &EngineError) -> StatusCode {
    match e {
        EngineError::WorkflowNotFound { .. }
        | EngineError::RunNotFound { .. }
        | EngineError::HookNotFound => StatusCode::NOT_FOUND,
        EngineError::InvalidInput { .. }
        | EngineError::InvalidPayload { .. }
        | EngineError::HookSelfTarget { .. } => StatusCode::BAD_REQUEST,
        EngineError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        EngineError::RunFinished { .. } => StatusCode::CONFLICT,
        EngineError::HookDefinitionMissing { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        // Out of space: 507, the status WebDAV defined for it; the request may be retried.
        EngineError::Store(tether_store::StoreError::Full(_)) => StatusCode::INSUFFICIENT_STORAGE,
        EngineError::Store(_) | EngineError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        // `EngineError` is non-exhaustive: anything new is the server's problem until mapped.
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        ApiError {
            status: engine_status(&e),
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(code = self.code, message = %self.message, "request failed");
        }
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        (self.status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_map_to_statuses() {
        let cases = [
            (EngineError::HookNotFound, 404),
            (
                EngineError::InvalidPayload {
                    message: "x".into(),
                },
                400,
            ),
            (EngineError::PayloadTooLarge { size: 2, limit: 1 }, 413),
            (EngineError::HookDefinitionMissing { name: "d".into() }, 500),
            (EngineError::ShuttingDown, 503),
            (
                EngineError::Store(tether_store::StoreError::Unavailable("disk".into())),
                503,
            ),
            (
                EngineError::Store(tether_store::StoreError::Full("disk".into())),
                507,
            ),
            (
                EngineError::Store(tether_store::StoreError::ReadOnly("ro".into())),
                503,
            ),
        ];
        for (e, status) in cases {
            let code = e.code();
            let api = ApiError::from(e);
            assert_eq!(api.status.as_u16(), status, "{code}");
            assert_eq!(api.code, code);
        }
    }
}
