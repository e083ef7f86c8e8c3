//! The OpenAPI 3.1 document of the HTTP API, served at `GET /openapi.json`.
//!
//! Generated with `utoipa` from the handlers' `#[utoipa::path]` attributes and the schemas
//! below (the request bodies are the handlers' own types). The error codes are
//! [`crate::error::ERROR_CODES`]; the errors every operation can meet (`401` behind the API
//! token, `500`, `503`, `507`) are added to each operation by [`CommonErrors`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use crate::error::ERROR_CODES;
use crate::AppState;

/// The name of the bearer-token security scheme.
const BEARER: &str = "api_token";

/// Every error code the server answers with (see [`ERROR_CODES`]), as a string enum.
pub(crate) struct ErrorCode;

impl PartialSchema for ErrorCode {
    fn schema() -> RefOr<Schema> {
        let mut description = String::from("A stable machine-readable error code:");
        for (code, status, when) in ERROR_CODES {
            description.push_str(&format!("\n- `{code}` ({status}): {when}"));
        }
        let mut codes: Vec<&str> = ERROR_CODES.iter().map(|(c, _, _)| *c).collect();
        codes.sort_unstable();
        codes.dedup();
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .enum_values(Some(codes))
            .description(Some(description))
            .into()
    }
}

impl ToSchema for ErrorCode {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ErrorCode")
    }
}

/// The inside of an error answer.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ErrorDetail {
    /// The stable code.
    #[schema(value_type = ErrorCode)]
    code: String,
    /// What went wrong, for a person.
    message: String,
}

/// Every error answer: `{"error": {"code", "message"}}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ErrorBody {
    /// The error.
    error: ErrorDetail,
}

/// Where a run is in its life: every [`tether_core::RunStatus`].
pub(crate) struct RunStatus;

impl PartialSchema for RunStatus {
    fn schema() -> RefOr<Schema> {
        let statuses: Vec<&str> = tether_core::RunStatus::ALL
            .iter()
            .map(|s| s.as_str())
            .collect();
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .enum_values(Some(statuses))
            .description(Some(
                "Where a run is: `pending`, `running` and `suspended` (waiting on a hook, a \
                 timer or a signal) before it ends as `completed`, `failed` or `cancelled`.",
            ))
            .into()
    }
}

impl ToSchema for RunStatus {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("RunStatus")
    }
}

/// A workflow's error, as journaled (its code is the workflow's own, not an API error code).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunError {
    /// A stable code, e.g. `step_failed`, `cancelled`, `nondeterminism`.
    code: String,
    /// What went wrong.
    message: String,
}

/// A run (or a hook thread, whose `run_id` is the hook id).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Run {
    /// Its id.
    run_id: String,
    /// The workflow it runs.
    workflow: String,
    /// Where it is.
    #[schema(value_type = RunStatus)]
    status: String,
    /// Its input.
    input: Value,
    /// Its output once completed, else null.
    #[schema(required = true)]
    output: Option<Value>,
    /// Its error once failed or cancelled, else null.
    #[schema(required = true)]
    error: Option<RunError>,
    /// When it was created, RFC 3339 with milliseconds.
    #[schema(format = DateTime)]
    created_at: String,
    /// When it last changed, RFC 3339 with milliseconds.
    #[schema(format = DateTime)]
    updated_at: String,
    /// The run that started it as a child run (`ctx.start_child`), else null.
    #[schema(required = true)]
    parent_run_id: Option<String>,
    /// The schedule whose tick started it (its id is `sched:{schedule_id}:{tick_ms}`), else
    /// null.
    #[schema(required = true)]
    schedule_id: Option<String>,
    /// The task queue it is on (`default` unless it was started on another).
    queue: String,
}

/// `GET /v1/runs`: runs, newest first.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunList {
    /// The runs.
    runs: Vec<Run>,
}

/// `{"children": [...]}`: the child runs a run started, oldest first.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChildList {
    /// The child runs.
    children: Vec<Run>,
}

/// `{"run_id"}`: the run a request concerns.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunId {
    /// The run.
    run_id: String,
}

