//! `/v1/schedules`: durable cron schedules. Create, list, read, delete, pause, resume; each
//! tick of a schedule starts one run `sched:{id}:{tick_ms}` of its workflow (see
//! `tether_engine::schedules`).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tether_core::time_fmt::rfc3339_ms;
use tether_engine::schedules::{CatchUp, Overlap, ScheduleRecord, ScheduleSpec};
use tether_engine::EngineError;

use crate::error::ApiError;
use crate::json::{body_bytes, parse_json};
use crate::AppState;

/// The body of `POST /v1/schedules`. Unknown fields are refused (a typo must not create a
/// schedule with a default).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateSchedule {
    /// The schedule id: 1 to 128 letters, digits and `-_.:`.
    id: String,
    /// The registered workflow each tick starts.
    workflow: String,
    /// A cron expression: 5 fields (`minute hour day-of-month month day-of-week`), or 6 with
    /// seconds first (`*/10 * * * * *`: every 10 seconds).
    cron: String,
    /// The IANA time zone the expression is read in (default `UTC`).
    #[serde(default)]
    timezone: Option<String>,
    /// The input of every run it starts (default `{}`).
    #[serde(default = "empty_object")]
    input: Value,
    /// A tick while the previous run goes on: `skip` (default) or `allow`.
    #[serde(default)]
    overlap: Option<String>,
    /// Ticks missed while no node was up: `one` (default: the latest runs once) or `skip`.
    #[serde(default)]
    catch_up: Option<String>,
}

fn empty_object() -> Value {
    json!({})
}

/// A schedule.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Schedule {
    /// Its id.
    id: String,
    /// The workflow each tick starts.
    workflow: String,
    /// The cron expression.
    cron: String,
    /// The IANA time zone it is read in.
    timezone: String,
    /// The input of its runs.
    input: Value,
    /// `skip` or `allow`.
    overlap: String,
    /// `one` or `skip`.
    catch_up: String,
    /// Paused: no tick fires.
    paused: bool,
    /// The next tick, RFC 3339 with milliseconds (null when the expression has no more).
    #[schema(required = true, format = DateTime)]
    next_tick: Option<String>,
    /// The next tick, ms since the Unix epoch.
    #[schema(required = true)]
    next_tick_ms: Option<u64>,
    /// The run of its latest tick, if any.
    #[schema(required = true)]
    last_run_id: Option<String>,
    /// When it was created, RFC 3339 with milliseconds.
    #[schema(format = DateTime)]
    created_at: String,
    /// When it last changed (created, ticked, paused, resumed).
    #[schema(format = DateTime)]
    updated_at: String,
}

/// `GET /v1/schedules`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScheduleList {
    /// Every schedule, by id.
    schedules: Vec<Schedule>,
}

/// A schedule as answered.
pub(crate) fn schedule_json(s: &ScheduleRecord) -> Value {
    json!({
        "id": s.spec.id,
        "workflow": s.spec.workflow,
        "cron": s.spec.cron,
        "timezone": s.spec.timezone,
        "input": s.spec.input,
        "overlap": s.spec.overlap.as_str(),
        "catch_up": s.spec.catch_up.as_str(),
        "paused": s.paused,
        "next_tick": s.next_tick_ms.map(rfc3339_ms),
        "next_tick_ms": s.next_tick_ms,
        "last_run_id": s.last_run_id,
        "created_at": rfc3339_ms(s.created_at_ms),
        "updated_at": rfc3339_ms(s.updated_at_ms),
    })
}

fn invalid(message: String) -> ApiError {
    EngineError::InvalidSchedule { message }.into()
}

fn id_of(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    match path {
        Ok(Path(id)) => Ok(id),
        Err(_) => Err(EngineError::ScheduleNotFound {
            id: "(undecodable id)".into(),
        }
        .into()),
    }
}

