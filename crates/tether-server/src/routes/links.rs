//! Resume links (see `crate::links`): `POST /v1/hooks/{token}/links` makes one (behind the
//! API token); `GET /l/{link}` shows what it will do and `POST /l/{link}` does it, once, for
//! anyone holding the link (no API token).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::header::ACCEPT;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tether_core::redact_token;
use tether_engine::EngineError;
use tether_store::HookRef;
use tracing::Instrument;

use crate::error::ApiError;
use crate::json::{body_bytes, parse_json};
use crate::links::{self, page, Claims, Refusal};
use crate::routes::hooks::token_of;
use crate::AppState;

/// Largest body of `POST /v1/hooks/{token}/links` (the payload is checked against
/// [`links::MAX_LINK_PAYLOAD`] after parsing, with a message saying so).
pub(crate) const CREATE_BODY_LIMIT: usize = 64 * 1024;

/// Largest body of `POST /l/{link}` (a form's empty body; it is not read).
pub(crate) const USE_BODY_LIMIT: usize = 16 * 1024;

/// The body of `POST /v1/hooks/{token}/links`. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateLink {
    /// The payload the link resumes the hook with (at most 2048 bytes of JSON; it travels in
    /// the URL). Checked against the hook's definition now.
    payload: Value,
    /// How long the link works, in ms (default: a day, or the idempotency window or
    /// retention if shorter; at most that).
    #[serde(default)]
    expires_in_ms: Option<u64>,
    /// What the confirmation page shows above the payload (at most 200 characters).
    #[serde(default)]
    label: Option<String>,
    /// A name shared by links that answer the same question (e.g. "decision" for an
    /// "approve" and a "reject" link): the first of the set used resumes the hook, the others
    /// then answer `410 link_used`. At most 100 characters. Without it, each link is its own.
    #[serde(default)]
    set: Option<String>,
}

/// `{"url", "expires_at_ms"}`: a new link.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkCreated {
    /// The link: a page on `GET`, the resume on `POST`. A credential: hand it only to whom
    /// should answer.
    url: String,
    /// When it stops working, ms since the Unix epoch.
    expires_at_ms: u64,
}

/// `{"run_id"}`: the answer of a link used with `Accept: application/json`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkUsed {
    /// The run that received the payload.
    run_id: String,
}

/// `400 invalid_link`: the request cannot make a link.
fn invalid_link(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_link", message)
}

/// How long a link asked for lives, or why it cannot.
fn lifetime(asked: Option<u64>, max: Option<Duration>) -> Result<Duration, ApiError> {
    let Some(ms) = asked else {
        return Ok(max.map_or(links::DEFAULT_LIFETIME, |m| m.min(links::DEFAULT_LIFETIME)));
    };
    if ms == 0 {
        return Err(invalid_link("expires_in_ms must be at least 1"));
    }
    let asked = Duration::from_millis(ms);
    match max {
        Some(max) if asked > max => Err(invalid_link(format!(
            "expires_in_ms is {ms}, longer than this server keeps the record of a link's use \
             ({} ms: the idempotency window, or the retention if shorter): past it the link \
             could be used again. Ask for at most that, or raise --idempotency-window",
            max.as_millis()
        ))),
        _ => Ok(asked),
    }
}

/// Check the label: at most [`links::MAX_LABEL_CHARS`] characters, no control characters.
fn check_label(label: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(label) = label else { return Ok(None) };
    if label.chars().count() > links::MAX_LABEL_CHARS {
        return Err(invalid_link(format!(
            "the label is at most {} characters",
            links::MAX_LABEL_CHARS
        )));
    }
    if label.chars().any(char::is_control) {
        return Err(invalid_link(
            "the label must not contain control characters",
        ));
    }
    Ok(Some(label))
}

/// Check a set's name: 1 to 100 characters, no control characters.
fn check_set(set: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(set) = set else { return Ok(None) };
    if set.is_empty() || set.chars().count() > 100 || set.chars().any(char::is_control) {
        return Err(invalid_link(
            "set is a name of 1 to 100 characters without control characters",
        ));
    }
    Ok(Some(set))
}

