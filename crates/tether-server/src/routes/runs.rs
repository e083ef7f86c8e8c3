//! `/v1/runs`: start, list, read (with long-poll), journal, hooks, children, cancel.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tether_core::RunStatus;
use tether_engine::{EngineError, StartOptions};
use tether_store::RunFilter;

use crate::error::ApiError;
use crate::json::{body_bytes, event_json, hook_json, parse_json, run_id_json, run_json};
use crate::routes::hooks::idempotency_key;
use crate::AppState;

/// The body of `POST /v1/runs`. Unknown fields are refused: a typo (`"inptu"`) must not start
/// a run with the default input.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StartRun {
    /// The registered workflow to run.
    workflow: String,
    /// Its input (default `{}`).
    #[serde(default = "empty_object")]
    input: Value,
    /// A run id of the caller's choosing (1 to 1,024 bytes, no NUL): starting again with the
    /// same id, workflow and input answers `200` with that run; with another workflow or
    /// input, `409 run_exists`.
    #[serde(default)]
    run_id: Option<String>,
    /// The task queue to run it on (default `default`): 1 to 128 ASCII letters, digits, `_`,
    /// `-`, `.` or `:` (`400 invalid_input` otherwise). Only nodes serving the queue
    /// (`serve --queues`) run it, within the queue's limits; until one does, it waits
    /// (`pending`).
    #[serde(default)]
    queue: Option<String>,
}

fn empty_object() -> Value {
    json!({})
}

/// The run id of the path; one that cannot be decoded names no run.
pub(crate) fn run_id_of(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    match path {
        Ok(Path(id)) => Ok(id),
        Err(_) => Err(EngineError::RunNotFound {
            run_id: "(undecodable id)".into(),
        }
        .into()),
    }
}

/// `POST /v1/runs` → `201 {"run_id"}`; `200 {"run_id"}` when a start with the same `run_id` or
/// `Idempotency-Key` (and the same workflow and input) already made the run.
#[utoipa::path(
    post,
    path = "/v1/runs",
    tag = "runs",
    summary = "Start a run",
    description = "Answers once the run has recorded what it first waits on (a hook it creates at once is resumable right away); a run on a `queue` this node does not serve, or on a limited one, is answered once stored (`pending` until a node serving the queue admits it). Idempotent with a `run_id` in the body or an `Idempotency-Key` header: a retry with the same workflow and input answers `200` with the run the first call made; another workflow or input is refused with `409` (`run_exists` for a `run_id`, `idempotency_key_reused` for a key) and nothing is stored.",
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the start idempotent (the run's id is derived from it; kept as long as the run)"),
    ),
    request_body = StartRun,
    responses(
        (status = 201, description = "Started", body = crate::openapi::RunId),
        (status = 200, description = "Started before by a call with the same `run_id` or `Idempotency-Key`, workflow and input", body = crate::openapi::RunId),
        (status = 400, description = "`invalid_json`, `invalid_input`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`workflow_not_found`", body = crate::openapi::ErrorBody),
        (status = 409, description = "`run_exists`, `idempotency_key_reused` (nothing stored)", body = crate::openapi::ErrorBody),
        (status = 408, description = "`request_timeout`", body = crate::openapi::ErrorBody),
        (status = 413, description = "`payload_too_large`", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn start_run(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let bytes = body_bytes(body, state.payload_limit())?;
    let req: StartRun = parse_json(&bytes)?;
    let options = StartOptions {
        run_id: req.run_id,
        idempotency_key: idempotency_key(&headers),
        queue: req.queue,
    };
    let started = state
        .engine
        .start_run_with(&req.workflow, req.input, options)
        .await?;
    let status = if started.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(run_id_json(started.run_id))))
}

/// The query of `GET /v1/runs`; values are parsed by hand so an empty one means "any".
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only runs with this status (empty: any).
    #[param(value_type = Option<crate::openapi::RunStatus>)]
    status: Option<String>,
    /// Only runs of this workflow (empty: any).
    workflow: Option<String>,
    /// At most this many runs (empty or 0: no limit).
    #[param(value_type = Option<u64>, minimum = 0)]
    limit: Option<String>,
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

