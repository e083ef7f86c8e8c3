//! What every request goes through before its route, in one middleware: a layer of its own
//! costs a boxed future and a clone of the inner service per request, and four of them were
//! measurable on a resume's path. In order, from the outside in:
//!
//! 1. logged at debug level by its route template, never its concrete path (a hook token in a
//!    URL is a credential);
//! 2. an error answer that is not JSON yet becomes one (`json_errors.rs`);
//! 3. refused without the API token when one is set (`auth.rs`);
//! 4. its body cut after [`crate::ServerOptions::body_timeout`] (`serve.rs`).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::{auth, json_errors, serve, AppState};

/// The middleware (see the module's documentation).
pub(crate) async fn edge(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let logged = tracing::enabled!(tracing::Level::DEBUG).then(|| {
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map(|p| p.as_str().to_owned());
        (req.method().clone(), route, Instant::now())
    });
    let exempt = json_errors::exempt(req.uri().path());
    let resp = match auth::refusal(&state, &req) {
        Some(refused) => refused,
        None => {
            next.run(serve::timed_body(req, state.options.body_timeout))
                .await
        }
    };
    let resp = json_errors::as_json(exempt, resp).await;
    if let Some((method, route, started)) = logged {
        tracing::debug!(
            method = %method,
            route = route.as_deref().unwrap_or("(no route)"),
            status = resp.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "http request"
        );
    }
    resp
}