/// An active hook of a run. A webhook (`kind` = `webhook`) also has its `url` and how it
/// answers (`respond_with`).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Hook {
    /// The token that resumes it (`POST /v1/hooks/{token}`).
    token: String,
    /// `hook` or `webhook`.
    kind: String,
    /// What the workflow attached to it.
    metadata: Value,
    /// A webhook's mode: `{"mode": "static", "response"}` or `{"mode": "manual",
    /// "timeout_ms"}` (null if unreadable).
    #[schema(required = false)]
    respond_with: Option<Value>,
    /// A webhook's URL.
    #[schema(required = false)]
    url: Option<String>,
    /// The JSON Schema of the payloads it takes, when its hook definition publishes one (also
    /// under `components.schemas` as `HookPayload.{definition}`); null otherwise.
    #[schema(required = true)]
    schema: Option<Value>,
    /// When it was created, RFC 3339 with milliseconds.
    #[schema(format = DateTime)]
    created_at: String,
    /// When it expires (`HookOptions::expires_in`), RFC 3339 with milliseconds; absent if it
    /// does not.
    #[schema(required = false, format = DateTime)]
    expires_at: Option<String>,
}

/// A hook looked up by its token: the listing's fields plus its run and definition.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HookWithRun {
    /// The token.
    token: String,
    /// `hook` or `webhook`.
    kind: String,
    /// What the workflow attached to it.
    metadata: Value,
    /// A webhook's mode (see `Hook`).
    #[schema(required = false)]
    respond_with: Option<Value>,
    /// A webhook's URL.
    #[schema(required = false)]
    url: Option<String>,
    /// The JSON Schema of its payloads (see `Hook`), or null.
    #[schema(required = true)]
    schema: Option<Value>,
    /// When it was created, RFC 3339 with milliseconds.
    #[schema(format = DateTime)]
    created_at: String,
    /// When it expires (`HookOptions::expires_in`), RFC 3339 with milliseconds; absent if it
    /// does not.
    #[schema(required = false, format = DateTime)]
    expires_at: Option<String>,
    /// The run that created it.
    run_id: String,
    /// The name of the hook definition validating its payloads, if any.
    #[schema(required = true)]
    definition: Option<String>,
}

/// A journal entry. Besides these fields it carries those of its `type` (`run_started`,
/// `step_completed`, `hook_created`, `hook_received`, `timer_started`, `run_completed`, ...).
#[derive(Serialize, ToSchema)]
pub(crate) struct Event {
    /// Its position in its thread's journal, from 1.
    seq: u64,
    /// Commit time, milliseconds since the Unix epoch.
    at_ms: u64,
    /// Commit time, RFC 3339 with milliseconds.
    #[schema(format = DateTime)]
    at: String,
    /// What happened, in snake case.
    #[serde(rename = "type")]
    kind: String,
    /// `main`, or the id of the hook thread that journaled it.
    thread: String,
    /// The workflow of that hook thread (absent for `main`).
    #[schema(required = false)]
    thread_workflow: String,
}

/// How a failing hook thread is retried; intervals in milliseconds. Missing fields take
/// their defaults.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetryPolicy {
    /// Attempts in all, the first included (default 3).
    #[schema(required = false)]
    maximum_attempts: u32,
    /// Delay before the second attempt (default 1000).
    #[schema(required = false)]
    initial_interval_ms: u64,
    /// Growth factor of the delay (default 2.0).
    #[schema(required = false)]
    backoff_coefficient: f64,
    /// Upper bound of the delay (default 60000).
    #[schema(required = false)]
    maximum_interval_ms: u64,
}

/// `{"hook_id"}`: the hook thread started.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HookId {
    /// Its id (a run id: `GET /v1/runs/{hook_id}` reads it).
    hook_id: String,
}

/// A signal sent.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignalSent {
    /// The signal.
    signal_id: String,
    /// The waiting run that got it, or null when it is kept for a later wait.
    #[schema(required = true)]
    delivered_to: Option<String>,
}

/// A run's shared state: key → value.
#[derive(Serialize, ToSchema)]
pub(crate) struct SharedState(BTreeMap<String, Value>);

