//! Tether's HTTP JSON API on top of an [`Engine`].
//!
//! [`router`] builds the axum [`Router`]; [`serve`] runs it on a listener until a shutdown
//! future completes. Every answer is JSON; every error is
//! `{"error": {"code": "...", "message": "..."}}` with a fitting status (see [`ApiError`]).
//!
//! | route | answer |
//! | --- | --- |
//! | `POST /v1/runs` `{"workflow", "input"}` | `201 {"run_id"}` |
//! | `GET /v1/runs?status=&workflow=&limit=` | `{"runs": [run]}` |
//! | `GET /v1/runs/{run_id}[?wait_ms=N]` | run (long-polls until terminal or N ms) |
//! | `GET /v1/runs/{run_id}/events` | the journal |
//! | `GET /v1/runs/{run_id}/hooks` | `[{"token", "kind", "metadata", "created_at"}]` |
//! | `POST /v1/runs/{run_id}/cancel` `{"reason"?}` | `202 {"run_id"}` |
//! | `POST /v1/hooks/{token}` payload (`Idempotency-Key` honoured) | `202 {"run_id"}` |
//! | `GET /v1/hooks/{token}` | the hook and its `run_id` |
//! | `POST /v1/hooks/{token}/links` `{"payload", "expires_in_ms"?, "label"?}` | `201 {"url", "expires_at_ms"}`: a resume link |
//! | `GET /l/{link}`, `POST /l/{link}` | a resume link's confirmation page; its use (once) |
//! | `POST /v1/schedules` `{"id", "workflow", "cron", "timezone"?, "input"?, "overlap"?, "catch_up"?}` | `201` schedule |
//! | `GET /v1/schedules`, `GET /v1/schedules/{id}` | `{"schedules": [schedule]}`, schedule |
//! | `DELETE /v1/schedules/{id}` | `{"id", "deleted": true}` |
//! | `POST /v1/schedules/{id}/pause`, `.../resume` | the schedule |
//! | `GET /v1/workflows` | `{"workflows": [names]}` |
//! | `GET /healthz` | `{"ok": true, "backend"}` |
//! | `GET /openapi.json` | the OpenAPI 3.1 document of every route here (see [`routes`]) |
//! | `GET /metrics` | Prometheus / OpenMetrics text, every metric named `tether_…` |
//! | `GET /`, `GET /runs/{run_id}` | the web UI (HTML; see the `ui` module) |
//! | `GET /v1/runs/stream`, `GET /v1/runs/{run_id}/stream` | server-sent events of run changes |
//! | `GET /v1/runs/{run_id}/threads` | the run's hook threads, as runs |
//!
//! With [`ServerOptions::api_token`] set, every `/v1/...` route, `/metrics` and
//! `/openapi.json` need `Authorization: Bearer <token>` (else `401 unauthorized` with
//! `WWW-Authenticate: Bearer`); `/healthz`, the UI's pages, resume links (`/l/{link}`) and
//! webhook URLs (`/.well-known/workflow/v1/webhook/{token}`) never do.
//!
//! ```no_run
//! # async fn demo(engine: tether_engine::Engine) -> std::io::Result<()> {
//! let router = tether_server::router(engine, tether_server::ServerOptions::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! tether_server::serve(listener, router, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await
//! # }
//! ```

mod auth;
mod edge;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod json;
mod json_errors;
mod links;
mod openapi;
mod protocol_errors;
mod routes;
mod serve;
mod ui;
mod webhook_verify;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::routing::{any, get, post, MethodRouter};
pub use axum::Router;
use tether_engine::Engine;
use tokio::sync::watch;

pub use error::ApiError;
pub use links::{LinkKeyError, LinkKeys};
pub use serve::{raise_fd_limit, ServeLimits};
pub use webhook_verify::WebhookSecrets;

/// Room allowed around a run's input in `POST /v1/runs` (the `{"workflow": ..., "input": ...}`
/// envelope), on top of the engine's payload limit, which the engine checks on the input itself.
const ENVELOPE_ALLOWANCE: usize = 64 * 1024;

