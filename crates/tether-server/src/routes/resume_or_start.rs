//! `POST /v1/hooks/{token}/resume-or-start`: a payload for a custom token whose run may not
//! exist yet, in one call (`Engine::resume_or_start`).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tether_core::redact_token;
use tether_engine::EngineError;
use tracing::Instrument;

use crate::error::ApiError;
use crate::json::{body_bytes, parse_json};
use crate::routes::hooks::idempotency_key;
use crate::AppState;

/// The body of `POST /v1/hooks/{token}/resume-or-start`. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResumeOrStart {
    /// The payload: any JSON the hook accepts.
    payload: Value,
    /// The registered workflow to start when no hook holds the token.
    workflow: String,
    /// Its input (default `{}`).
    #[serde(default = "empty_object")]
    input: Value,
    /// The id of the run to start (default: derived from the token, the same for every
    /// caller); a run already there with another workflow or input is `409 run_exists`.
    #[serde(default)]
    run_id: Option<String>,
}

/// `{"run_id", "started"}`: the answer of `resume-or-start`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResumedOrStarted {
    /// The run that received the payload, or will when it registers the token.
    run_id: String,
    /// Whether this call started the run.
    started: bool,
}

fn empty_object() -> Value {
    json!({})
}

/// `POST /v1/hooks/{token}/resume-or-start` → `202 {"run_id", "started"}`.
#[utoipa::path(
    post,
    path = "/v1/hooks/{token}/resume-or-start",
    tag = "hooks",
    summary = "Resume a hook, or start the run that will create it",
    description = "If a hook holds the token, the payload is delivered to it (validated against its definition). If none does, the run is started (once, however many callers race: its id is `run_id`, else derived from the token) and the payload is kept until the first hook registered with the token, which receives every kept payload in the order they were accepted. A kept payload is checked only by the workflow decoding it. `Idempotency-Key` dedupes as for a resume, kept payloads included.",
    params(
        ("token" = String, Path, description = "The hook's token"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the delivery idempotent (scoped to the token, bound to the payload it was first used with)"),
    ),
    request_body = ResumeOrStart,
    responses(
        (status = 202, description = "Accepted: delivered, or kept for the run's hook", body = ResumedOrStarted),
        (status = 400, description = "`invalid_json`, `invalid_input`, `invalid_payload`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`workflow_not_found`", body = crate::openapi::ErrorBody),
        (status = 409, description = "`run_exists`, `idempotency_key_reused` (nothing stored)", body = crate::openapi::ErrorBody),
        (status = 408, description = "`request_timeout`", body = crate::openapi::ErrorBody),
        (status = 413, description = "`payload_too_large`", body = crate::openapi::ErrorBody),
        (status = 500, description = "`hook_definition_missing`, `internal`", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn resume_or_start(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Ok(Path(token)) = path else {
        return Err(EngineError::InvalidPayload {
            message: "the token in the path is not UTF-8".into(),
        }
        .into());
    };
    let span = tracing::info_span!(
        "POST /v1/hooks/{token}/resume-or-start",
        token = %redact_token(&token),
        run_id = tracing::field::Empty
    );
    async {
        let bytes = body_bytes(body, state.payload_limit())?;
        let req: ResumeOrStart = parse_json(&bytes)?;
        let done = state
            .engine
            .resume_or_start(
                &token,
                req.payload,
                &req.workflow,
                req.input,
                req.run_id,
                idempotency_key(&headers),
            )
            .await?;
        tracing::Span::current().record("run_id", done.run_id.as_str());
        let answer = ResumedOrStarted {
            run_id: done.run_id,
            started: done.started,
        };
        Ok((StatusCode::ACCEPTED, Json(json!(answer))))
    }
    .instrument(span)
    .await
}