/// `GET /v1/runs?status=&workflow=&limit=` → `{"runs": [...]}`, newest first.
#[utoipa::path(
    get,
    path = "/v1/runs",
    tag = "runs",
    summary = "List runs, newest first",
    params(ListQuery),
    responses(
        (status = 200, description = "The runs", body = crate::openapi::RunList),
        (status = 400, description = "`invalid_query`", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn list_runs(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid_query(e.body_text()))?;
    let status = match non_empty(q.status) {
        None => None,
        Some(s) => Some(RunStatus::parse(&s).ok_or_else(|| {
            let known: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::invalid_query(format!(
                "unknown status {s:?}; expected one of {}",
                known.join(", ")
            ))
        })?),
    };
    let limit = match non_empty(q.limit) {
        None => 0,
        Some(l) => l.parse::<usize>().map_err(|_| {
            ApiError::invalid_query(format!("limit must be a non-negative integer, got {l:?}"))
        })?,
    };
    let workflow = non_empty(q.workflow);
    if let Some(w) = &workflow {
        // No workflow name can hold these, and not every store can even be asked about them
        // (PostgreSQL refuses a NUL in text): refused here, before the store is.
        if w.contains('\0') || w.len() > tether_core::error::MAX_NAME_LEN {
            return Err(ApiError::invalid_query(format!(
                "workflow must be a name of at most {} bytes without NUL",
                tether_core::error::MAX_NAME_LEN
            )));
        }
    }
    let filter = RunFilter {
        status,
        workflow,
        limit,
        before: None,
    };
    let runs = state.engine.list_runs(&filter).await?;
    let runs: Vec<Value> = runs.iter().map(run_json).collect();
    Ok(Json(json!({ "runs": runs })))
}

/// The query of `GET /v1/runs/{run_id}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct GetQuery {
    /// Long-poll: answer when the run has ended or after this many milliseconds (capped by
    /// the server, 60 s by default), whichever is first.
    #[param(value_type = Option<u64>, minimum = 0)]
    wait_ms: Option<String>,
}

