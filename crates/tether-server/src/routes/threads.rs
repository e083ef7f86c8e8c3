//! Hook threads, shared state and signals: `POST /v1/runs/{run_id}/hooks`,
//! `GET /v1/runs/{run_id}/state`, `POST /v1/signals/{signal_id}`.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tether_core::{RetryPolicy, SpawnOptions};
use tether_engine::EngineError;

use crate::error::ApiError;
use crate::json::{body_bytes, parse_json};
use crate::AppState;

/// The body of `POST /v1/runs/{run_id}/hooks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SpawnBody {
    workflow_name: String,
    #[serde(default)]
    task_queue: Option<String>,
    #[serde(default)]
    args: Value,
    #[serde(default)]
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
pub(crate) async fn spawn(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
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
    let hook_id = state.engine.spawn_hook(&run_id, options).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "hook_id": hook_id }))))
}

/// `GET /v1/runs/{run_id}/state` → the shared state of the run's namespace, as an object.
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
pub(crate) async fn signal(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
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
    let delivered_to = state.engine.signal(&signal_id, payload).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "signal_id": signal_id, "delivered_to": delivered_to })),
    ))
}
