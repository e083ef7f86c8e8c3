//! [`ApiError`]: every error the API returns, as `{"error": {"code", "message"}}` with a fitting
//! HTTP status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tether_engine::EngineError;

/// Every error code the server answers with: `(code, status, when)`. The OpenAPI document's
/// `ErrorCode` schema is this list; the tests below check that each [`ApiError`] constructor,
/// each engine error and each code of the JSON safety net (`json_errors.rs`) is in it, with
/// its status.
pub(crate) const ERROR_CODES: &[(&str, u16, &str)] = &[
    (
        "bad_request",
        400,
        "a request the HTTP layer could not read",
    ),
    (
        "invalid_json",
        400,
        "the body is not the JSON the endpoint expects",
    ),
    ("invalid_query", 400, "a query parameter is malformed"),
    (
        "invalid_input",
        400,
        "the input does not fit the workflow's input type",
    ),
    (
        "invalid_payload",
        400,
        "the payload failed the hook definition's validation",
    ),
    (
        "hook_self_target",
        400,
        "a hook thread may not target the run's own workflow on the default task queue",
    ),
    (
        "invalid_link",
        400,
        "a resume link cannot be made as asked (an expiry past the idempotency window, a label too long, a webhook's token)",
    ),
    ("request_error", 400, "any other refused request"),
    ("unauthorized", 401, "the API token is missing or wrong"),
    (
        "webhook_signature_missing",
        401,
        "a verified webhook's request lacks its signature (or signed timestamp); nothing was stored",
    ),
    (
        "webhook_signature_invalid",
        401,
        "a verified webhook's request has a wrong signature; nothing was stored",
    ),
    (
        "webhook_timestamp_stale",
        401,
        "a verified webhook's signed timestamp is outside its tolerance; nothing was stored",
    ),
    (
        "link_invalid",
        403,
        "the resume link is altered, cut short, or signed by a key this server does not have",
    ),
    ("not_found", 404, "no such route"),
    (
        "workflow_not_found",
        404,
        "no workflow is registered under that name",
    ),
    (
        "workflow_not_found",
        400,
        "a schedule names a workflow that is not registered on this server",
    ),
    (
        "invalid_schedule",
        400,
        "the schedule's id, cron expression or time zone is not valid; the message says what to fix",
    ),
    ("run_not_found", 404, "no such run"),
    ("schedule_not_found", 404, "no such schedule"),
    (
        "hook_not_found",
        404,
        "no active hook holds the token (or it is not a webhook's)",
    ),
    (
        "hook_expired",
        410,
        "the hook holding the token expired (HookOptions::expires_in); its run takes no more payloads on it; nothing was stored",
    ),
    (
        "token_reserved",
        410,
        "the token's hook has ended and its run keeps the token reserved (HookOptions::reserve_for) until the time the message names; nothing was stored",
    ),
    (
        "method_not_allowed",
        405,
        "the route exists, the method does not",
    ),
    ("run_finished", 409, "the run has already ended"),
    (
        "schedule_exists",
        409,
        "a schedule with this id exists with other settings; nothing was stored",
    ),
    (
        "run_exists",
        409,
        "a run with the chosen run_id exists, started with another workflow or input; nothing was stored",
    ),
    (
        "idempotency_key_reused",
        409,
        "the Idempotency-Key was first used with another payload; nothing was stored",
    ),
    ("link_expired", 410, "the resume link has expired"),
    (
        "link_used",
        410,
        "the resume link was used before (a link works once)",
    ),
    (
        "request_timeout",
        408,
        "the request body did not arrive within the server's body timeout",
    ),
    (
        "payload_too_large",
        413,
        "the body is over the payload limit",
    ),
    ("uri_too_long", 414, "the URI is too long"),
    (
        "unsupported_media_type",
        415,
        "the body's media type is refused",
    ),
    (
        "invalid_request",
        422,
        "the request is well-formed but refused",
    ),
    (
        "headers_too_large",
        431,
        "the request's headers are too large",
    ),
    ("internal", 500, "the server's own failure"),
    (
        "hook_definition_missing",
        500,
        "the hook's definition is not registered on this server",
    ),
    (
        "storage_unavailable",
        503,
        "the storage backend failed; nothing was kept, retry later",
    ),
    (
        "storage_read_only",
        503,
        "the storage backend is read-only; retry later",
    ),
    (
        "webhook_secret_missing",
        503,
        "the server has no value for a verified webhook's secret (a configuration error); nothing was stored",
    ),
    (
        "shutting_down",
        503,
        "the server is stopping; retry against a running one",
    ),
    (
        "webhook_timeout",
        504,
        "the request reached the run, but the workflow sent no response in time",
    ),
    (
        "storage_full",
        507,
        "the storage backend is out of space; retry later",
    ),
];

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

    /// `500 internal`: the server's own failure.
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

    /// `408 request_timeout`: the body did not arrive within the body timeout.
    pub fn request_timeout() -> Self {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request body did not arrive in time; send it faster or in full",
        )
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

    /// `504 webhook_timeout`: a manual webhook's workflow sent no response within `timeout_ms`.
    pub fn webhook_timeout(timeout_ms: u64) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "webhook_timeout",
            format!(
                "the request was delivered to the run, but the workflow sent no response within {timeout_ms} ms"
            ),
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
        | EngineError::HookNotFound
        | EngineError::ScheduleNotFound { .. } => StatusCode::NOT_FOUND,
        EngineError::HookExpired | EngineError::TokenReserved { .. } => StatusCode::GONE,
        EngineError::InvalidInput { .. }
        | EngineError::InvalidSchedule { .. }
        | EngineError::InvalidPayload { .. }
        | EngineError::HookSelfTarget { .. } => StatusCode::BAD_REQUEST,
        EngineError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        EngineError::RunFinished { .. }
        | EngineError::IdempotencyKeyReused
        | EngineError::RunExists { .. }
        | EngineError::ScheduleExists { .. } => StatusCode::CONFLICT,
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
            (EngineError::HookExpired, 410),
            (EngineError::TokenReserved { until_ms: 0 }, 410),
            (
                EngineError::InvalidPayload {
                    message: "x".into(),
                },
                400,
            ),
            (EngineError::PayloadTooLarge { size: 2, limit: 1 }, 413),
            (EngineError::IdempotencyKeyReused, 409),
            (EngineError::HookDefinitionMissing { name: "d".into() }, 500),
            (EngineError::ShuttingDown, 503),
            (
                EngineError::Store(tether_store::StoreError::unavailable("disk")),
                503,
            ),
            (
                EngineError::Store(tether_store::StoreError::full("disk")),
                507,
            ),
            (
                EngineError::Store(tether_store::StoreError::read_only("ro")),
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

    /// Whether `(code, status)` is listed in [`ERROR_CODES`].
    fn listed(code: &str, status: u16) -> bool {
        ERROR_CODES
            .iter()
            .any(|(c, s, _)| *c == code && *s == status)
    }

    #[test]
    fn every_error_the_server_answers_with_is_listed() {
        let engine_errors = [
            EngineError::WorkflowNotFound {
                name: "w".into(),
                known: String::new(),
            },
            EngineError::InvalidInput {
                workflow: "w".into(),
                message: "m".into(),
            },
            EngineError::RunNotFound { run_id: "r".into() },
            EngineError::RunFinished {
                run_id: "r".into(),
                status: tether_core::RunStatus::Completed,
            },
            EngineError::HookNotFound,
            EngineError::HookExpired,
            EngineError::TokenReserved { until_ms: 0 },
            EngineError::InvalidPayload {
                message: "m".into(),
            },
            EngineError::PayloadTooLarge { size: 2, limit: 1 },
            EngineError::IdempotencyKeyReused,
            EngineError::RunExists { run_id: "r".into() },
            EngineError::HookDefinitionMissing { name: "d".into() },
            EngineError::Store(tether_store::StoreError::full("f")),
            EngineError::Store(tether_store::StoreError::read_only("r")),
            EngineError::Store(tether_store::StoreError::unavailable("u")),
            EngineError::ShuttingDown,
            EngineError::HookSelfTarget {
                message: "m".into(),
            },
            EngineError::InvalidSchedule {
                message: "m".into(),
            },
            EngineError::ScheduleNotFound { id: "s".into() },
            EngineError::ScheduleExists { id: "s".into() },
        ];
        let mut answers: Vec<ApiError> = engine_errors.into_iter().map(ApiError::from).collect();
        answers.extend([
            ApiError::internal("m"),
            ApiError::invalid_json("m"),
            ApiError::invalid_query("m"),
            ApiError::payload_too_large(1),
            ApiError::request_timeout(),
            ApiError::unauthorized("m"),
            ApiError::route_not_found("GET", "/"),
            ApiError::method_not_allowed("GET"),
            ApiError::webhook_timeout(1),
            // `POST /v1/schedules` naming an unknown workflow (routes/schedules.rs).
            ApiError {
                status: StatusCode::BAD_REQUEST,
                ..ApiError::from(EngineError::WorkflowNotFound {
                    name: "w".into(),
                    known: String::new(),
                })
            },
        ]);
        answers.extend(crate::routes::links::every_error());
        use crate::webhook_verify::Refusal;
        answers.extend(
            [
                Refusal::SignatureMissing("m".into()),
                Refusal::SignatureInvalid,
                Refusal::TimestampStale { tolerance_secs: 1 },
                Refusal::SecretMissing("N".into()),
            ]
            .into_iter()
            .map(Refusal::into_api_error),
        );
        for e in &answers {
            assert!(
                listed(e.code, e.status.as_u16()),
                "{} {} is missing from ERROR_CODES",
                e.status,
                e.code
            );
        }
        for status in 400..600u16 {
            let Ok(status) = StatusCode::from_u16(status) else {
                continue;
            };
            let code = crate::json_errors::code_of(status);
            // The safety net's catch-alls keep the status they wrap.
            if code != "request_error" && code != "internal" {
                assert!(listed(code, status.as_u16()), "{status} {code}");
            } else {
                assert!(ERROR_CODES.iter().any(|(c, _, _)| *c == code), "{code}");
            }
        }
        // And nothing is listed that nothing answers with.
        for (code, _, _) in ERROR_CODES {
            let answered = answers.iter().any(|e| e.code == *code)
                || (400..600u16).any(|s| {
                    StatusCode::from_u16(s).is_ok_and(|s| crate::json_errors::code_of(s) == *code)
                });
            assert!(answered, "{code} is listed but never answered");
        }
    }
}