/// Settings of the HTTP layer (the payload limit comes from the engine's config).
#[derive(Clone)]
pub struct ServerOptions {
    /// Longest long-poll `GET /v1/runs/{id}?wait_ms=` may ask for; larger values are capped
    /// (default 60 s).
    pub max_wait: Duration,
    /// When this turns `true` (the server is stopping), long-polls answer at once with the run
    /// as it is, so a graceful shutdown does not wait for them. `None` (the default): they run
    /// their course.
    pub stopping: Option<watch::Receiver<bool>>,
    /// When set, every `/v1/...` request must carry `Authorization: Bearer <token>` (else
    /// `401 unauthorized`); `/healthz` and webhook URLs never need it. `None` (the default):
    /// no authentication.
    pub api_token: Option<String>,
    /// How long a request's body may take to arrive, from the end of its headers; a body
    /// still unfinished then is answered `408 request_timeout` (and its connection closed).
    /// Answers, server-sent event streams included, are not limited. Default 30 s.
    pub body_timeout: Duration,
    /// Secrets of verified webhooks, by the name a webhook's verifier gives; a name not
    /// configured here is read from the environment variable of that name at each request.
    /// Default: none configured (the environment only).
    pub webhook_secrets: WebhookSecrets,
    /// The keys resume links are signed and verified with (`POST /v1/hooks/{token}/links`,
    /// `/l/{link}`): the first signs, all verify. Default: a random key made when the
    /// options are, so links work on this process only (not on other nodes, not after a
    /// restart).
    pub link_keys: LinkKeys,
}

impl std::fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the API token.
        f.debug_struct("ServerOptions")
            .field("max_wait", &self.max_wait)
            .field("stopping", &self.stopping.is_some())
            .field("api_token", &self.api_token.as_ref().map(|_| "<redacted>"))
            .field("body_timeout", &self.body_timeout)
            .field("webhook_secrets", &self.webhook_secrets)
            // Key ids only, never the secrets.
            .field("link_keys", &self.link_keys)
            .finish()
    }
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_wait: Duration::from_secs(60),
            stopping: None,
            api_token: None,
            body_timeout: Duration::from_secs(30),
            webhook_secrets: WebhookSecrets::default(),
            link_keys: LinkKeys::generate(),
        }
    }
}

/// What every handler gets.
#[derive(Clone, Debug)]
pub(crate) struct AppState {
    pub engine: Engine,
    /// Shared, not copied: axum clones the state for every request and every middleware,
    /// and the options hold strings, maps and keys.
    pub options: Arc<ServerOptions>,
}

impl AppState {
    /// The largest body accepted for a hook payload.
    pub fn payload_limit(&self) -> usize {
        self.engine.config().max_payload_bytes
    }

    /// The base URL webhook URLs are built on.
    pub fn public_url(&self) -> String {
        self.engine
            .config()
            .public_url
            .clone()
            .unwrap_or_else(|| "http://127.0.0.1:8080".to_string())
    }
}

/// One route the server answers: its method (`GET`, `POST`, or `ANY` for every method), its
/// path template and its handler. The router is built from these and nothing else, and the
/// OpenAPI document's coverage test reads the same list ([`routes`]), so a route cannot be
/// served without being listed, nor listed without being documented.
pub(crate) struct Route {
    /// `GET`, `POST`, `DELETE` or `ANY`.
    pub method: &'static str,
    /// The path template, `{name}` for a parameter (axum's and OpenAPI's syntax alike).
    pub path: &'static str,
    /// What answers it.
    pub handler: MethodRouter<AppState>,
}

impl Route {
    /// `GET path`.
    pub fn get<H: Handler<T, AppState>, T: 'static>(path: &'static str, handler: H) -> Self {
        Route {
            method: "GET",
            path,
            handler: get(handler),
        }
    }

    /// `POST path`.
    pub fn post<H: Handler<T, AppState>, T: 'static>(path: &'static str, handler: H) -> Self {
        Route {
            method: "POST",
            path,
            handler: post(handler),
        }
    }

    /// `DELETE path`.
    pub fn delete<H: Handler<T, AppState>, T: 'static>(path: &'static str, handler: H) -> Self {
        Route {
            method: "DELETE",
            path,
            handler: axum::routing::delete(handler),
        }
    }

    /// Every method on `path`.
    pub fn any<H: Handler<T, AppState>, T: 'static>(path: &'static str, handler: H) -> Self {
        Route {
            method: "ANY",
            path,
            handler: any(handler),
        }
    }

    /// The same route with its request bodies limited to `bytes`.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.handler = self.handler.layer(DefaultBodyLimit::max(bytes));
        self
    }
}