/// The registered workflows.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Workflows {
    /// Their names, sorted.
    workflows: Vec<String>,
}

/// The server is up.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Health {
    /// Always true.
    ok: bool,
    /// The storage backend: `sqlite` or `postgres`.
    backend: String,
}

/// One run that changed, in a stream's `change` event.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunChange {
    /// The run (or hook thread).
    run_id: String,
    /// Its last journal position (0: only its status changed).
    last_seq: u64,
}

/// The data of a stream's `change` event.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StreamChange {
    /// The runs that changed.
    changes: Vec<RunChange>,
    /// Some notifications were lost: read everything again.
    lagged: bool,
}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tether HTTP API",
        description = "Tether's HTTP API: start, read and cancel runs, resume hooks, send \
signals, start hook threads, read shared state, schedule runs with cron, call webhooks, stream changes, read metrics.\n\n\
Every error is `{\"error\": {\"code\", \"message\"}}` (`ErrorBody`) with a 4xx/5xx status; \
`ErrorCode` lists every code with its status. Besides each operation's own, any request can \
get `400 bad_request`, `405 method_not_allowed` (a known path, another method), \
`414 uri_too_long`, `415 unsupported_media_type`, `422 invalid_request` or \
`431 headers_too_large` from the HTTP layer, and `404 not_found` for an unknown path.\n\n\
With an API token configured, every `/v1/...` route, `/metrics` and `/openapi.json` need \
`Authorization: Bearer <token>` (else `401 unauthorized`); `/healthz`, the web UI's pages, \
resume links (`/l/{link}`) and webhook URLs never do."
    ),
    paths(
        crate::routes::runs::start_run,
        crate::routes::runs::list_runs,
        crate::routes::runs::get_run,
        crate::routes::runs::events,
        crate::routes::runs::hooks,
        crate::routes::runs::children,
        crate::routes::runs::cancel,
        crate::routes::threads::spawn,
        crate::routes::threads::get_state,
        crate::routes::threads::signal,
        crate::routes::hooks::resume,
        crate::routes::hooks::get_hook,
        crate::routes::resume_or_start::resume_or_start,
        crate::routes::links::create,
        crate::routes::links::show,
        crate::routes::links::use_link,
        crate::routes::webhooks::call,
        crate::routes::schedules::create,
        crate::routes::schedules::list,
        crate::routes::schedules::get,
        crate::routes::schedules::delete,
        crate::routes::schedules::pause,
        crate::routes::schedules::resume,
        crate::routes::meta::workflows,
        crate::routes::meta::healthz,
        crate::routes::metrics::metrics,
        serve_document,
        crate::ui::index,
        crate::ui::run_page,
        crate::ui::asset,
        crate::ui::stream::runs_stream,
        crate::ui::stream::run_stream,
        crate::ui::stream::threads,
    ),
    components(schemas(
        ErrorCode,
        ErrorBody,
        ErrorDetail,
        RunStatus,
        RunError,
        Run,
        RunList,
        RunId,
        Hook,
        HookWithRun,
        Event,
        RetryPolicy,
        HookId,
        SignalSent,
        SharedState,
        Workflows,
        Health,
        RunChange,
        StreamChange,
        crate::routes::runs::StartRun,
        crate::routes::runs::CancelBody,
        crate::routes::threads::SpawnBody,
        crate::routes::resume_or_start::ResumeOrStart,
        crate::routes::resume_or_start::ResumedOrStarted,
        crate::routes::links::CreateLink,
        crate::routes::links::LinkCreated,
        crate::routes::links::LinkUsed,
        crate::routes::schedules::CreateSchedule,
        crate::routes::schedules::Schedule,
        crate::routes::schedules::ScheduleList,
    )),
    modifiers(&CommonErrors),
    tags(
        (name = "runs", description = "Runs: start, list, read, journal, cancel"),
        (name = "hooks", description = "Hooks: resume, look up; webhooks"),
        (name = "threads", description = "Hook threads, shared state, signals"),
        (name = "schedules", description = "Durable cron schedules: each tick starts one run"),
        (name = "streams", description = "Server-sent events of run changes"),
        (name = "meta", description = "Workflows, health, metrics, this document"),
        (name = "ui", description = "The web UI's pages and assets (HTML, CSS, JavaScript)"),
    )
)]
pub(crate) struct ApiDoc;