/// `GET /v1/runs/{run_id}[?wait_ms=N]` → the run; with `wait_ms`, answers when the run has
/// ended or after N ms (capped at [`crate::ServerOptions::max_wait`]), whichever is first.
#[utoipa::path(
    get,
    path = "/v1/runs/{run_id}",
    tag = "runs",
    summary = "A run (long-poll with wait_ms)",
    params(("run_id" = String, Path, description = "The run"), GetQuery),
    responses(
        (status = 200, description = "The run", body = crate::openapi::Run),
        (status = 400, description = "`invalid_query`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`run_not_found`", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn get_run(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<GetQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let run_id = run_id_of(path)?;
    let Query(q) = query.map_err(|e| ApiError::invalid_query(e.body_text()))?;
    let wait_ms = match non_empty(q.wait_ms) {
        None => 0,
        Some(w) => w.parse::<u64>().map_err(|_| {
            ApiError::invalid_query(format!(
                "wait_ms must be a non-negative integer of milliseconds, got {w:?}"
            ))
        })?,
    };
    if wait_ms == 0 {
        return Ok(Json(run_json(&state.engine.get_run(&run_id).await?)));
    }
    // `wait_for_run` reads the run first (an unknown run is `run_not_found`, an ended one
    // answers at once), then waits.
    let wait = Duration::from_millis(wait_ms).min(state.options.max_wait);
    let waited = state.engine.wait_for_run(&run_id, wait);
    let run = match state.options.stopping.clone() {
        None => waited.await?,
        Some(mut stopping) => {
            let stopped = async move {
                // (The guard `wait_for` returns is not `Send`: it is dropped at once.)
                if stopping.wait_for(|stop| *stop).await.is_err() {
                    // The sender is gone without saying stop: wait the full time.
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                run = waited => run?,
                () = stopped => state.engine.get_run(&run_id).await?,
            }
        }
    };
    Ok(Json(run_json(&run)))
}

/// `GET /v1/runs/{run_id}/events` → the journal, in order.
#[utoipa::path(
    get,
    path = "/v1/runs/{run_id}/events",
    tag = "runs",
    summary = "The run's journal, with its hook threads'",
    description = "Every entry is tagged with its `thread`: `main`, or the hook id; merged by commit time.",
    params(("run_id" = String, Path, description = "The run")),
    responses(
        (status = 200, description = "The journal", body = Vec<crate::openapi::Event>),
        (status = 404, description = "`run_not_found`", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn events(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let run_id = run_id_of(path)?;
    // The main thread's journal, then each hook thread's, every entry tagged with its thread
    // (`main`, or the hook id), merged by commit time.
    let tag = |e: &tether_core::Event, thread: &str, workflow: Option<&str>| {
        let mut v = event_json(e);
        if let Value::Object(m) = &mut v {
            m.insert("thread".into(), Value::from(thread));
            if let Some(w) = workflow {
                m.insert("thread_workflow".into(), Value::from(w));
            }
        }
        v
    };
    let mut journals: Vec<Vec<(u64, Value)>> = Vec::new();
    let main = state.engine.events(&run_id).await?;
    journals.push(
        main.iter()
            .map(|e| (e.at_ms, tag(e, "main", None)))
            .collect(),
    );
    for t in state.engine.threads(&run_id).await? {
        let events = state.engine.events(&t.run_id).await?;
        journals.push(
            events
                .iter()
                .map(|e| (e.at_ms, tag(e, &t.run_id, Some(&t.workflow))))
                .collect(),
        );
    }
    Ok(Json(Value::Array(merge_by_time(journals))))
}

/// Merge journals by time, each kept in its own (`seq`) order: an entry's time is when its
/// write was queued, so entries committed together or concurrently may carry times out of
/// `seq` order. Each entry sorts at the latest time of its journal so far (ties: earlier
/// journals first).
fn merge_by_time(journals: Vec<Vec<(u64, Value)>>) -> Vec<Value> {
    let mut all: Vec<(u64, usize, usize, Value)> = Vec::new();
    for (j, journal) in journals.into_iter().enumerate() {
        let mut latest = 0;
        for (i, (at_ms, v)) in journal.into_iter().enumerate() {
            latest = latest.max(at_ms);
            all.push((latest, j, i, v));
        }
    }
    all.sort_by_key(|(at, j, i, _)| (*at, *j, *i));
    all.into_iter().map(|(_, _, _, v)| v).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::merge_by_time;

    #[test]
    fn a_journal_keeps_its_order_when_its_times_do_not() {
        let main = vec![(10, json!("m1")), (30, json!("m2")), (20, json!("m3"))];
        let thread = vec![(15, json!("t1")), (25, json!("t2")), (40, json!("t3"))];
        assert_eq!(
            merge_by_time(vec![main, thread]),
            ["m1", "t1", "t2", "m2", "m3", "t3"].map(|s| json!(s))
        );
    }
}

/// `GET /v1/runs/{run_id}/hooks` → the run's active hooks, in creation order.
#[utoipa::path(
    get,
    path = "/v1/runs/{run_id}/hooks",
    tag = "hooks",
    summary = "The run's active hooks, in creation order",
    params(("run_id" = String, Path, description = "The run")),
    responses(
        (status = 200, description = "The hooks", body = Vec<crate::openapi::Hook>),
        (status = 404, description = "`run_not_found`", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn hooks(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let run_id = run_id_of(path)?;
    let hooks = state.engine.hooks(&run_id).await?;
    let base = state.public_url();
    Ok(Json(Value::Array(
        hooks
            .iter()
            .map(|h| hook_json(h, &base, state.engine.registry()))
            .collect(),
    )))
}

/// `GET /v1/runs/{run_id}/children` → `{"children": [...]}`: the child runs the run started
/// (`ctx.start_child`), oldest first, each with its `parent_run_id`.
#[utoipa::path(
    get,
    path = "/v1/runs/{run_id}/children",
    tag = "runs",
    summary = "The run's child runs, oldest first",
    params(("run_id" = String, Path, description = "The run")),
    responses(
        (status = 200, description = "The child runs", body = crate::openapi::ChildList),
        (status = 404, description = "`run_not_found`", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn children(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let run_id = run_id_of(path)?;
    let children = state.engine.children(&run_id).await?;
    let list: Vec<Value> = children.iter().map(run_json).collect();
    Ok(Json(json!({ "children": list })))
}

/// The optional body of `POST /v1/runs/{run_id}/cancel`. Unknown fields are refused: a body
/// that is not a cancel request must not cancel the run.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CancelBody {
    /// Why, kept with the run's error.
    reason: Option<String>,
}

/// The cancel body: empty (or blank) means no reason.
pub(crate) fn cancel_body(bytes: &[u8]) -> Result<CancelBody, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(CancelBody::default())
    } else {
        parse_json(bytes)
    }
}

/// `POST /v1/runs/{run_id}/cancel` with an optional `{"reason"}` → `202 {"run_id"}`; the run
/// ends as `cancelled` at its next await.
#[utoipa::path(
    post,
    path = "/v1/runs/{run_id}/cancel",
    tag = "runs",
    summary = "Cancel a run",
    description = "The workflow sees the cancel at its next await. The body is optional (empty means no reason).",
    params(("run_id" = String, Path, description = "The run")),
    request_body(content = Option<CancelBody>),
    responses(
        (status = 202, description = "Cancel requested", body = crate::openapi::RunId),
        (status = 400, description = "`invalid_json`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`run_not_found`", body = crate::openapi::ErrorBody),
        (status = 409, description = "`run_finished`", body = crate::openapi::ErrorBody),
        (status = 408, description = "`request_timeout`", body = crate::openapi::ErrorBody),
        (status = 413, description = "`payload_too_large`", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let run_id = run_id_of(path)?;
    let bytes = body_bytes(body, state.payload_limit())?;
    let body = cancel_body(&bytes)?;
    state.engine.cancel_run(&run_id, body.reason).await?;
    Ok((StatusCode::ACCEPTED, Json(run_id_json(run_id))))
}
