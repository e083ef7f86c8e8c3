//! Live updates as server-sent events, and the hook-thread listing the run page draws its
//! lanes from.
//!
//! A stream first sends `event: ready`, then `event: change` with
//! `{"changes": [{"run_id", "last_seq"}], "lagged": bool}` whenever runs it watches changed
//! (`last_seq` 0: only the status changed). Notifications that pile up while the client is
//! slow are merged into one event; `"lagged": true` means some were lost (the server fell
//! more than a thousand behind) and the client should read everything again. The client
//! reads the data it shows through the JSON API: an event only says "look again". A stream
//! ends when the server stops.

use std::collections::{BTreeMap, HashSet};
use std::convert::Infallible;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::Stream;
use serde_json::{json, Value};
use tether_engine::Engine;
use tether_store::RunChanged;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, watch};

use crate::error::ApiError;
use crate::json::run_json;
use crate::routes::runs::run_id_of;
use crate::AppState;

/// What a stream watches.
enum Scope {
    /// Every run (the list page).
    All,
    /// One run and the hook threads of its namespace.
    Run {
        /// The run.
        run_id: String,
        /// The run and its threads, as last read.
        known: HashSet<String>,
    },
}

/// One client's stream.
struct Watcher {
    engine: Engine,
    changes: broadcast::Receiver<RunChanged>,
    stopping: Option<watch::Receiver<bool>>,
    scope: Scope,
    greeted: bool,
}

/// Completes when the server says it is stopping (never, without a stop signal).
async fn stopped(stopping: &mut Option<watch::Receiver<bool>>) {
    let Some(rx) = stopping else {
        return std::future::pending().await;
    };
    // (The guard `wait_for` returns is not `Send`: it is dropped at once.)
    if rx.wait_for(|stop| *stop).await.is_err() {
        // The sender is gone without saying stop: keep streaming.
        std::future::pending::<()>().await;
    }
}

impl Watcher {
    /// The run ids of the run and its threads.
    async fn read_namespace(engine: &Engine, run_id: &str) -> Result<HashSet<String>, ApiError> {
        let mut known: HashSet<String> = engine
            .threads(run_id)
            .await?
            .into_iter()
            .map(|t| t.run_id)
            .collect();
        known.insert(run_id.to_string());
        Ok(known)
    }

    /// Whether the change concerns what this stream watches. A change of the run itself, or
    /// the first entry of a run not known yet, may mean a new hook thread: read them again.
    async fn relevant(&mut self, change: &RunChanged, reread: &mut bool) -> bool {
        let Scope::Run { run_id, known } = &mut self.scope else {
            return true;
        };
        let maybe_new_thread =
            change.run_id == *run_id || (!known.contains(&change.run_id) && change.last_seq <= 1);
        // At most one read per event sent.
        if maybe_new_thread && !*reread {
            *reread = true;
            match Self::read_namespace(&self.engine, run_id).await {
                Ok(k) => *known = k,
                Err(e) => {
                    tracing::debug!(error = %e.message, "could not read the run's threads")
                }
            }
        }
        known.contains(&change.run_id)
    }

    /// The next event to send, or `None` to end the stream.
    async fn next_event(&mut self) -> Option<Event> {
        if !self.greeted {
            self.greeted = true;
            return Some(Event::default().event("ready").data("{}"));
        }
        loop {
            let first = tokio::select! {
                got = self.changes.recv() => got,
                () = stopped(&mut self.stopping) => return None,
            };
            let mut lagged = false;
            let mut batch = Vec::new();
            match first {
                Ok(change) => batch.push(change),
                Err(RecvError::Lagged(_)) => lagged = true,
                Err(RecvError::Closed) => return None,
            }
            // Merge what is already queued into the same event.
            loop {
                match self.changes.try_recv() {
                    Ok(change) => batch.push(change),
                    Err(TryRecvError::Lagged(_)) => lagged = true,
                    Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                }
            }
            let mut seen: BTreeMap<String, u64> = BTreeMap::new();
            let mut reread = false;
            for change in batch {
                if self.relevant(&change, &mut reread).await {
                    let seq = seen.entry(change.run_id).or_default();
                    *seq = (*seq).max(change.last_seq);
                }
            }
            if lagged || !seen.is_empty() {
                let changes: Vec<Value> = seen
                    .into_iter()
                    .map(|(run_id, last_seq)| json!({ "run_id": run_id, "last_seq": last_seq }))
                    .collect();
                let data = json!({ "changes": changes, "lagged": lagged });
                return Some(Event::default().event("change").data(data.to_string()));
            }
        }
    }
}

/// The SSE response for a watcher.
fn sse(watcher: Watcher) -> Response {
    let events = futures::stream::unfold(watcher, |mut w| async move {
        w.next_event().await.map(|e| (Ok::<_, Infallible>(e), w))
    });
    sse_response(events)
}

fn sse_response(
    events: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
) -> Response {
    let mut resp = Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response();
    // Ask proxies not to buffer the stream.
    resp.headers_mut().insert(
        "x-accel-buffering",
        axum::http::HeaderValue::from_static("no"),
    );
    resp
}

/// `GET /v1/runs/stream` → server-sent events for any run's change.
#[utoipa::path(
    get,
    path = "/v1/runs/stream",
    tag = "streams",
    summary = "Server-sent events when any run changes",
    responses((status = 200, description = "Server-sent events: `ready` (data `{}`), then `change` events whose data is a `StreamChange`", content_type = "text/event-stream", body = String)),
)]
pub(crate) async fn runs_stream(State(state): State<AppState>) -> Response {
    sse(Watcher {
        changes: state.engine.subscribe_changes(),
        engine: state.engine,
        stopping: state.options.stopping.clone(),
        scope: Scope::All,
        greeted: false,
    })
}

/// `GET /v1/runs/{run_id}/stream` → server-sent events for changes of the run or its hook
/// threads; `404 run_not_found` for an unknown run.
#[utoipa::path(
    get,
    path = "/v1/runs/{run_id}/stream",
    tag = "streams",
    summary = "Server-sent events when the run or one of its hook threads changes",
    params(("run_id" = String, Path, description = "The run")),
    responses(
        (status = 200, description = "Server-sent events: `ready` (data `{}`), then `change` events whose data is a `StreamChange`", content_type = "text/event-stream", body = String),
        (status = 404, description = "`run_not_found`", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn run_stream(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let run_id = run_id_of(path)?;
    // Subscribe before reading, so no change between the two is missed.
    let changes = state.engine.subscribe_changes();
    let known = Watcher::read_namespace(&state.engine, &run_id).await?;
    Ok(sse(Watcher {
        engine: state.engine,
        changes,
        stopping: state.options.stopping.clone(),
        scope: Scope::Run { run_id, known },
        greeted: false,
    }))
}

/// `GET /v1/runs/{run_id}/threads` → the hook threads of the run's namespace, oldest first,
/// each shaped like a run (`run_id` is the hook id).
#[utoipa::path(
    get,
    path = "/v1/runs/{run_id}/threads",
    tag = "threads",
    summary = "The run's hook threads, oldest first, as runs",
    params(("run_id" = String, Path, description = "The run")),
    responses(
        (status = 200, description = "The threads (`run_id` = the hook id)", body = Vec<crate::openapi::Run>),
        (status = 404, description = "`run_not_found`", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn threads(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let run_id = run_id_of(path)?;
    let threads = state.engine.threads(&run_id).await?;
    Ok(Json(Value::Array(threads.iter().map(run_json).collect())))
}