/// `POST /v1/hooks/{token}/links` → `201 {"url", "expires_at_ms"}`.
#[utoipa::path(
    post,
    path = "/v1/hooks/{token}/links",
    tag = "hooks",
    summary = "Make a resume link",
    description = "A signed, single-use URL that resumes the hook holding the token with this payload, for anyone holding it (no API token): `GET` shows a confirmation page (the label, the payload, one button), `POST` resumes. The payload is checked against the hook's definition now. The link is bound to the hook it was made for (a token taken again by a later run is not fed) and expires within the idempotency window (its use is recorded as the idempotency key `link:{id}`). Links made with the same `set` answer one question: the first used wins, the others answer `410 link_used`. Claims are signed, not encrypted: the link shows its payload, label and the hook's token.",
    params(("token" = String, Path, description = "The hook's token")),
    request_body(content = CreateLink),
    responses(
        (status = 201, description = "Created", body = LinkCreated),
        (status = 400, description = "`invalid_json`, `invalid_payload`, `invalid_link` (an expiry past the idempotency window, a label too long, a bad set name, a webhook's token)", body = crate::openapi::ErrorBody),
        (status = 404, description = "`hook_not_found`", body = crate::openapi::ErrorBody),
        (status = 408, description = "`request_timeout`", body = crate::openapi::ErrorBody),
        (status = 413, description = "`payload_too_large` (a link carries at most 2048 bytes of payload)", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<LinkCreated>), ApiError> {
    let token = token_of(path)?;
    let span = tracing::info_span!("POST /v1/hooks/{token}/links", token = %redact_token(&token));
    async {
        let bytes = body_bytes(body, CREATE_BODY_LIMIT)?;
        let req: CreateLink = parse_json(&bytes)?;
        let size = serde_json::to_vec(&req.payload).map_or(usize::MAX, |b| b.len());
        if size > links::MAX_LINK_PAYLOAD {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!(
                    "a link carries at most {} bytes of payload (this one is {size}): it travels \
                     in the URL. Send a smaller payload (an id the workflow looks up)",
                    links::MAX_LINK_PAYLOAD
                ),
            ));
        }
        let label = check_label(req.label)?;
        let set = check_set(req.set)?;
        let engine = &state.engine;
        let life = lifetime(req.expires_in_ms, links::max_lifetime(engine.config()))?;
        let checked = engine.check_resume(&token, &req.payload).await?;
        if checked.kind == tether_core::HOOK_KIND_WEBHOOK {
            return Err(invalid_link(
                "this token belongs to a webhook, which is called at its own URL: links \
                 resume plain hooks only",
            ));
        }
        let now = engine.clock().now_ms();
        let exp = now.saturating_add(u64::try_from(life.as_millis()).unwrap_or(u64::MAX));
        let claims = links::claims(&token, &checked.hook, req.payload, label, set, exp);
        let link = links::sign(&state.options.link_keys, &claims).map_err(ApiError::internal)?;
        tracing::debug!(expires_at_ms = exp, "resume link made");
        Ok((
            StatusCode::CREATED,
            Json(LinkCreated {
                url: format!("{}/l/{link}", state.public_url()),
                expires_at_ms: exp,
            }),
        ))
    }
    .instrument(span)
    .await
}

/// Whether the caller reads HTML (a browser) rather than JSON.
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// An error answer, as a page for a browser, as JSON otherwise; with the link headers.
fn refuse(e: ApiError, html: bool) -> Response {
    if html {
        page::refused(e.status, e.code, &e.message)
    } else {
        page::secure(e.into_response())
    }
}

/// The refusal of a link that does not open.
fn refusal_error(r: Refusal) -> ApiError {
    match r {
        Refusal::Invalid => ApiError::new(
            StatusCode::FORBIDDEN,
            "link_invalid",
            "this link is not valid (altered, or cut short when copied): ask for a new one",
        ),
        Refusal::UnknownKey => ApiError::new(
            StatusCode::FORBIDDEN,
            "link_invalid",
            "this link was signed with a key this server does not have (removed from the link \
             keys, or generated by a process since restarted): ask for a new one",
        ),
        Refusal::Expired => ApiError::new(
            StatusCode::GONE,
            "link_expired",
            "this link has expired: ask for a new one",
        ),
    }
}

/// `410 link_used`.
fn used() -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "link_used",
        "this link was already used: its answer was delivered once, and it works only once",
    )
}

/// The link of the path, opened at the engine's clock.
fn open(state: &AppState, path: Result<Path<String>, PathRejection>) -> Result<Claims, ApiError> {
    let Ok(Path(link)) = path else {
        return Err(refusal_error(Refusal::Invalid));
    };
    let now = state.engine.clock().now_ms();
    links::open(&state.options.link_keys, &link, now).map_err(refusal_error)
}