/// `POST /v1/schedules` → `201` the schedule; `200` when the same create was made before.
#[utoipa::path(
    post,
    path = "/v1/schedules",
    tag = "schedules",
    operation_id = "create_schedule",
    summary = "Create a schedule",
    description = "Each tick of `cron` (in `timezone`, UTC by default) starts one run of `workflow` with `input`, whose id is `sched:{id}:{tick_ms}`: exactly one per tick, whichever nodes are up. A tick while the previous run goes on is skipped with `overlap: skip` (the default). Ticks missed while no node was up: with `catch_up: one` (the default) the latest runs once, with `skip` none. Repeating a create exactly answers `200` with the schedule; the same id with other settings is refused with `409 schedule_exists`.",
    request_body = CreateSchedule,
    responses(
        (status = 201, description = "Created", body = Schedule),
        (status = 200, description = "Created before by the same request", body = Schedule),
        (status = 400, description = "`invalid_json`, `invalid_schedule`, `workflow_not_found`, `invalid_input`", body = crate::openapi::ErrorBody),
        (status = 409, description = "`schedule_exists`", body = crate::openapi::ErrorBody),
        (status = 413, description = "`payload_too_large`", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let bytes = body_bytes(body, state.payload_limit())?;
    let body: CreateSchedule = parse_json(&bytes)?;
    let overlap = match body.overlap.as_deref() {
        None => Overlap::default(),
        Some(s) => Overlap::parse(s)
            .ok_or_else(|| invalid(format!("overlap {s:?} is not one of \"skip\", \"allow\"")))?,
    };
    let catch_up = match body.catch_up.as_deref() {
        None => CatchUp::default(),
        Some(s) => CatchUp::parse(s)
            .ok_or_else(|| invalid(format!("catch_up {s:?} is not one of \"one\", \"skip\"")))?,
    };
    let spec = ScheduleSpec {
        id: body.id,
        workflow: body.workflow,
        cron: body.cron,
        timezone: body.timezone.unwrap_or_else(|| "UTC".to_owned()),
        input: body.input,
        overlap,
        catch_up,
    };
    let created = state
        .engine
        .create_schedule(spec)
        .await
        .map_err(|e| match e {
            // The workflow is part of the request body, not of the URL: a bad request.
            EngineError::WorkflowNotFound { .. } => {
                let mut api = ApiError::from(e);
                api.status = StatusCode::BAD_REQUEST;
                api
            }
            e => e.into(),
        })?;
    let status = if created.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(schedule_json(&created.schedule))))
}

/// `GET /v1/schedules` → `{"schedules": [schedule]}`, by id.
#[utoipa::path(
    get,
    path = "/v1/schedules",
    tag = "schedules",
    operation_id = "list_schedules",
    summary = "List schedules",
    responses((status = 200, description = "Every schedule, by id", body = ScheduleList)),
)]
pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let all = state.engine.list_schedules().await?;
    let schedules: Vec<Value> = all.iter().map(schedule_json).collect();
    Ok(Json(json!({ "schedules": schedules })))
}

/// `GET /v1/schedules/{id}` → the schedule.
#[utoipa::path(
    get,
    path = "/v1/schedules/{id}",
    tag = "schedules",
    operation_id = "get_schedule",
    summary = "Read a schedule",
    params(("id" = String, Path, description = "The schedule")),
    responses(
        (status = 200, description = "The schedule", body = Schedule),
        (status = 404, description = "`schedule_not_found`", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = id_of(path)?;
    Ok(Json(schedule_json(&state.engine.get_schedule(&id).await?)))
}

/// `DELETE /v1/schedules/{id}` → `{"id", "deleted": true}`; its runs stay.
#[utoipa::path(
    delete,
    path = "/v1/schedules/{id}",
    tag = "schedules",
    operation_id = "delete_schedule",
    summary = "Delete a schedule",
    description = "No more ticks. The runs it started stay (a running one goes on).",
    params(("id" = String, Path, description = "The schedule")),
    responses(
        (status = 200, description = "Deleted", body = Object),
        (status = 404, description = "`schedule_not_found`", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = id_of(path)?;
    state.engine.delete_schedule(&id).await?;
    Ok(Json(json!({ "id": id, "deleted": true })))
}

/// `POST /v1/schedules/{id}/pause` → the schedule, paused.
#[utoipa::path(
    post,
    path = "/v1/schedules/{id}/pause",
    tag = "schedules",
    operation_id = "pause_schedule",
    summary = "Pause a schedule",
    description = "No tick fires until it is resumed. Pausing a paused schedule does nothing.",
    params(("id" = String, Path, description = "The schedule")),
    responses(
        (status = 200, description = "The schedule", body = Schedule),
        (status = 404, description = "`schedule_not_found`", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn pause(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = id_of(path)?;
    Ok(Json(schedule_json(
        &state.engine.pause_schedule(&id).await?,
    )))
}

/// `POST /v1/schedules/{id}/resume` → the schedule, from its next tick after now.
#[utoipa::path(
    post,
    path = "/v1/schedules/{id}/resume",
    tag = "schedules",
    operation_id = "resume_schedule",
    summary = "Resume a paused schedule",
    description = "It ticks again from its next tick after now: the ticks that passed while it was paused do not fire. Resuming an unpaused schedule does nothing.",
    params(("id" = String, Path, description = "The schedule")),
    responses(
        (status = 200, description = "The schedule", body = Schedule),
        (status = 404, description = "`schedule_not_found`", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn resume(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = id_of(path)?;
    Ok(Json(schedule_json(
        &state.engine.resume_schedule(&id).await?,
    )))
}