/// Adds what applies to many operations: the bearer scheme and a `401` on the protected
/// paths, and the storage and internal errors on every operation that reaches the engine.
pub(crate) struct CommonErrors;

/// A JSON error response described by the codes it carries.
fn error_response(codes: &[&str]) -> RefOr<utoipa::openapi::Response> {
    let list: Vec<String> = codes.iter().map(|c| format!("`{c}`")).collect();
    ResponseBuilder::new()
        .description(list.join(", "))
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                .build(),
        )
        .into()
}

/// Every operation of a path item, with its method.
fn operations(item: &mut utoipa::openapi::PathItem) -> Vec<&mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
    .collect()
}

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        openapi.info.version = env!("CARGO_PKG_VERSION").to_string();
        for (path, item) in openapi.paths.paths.iter_mut() {
            // One handler answers every method of a webhook URL: give each its own id.
            let webhook = path.starts_with(tether_core::WEBHOOK_PATH);
            for (method, op) in [
                ("get", &mut item.get),
                ("put", &mut item.put),
                ("post", &mut item.post),
                ("delete", &mut item.delete),
                ("options", &mut item.options),
                ("head", &mut item.head),
                ("patch", &mut item.patch),
                ("trace", &mut item.trace),
            ] {
                if let (true, Some(op)) = (webhook, op) {
                    op.operation_id = Some(format!("call_webhook_{method}"));
                }
            }
            let protected = crate::auth::protected(path);
            let engine = path.starts_with("/v1/")
                || path.starts_with("/.well-known/")
                || path.starts_with("/l/");
            for op in operations(item) {
                let responses = &mut op.responses.responses;
                if protected {
                    responses.insert("401".into(), error_response(&["unauthorized"]));
                    op.security =
                        Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
                }
                if engine {
                    for (status, codes) in [
                        ("500", &["internal", "hook_definition_missing"][..]),
                        (
                            "503",
                            &["storage_unavailable", "storage_read_only", "shutting_down"][..],
                        ),
                        ("507", &["storage_full"][..]),
                    ] {
                        responses
                            .entry(status.into())
                            .or_insert_with(|| error_response(codes));
                    }
                }
            }
        }
    }
}

/// The document as JSON.
pub(crate) fn document() -> Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|e| {
        // Cannot happen for these plain data types; say so rather than panic.
        serde_json::json!({ "openapi": "3.1.0", "serialization_error": e.to_string() })
    })
}

/// `GET /openapi.json` → this API's OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)),
)]
pub(crate) async fn serve_document(State(state): State<AppState>) -> Json<Value> {
    let mut doc = document();
    add_hook_payloads(&mut doc, state.engine.registry());
    Json(doc)
}

/// List the payload schemas the registered hook definitions publish under
/// `components.schemas`, as `HookPayload.{definition name}`.
fn add_hook_payloads(doc: &mut Value, registry: &tether_core::Registry) {
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for name in registry.hook_names() {
        let Some(schema) = registry.hook_schema(&name) else {
            continue;
        };
        // A component name is `[A-Za-z0-9._-]+`; anything else in a definition name becomes `_`.
        let key: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut schema = (*schema).clone();
        if let Value::Object(m) = &mut schema {
            // The dialect is the document's own (OpenAPI 3.1 is JSON Schema 2020-12).
            m.remove("$schema");
        }
        schemas.insert(format!("HookPayload.{key}"), schema);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_with_the_crate_version() {
        let doc = document();
        if std::env::var_os("TETHER_PRINT_OPENAPI").is_some() {
            println!("{doc:#}");
        }
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        let codes = doc["components"]["schemas"]["ErrorCode"]["enum"]
            .as_array()
            .map(Vec::len);
        assert!(codes.is_some_and(|n| n >= 20), "{codes:?}");
    }
}
