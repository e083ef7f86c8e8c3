//! `/v1/hooks/{token}`: deliver a payload to a hook, look a hook up.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::Value;
use tether_core::redact_token;
use tether_engine::EngineError;
use tracing::Instrument;

use crate::error::ApiError;
use crate::json::{body_bytes, hook_with_run_json, parse_json, run_id_json};
use crate::AppState;

/// The header whose value makes a resume idempotent (scoped to the token).
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The token of the path (percent-decoded by axum); one that does not decode to UTF-8 names
/// no hook.
pub(crate) fn token_of(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    match path {
        Ok(Path(token)) => Ok(token),
        Err(_) => Err(EngineError::HookNotFound.into()),
    }
}

/// The `Idempotency-Key` header, if present and not empty.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(IDEMPOTENCY_KEY)?;
    let key = String::from_utf8_lossy(value.as_bytes()).into_owned();
    (!key.is_empty()).then_some(key)
}

/// `POST /v1/hooks/{token}`, body = the payload → `202 {"run_id"}` once the payload is durably
/// appended to the run's journal. A retry with the same `Idempotency-Key` and payload gets the
/// same answer and stores nothing new; the same key with another payload is refused with
/// `409 idempotency_key_reused` (nothing stored).
#[utoipa::path(
    post,
    path = "/v1/hooks/{token}",
    tag = "hooks",
    summary = "Resume a hook",
    description = "Answers once the payload is durably appended to the run's journal. A retry with the same `Idempotency-Key` and payload gets the same answer and stores nothing new; the same key with another payload is refused with `409 idempotency_key_reused` and nothing is stored.",
    params(
        ("token" = String, Path, description = "The hook's token"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the resume idempotent (scoped to the token; kept as long as the run's journal, bound to the payload it was first used with)"),
    ),
    request_body(content = Value, description = "The payload: any JSON the hook accepts"),
    responses(
        (status = 202, description = "Accepted", body = crate::openapi::RunId),
        (status = 400, description = "`invalid_json`, `invalid_payload`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`hook_not_found` (unknown or released token)", body = crate::openapi::ErrorBody),
        (status = 410, description = "`hook_expired` (the hook expired; its run takes no more payloads on it), `token_reserved` (the token's hook ended and its run keeps it reserved for a while)", body = crate::openapi::ErrorBody),
        (status = 409, description = "`idempotency_key_reused` (the key was first used with another payload; nothing stored)", body = crate::openapi::ErrorBody),
        (status = 408, description = "`request_timeout`", body = crate::openapi::ErrorBody),
        (status = 413, description = "`payload_too_large`", body = crate::openapi::ErrorBody),
        (status = 500, description = "`hook_definition_missing`, `internal`", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn resume(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // Refusals made here, before the engine, count in its metrics too.
    let refused = |e: ApiError| {
        state.engine.metrics().resume_refused(e.code);
        e
    };
    let token = token_of(path).map_err(refused)?;
    let span = tracing::info_span!(
        "POST /v1/hooks/{token}",
        token = %redact_token(&token),
        run_id = tracing::field::Empty
    );
    async {
        let bytes = body_bytes(body, state.payload_limit()).map_err(refused)?;
        let payload: Value = parse_json(&bytes).map_err(refused)?;
        let run_id = state
            .engine
            .resume_hook(&token, payload, idempotency_key(&headers))
            .await?;
        tracing::Span::current().record("run_id", run_id.as_str());
        tracing::debug!("payload accepted");
        Ok((StatusCode::ACCEPTED, Json(run_id_json(run_id))))
    }
    .instrument(span)
    .await
}

/// `GET /v1/hooks/{token}` → the active hook holding the token, with its `run_id` (and
/// `expires_at` if it expires); a token whose hook expired (or that is reserved) answers
/// `410` as a resume would.
#[utoipa::path(
    get,
    path = "/v1/hooks/{token}",
    tag = "hooks",
    summary = "The hook holding a token",
    params(("token" = String, Path, description = "The hook's token")),
    responses(
        (status = 200, description = "The hook and its run", body = crate::openapi::HookWithRun),
        (status = 404, description = "`hook_not_found`", body = crate::openapi::ErrorBody),
        (status = 410, description = "`hook_expired`, `token_reserved`: the token's last hook expired, or it is reserved (as a resume would be answered)", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn get_hook(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let token = token_of(path)?;
    let hook = state.engine.hook(&token).await?;
    Ok(Json(hook_with_run_json(
        &hook,
        &state.public_url(),
        state.engine.registry(),
    )))
}