/// Every route of the server, the web UI's included (`limit` is the engine's payload limit).
/// The only place a route is added: [`router`] serves exactly these.
fn route_table(limit: usize) -> Vec<Route> {
    use routes::{
        hooks, links, meta, metrics, resume_or_start, runs, schedules, threads, webhooks,
    };
    let mut table = vec![
        Route::post("/v1/runs", runs::start_run)
            .body_limit(limit.saturating_add(ENVELOPE_ALLOWANCE)),
        Route::get("/v1/runs", runs::list_runs),
        Route::get("/v1/runs/{run_id}", runs::get_run),
        Route::get("/v1/runs/{run_id}/events", runs::events),
        Route::get("/v1/runs/{run_id}/hooks", runs::hooks),
        Route::get("/v1/runs/{run_id}/children", runs::children),
        Route::post("/v1/runs/{run_id}/hooks", threads::spawn),
        Route::get("/v1/runs/{run_id}/state", threads::get_state),
        Route::post("/v1/signals/{signal_id}", threads::signal),
        Route::post("/v1/runs/{run_id}/cancel", runs::cancel),
        Route::post("/v1/hooks/{token}", hooks::resume).body_limit(limit),
        Route::get("/v1/hooks/{token}", hooks::get_hook),
        // The payload and the input, each up to the payload limit.
        Route::post(
            "/v1/hooks/{token}/resume-or-start",
            resume_or_start::resume_or_start,
        )
        .body_limit(limit.saturating_mul(2).saturating_add(ENVELOPE_ALLOWANCE)),
        // Resume links: made behind the API token, used without it (`/l/` is not `/v1/`).
        Route::post("/v1/hooks/{token}/links", links::create).body_limit(links::CREATE_BODY_LIMIT),
        Route::get("/l/{link}", links::show),
        Route::post("/l/{link}", links::use_link).body_limit(links::USE_BODY_LIMIT),
        Route::any("/.well-known/workflow/v1/webhook/{token}", webhooks::call).body_limit(limit),
        Route::post("/v1/schedules", schedules::create)
            .body_limit(limit.saturating_add(ENVELOPE_ALLOWANCE)),
        Route::get("/v1/schedules", schedules::list),
        Route::get("/v1/schedules/{id}", schedules::get),
        Route::delete("/v1/schedules/{id}", schedules::delete),
        Route::post("/v1/schedules/{id}/pause", schedules::pause),
        Route::post("/v1/schedules/{id}/resume", schedules::resume),
        Route::get("/v1/workflows", meta::workflows),
        Route::get("/healthz", meta::healthz),
        Route::get("/metrics", metrics::metrics),
        Route::get("/openapi.json", openapi::serve_document),
    ];
    // The web UI: pages at `/` and `/runs/{run_id}`, live streams, threads (ui/mod.rs).
    table.extend(ui::routes());
    table
}

/// Every `(method, path template)` the router answers, `method` being `GET`, `POST` or `ANY`
/// (every method). The OpenAPI document at `GET /openapi.json` describes each of them.
pub fn routes() -> Vec<(&'static str, &'static str)> {
    route_table(0)
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect()
}

/// The API's router, serving `engine`.
pub fn router(engine: Engine, options: ServerOptions) -> Router {
    let limit = engine.config().max_payload_bytes;
    let state = AppState {
        engine,
        options: Arc::new(options),
    };
    let mut router = Router::new();
    for route in route_table(limit) {
        // Two entries of one path (`GET` and `POST /v1/runs`) are merged by axum.
        router = router.route(route.path, route.handler);
    }
    router
        // Applies to the routes above, so it must come after them.
        .method_not_allowed_fallback(routes::meta::method_not_allowed)
        .fallback(routes::meta::not_found)
        .layer(DefaultBodyLimit::max(limit))
        // Logging, JSON errors, the API token and the body timeout, in one layer (`edge.rs`).
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            edge::edge,
        ))
        .with_state(state)
}

/// Serve `router` on `listener` until `shutdown` completes, then finish the requests in flight
/// (with the default [`ServeLimits`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, router, shutdown, ServeLimits::default()).await
}

/// [`serve`] with these limits on connections: unfinished headers, idle connections, and how
/// many may be open at once (see [`ServeLimits`]).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: ServeLimits,
) -> std::io::Result<()> {
    serve::run(listener, router, shutdown, limits).await
}
