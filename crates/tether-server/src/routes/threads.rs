//! Hook threads, shared state and signals: `POST /v1/runs/{run_id}/hooks`,
//! `GET /v1/runs/{run_id}/state`, `POST /v1/signals/{signal_id}`.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tether_core::{RetryPolicy, SpawnOptions};
use tether_engine::EngineError;

use crate::error::ApiError;
use crate::json::{body_bytes, parse_json};
use crate::routes::hooks::idempotency_key;
use crate::AppState;

/// The body of `POST /v1/runs/{run_id}/hooks`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SpawnBody {
    /// The workflow the thread runs.
    workflow_name: String,
    /// The task queue it runs on (default: the run's).
    #[serde(default)]
    task_queue: Option<String>,
    /// Its arguments (default null).
    #[serde(default)]
    args: Value,
    /// How a failing attempt is retried (default: 3 attempts).
    #[serde(default)]
    #[schema(value_type = Option<crate::openapi::RetryPolicy>)]
    retry: Option<RetryPolicy>,
}

fn path_of(
    path: Result<Path<String>, PathRejection>,
    missing: EngineError,
) -> Result<String, ApiError> {
    match path {
        Ok(Path(p)) => Ok(p),
        Err(_) => Err(missing.into()),
    }
}

/// `POST /v1/runs/{run_id}/hooks` `{"workflow_name", "task_queue"?, "args", "retry"?}` →
/// `202 {"hook_id"}`: a hook thread started in the run's namespace. Unknown run 404,
/// finished run 409, a target on the run's own workflow 400.
#[utoipa::path(
    post,
    path = "/v1/runs/{run_id}/hooks",
    tag = "threads",
    summary = "Start a hook thread in a running run",
    params(
        ("run_id" = String, Path, description = "The run"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the spawn idempotent: a retry with the same key, workflow and args answers `200` with the thread the first call started; other workflow or args get `409 idempotency_key_reused`"),
    ),
    request_body = SpawnBody,
    responses(
        (status = 202, description = "Started", body = crate::openapi::HookId),
        (status = 200, description = "Started before by a call with the same `Idempotency-Key`", body = crate::openapi::HookId),
        (status = 400, description = "`invalid_json`, `hook_self_target`, `invalid_input`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`run_not_found`, `workflow_not_found`", body = crate::openapi::ErrorBody),
        (status = 409, description = "`run_finished`, `idempotency_key_reused`", body = crate::openapi::ErrorBody),
        (status = 408, description = "`request_timeout`", body = crate::openapi::ErrorBody),
        (status = 413, description = "`payload_too_large`", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn spawn(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let run_id = path_of(
        path,
        EngineError::RunNotFound {
            run_id: String::new(),
        },
    )?;
    let bytes = body_bytes(body, state.payload_limit())?;
    let body: SpawnBody = parse_json(&bytes)?;
    let options = SpawnOptions {
        workflow_name: Some(body.workflow_name),
        task_queue: body.task_queue,
        args: body.args,
        retry: body.retry.unwrap_or_default(),
    };
    let key = idempotency_key(&headers);
    let started = state
        .engine
        .spawn_hook_with(&run_id, options, key.as_deref())
        .await?;
    let status = if started.created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({ "hook_id": started.run_id }))))
}

/// `GET /v1/runs/{run_id}/state` → the shared state of the run's namespace, as an object.
#[utoipa::path(
    get,
    path = "/v1/runs/{run_id}/state",
    tag = "threads",
    summary = "The run's shared state",
    params(("run_id" = String, Path, description = "The run")),
    responses(
        (status = 200, description = "The state, key to value", body = crate::openapi::SharedState),
        (status = 404, description = "`run_not_found`", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn get_state(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let run_id = path_of(
        path,
        EngineError::RunNotFound {
            run_id: String::new(),
        },
    )?;
    let map = state.engine.state(&run_id).await?;
    Ok(Json(Value::Object(map)))
}

/// `POST /v1/signals/{signal_id}`, body = the payload → `202 {"signal_id", "delivered_to"}`
/// (`delivered_to` is the waiting run that got it, or null when it is kept for a later wait).
/// A retry with the same `Idempotency-Key` and payload gets the first answer and stores
/// nothing new; the same key with another payload is refused with
/// `409 idempotency_key_reused` (nothing stored).
#[utoipa::path(
    post,
    path = "/v1/signals/{signal_id}",
    tag = "threads",
    summary = "Send a signal",
    description = "Delivers the payload to the oldest run waiting on the signal, or keeps it for the next wait. A retry with the same `Idempotency-Key` and payload gets the first answer again (the same `delivered_to`, even if a kept signal has been taken since) and stores nothing new; the same key with another payload is refused with `409 idempotency_key_reused` and nothing is stored.",
    params(
        ("signal_id" = String, Path, description = "The signal"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the send idempotent (scoped to the signal id, bound to the payload it was first used with; forgotten after the idempotency window)"),
    ),
    request_body(content = Value, description = "The payload: any JSON"),
    responses(
        (status = 202, description = "Delivered or kept (or sent before with the same `Idempotency-Key` and payload)", body = crate::openapi::SignalSent),
        (status = 400, description = "`invalid_json`, `invalid_payload`", body = crate::openapi::ErrorBody),
        (status = 408, description = "`request_timeout`", body = crate::openapi::ErrorBody),
        (status = 409, description = "`idempotency_key_reused` (the key was first used with another payload; nothing stored)", body = crate::openapi::ErrorBody),
        (status = 413, description = "`payload_too_large`", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn signal(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let signal_id = path_of(
        path,
        EngineError::InvalidPayload {
            message: "the signal id is not valid UTF-8".into(),
        },
    )?;
    let bytes = body_bytes(body, state.payload_limit())?;
    let payload: Value = parse_json(&bytes)?;
    let key = idempotency_key(&headers);
    let delivered_to = state
        .engine
        .signal_with(&signal_id, payload, key.as_deref())
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "signal_id": signal_id, "delivered_to": delivered_to })),
    ))
}