/// `GET /l/{link}` → the confirmation page. Never resumes anything (link previews fetch it).
#[utoipa::path(
    get,
    path = "/l/{link}",
    tag = "hooks",
    summary = "A resume link's confirmation page",
    description = "An HTML page with the link's label, its payload and one button that posts the link. Resumes nothing. Errors are HTML for a browser (`Accept: text/html`), JSON otherwise.",
    params(("link" = String, Path, description = "The link, as made by `POST /v1/hooks/{token}/links`")),
    responses(
        (status = 200, description = "An HTML page", content_type = "text/html", body = String),
        (status = 403, description = "`link_invalid` (altered, or signed by a key this server does not have)", body = crate::openapi::ErrorBody),
        (status = 410, description = "`link_expired`", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn show(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    match open(&state, path) {
        Ok(claims) => page::confirm(claims.l.as_deref(), &claims.p),
        Err(e) => refuse(e, wants_html(&headers)),
    }
}

/// `POST /l/{link}` → resumes the hook with the link's payload, once.
#[utoipa::path(
    post,
    path = "/l/{link}",
    tag = "hooks",
    summary = "Use a resume link",
    description = "Resumes the hook the link was made for with its payload (the request body is ignored). A link works once, on whichever node: a second use is `410 link_used`. Answers an HTML page for a browser (`Accept: text/html`), JSON otherwise.",
    params(("link" = String, Path, description = "The link, as made by `POST /v1/hooks/{token}/links`")),
    responses(
        (status = 200, description = "Delivered (JSON; an HTML page for a browser)", body = LinkUsed),
        (status = 400, description = "`invalid_payload` (the hook's definition changed since the link was made)", body = crate::openapi::ErrorBody),
        (status = 403, description = "`link_invalid`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`hook_not_found` (the run no longer waits on that hook)", body = crate::openapi::ErrorBody),
        (status = 410, description = "`link_expired`, `link_used`", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn use_link(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let html = wants_html(&headers);
    let claims = match open(&state, path) {
        Ok(claims) => claims,
        Err(e) => return refuse(e, html),
    };
    let span = tracing::info_span!("POST /l/{link}", token = %redact_token(&claims.tok));
    let bound = HookRef {
        run_id: claims.run.clone(),
        hook_cmd: claims.cmd,
    };
    let key = claims.idempotency_key();
    let answer = state
        .engine
        .resume_hook_bound(&claims.tok, claims.p, Some(key), Some(&bound))
        .instrument(span)
        .await;
    match answer {
        Ok(a) if a.stored => {
            if html {
                page::done()
            } else {
                page::secure(Json(LinkUsed { run_id: a.run_id }).into_response())
            }
        }
        Ok(_) | Err(EngineError::IdempotencyKeyReused) => refuse(used(), html),
        Err(EngineError::HookNotFound) => refuse(
            ApiError::new(
                StatusCode::NOT_FOUND,
                "hook_not_found",
                "nothing waits for this answer any more: the run ended, or no longer waits on \
                 the hook the link was made for",
            ),
            html,
        ),
        Err(e) => refuse(e.into(), html),
    }
}

/// Every error of this module's own, for the list of codes (`error.rs`).
#[cfg(test)]
pub(crate) fn every_error() -> Vec<ApiError> {
    vec![
        invalid_link("m"),
        refusal_error(Refusal::Invalid),
        refusal_error(Refusal::UnknownKey),
        refusal_error(Refusal::Expired),
        used(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_stay_within_the_window() {
        let day = links::DEFAULT_LIFETIME;
        let hour = Duration::from_secs(3600);
        assert_eq!(lifetime(None, Some(2 * day)).unwrap(), day);
        assert_eq!(lifetime(None, Some(hour)).unwrap(), hour);
        assert_eq!(lifetime(None, None).unwrap(), day);
        assert_eq!(
            lifetime(Some(5), Some(hour)).unwrap(),
            Duration::from_millis(5)
        );
        let e = lifetime(Some(2 * 3_600_000), Some(hour)).unwrap_err();
        assert_eq!(e.code, "invalid_link");
        assert!(e.message.contains("--idempotency-window"), "{}", e.message);
        assert_eq!(lifetime(Some(0), None).unwrap_err().code, "invalid_link");
        assert!(lifetime(Some(u64::MAX), None).is_ok());
    }

    #[test]
    fn labels_are_short_plain_text() {
        assert_eq!(check_label(None).unwrap(), None);
        assert!(check_label(Some("Approve order 7?".into())).is_ok());
        assert!(check_label(Some("x".repeat(201))).is_err());
        assert!(check_label(Some("a\nb".into())).is_err());
    }
}
