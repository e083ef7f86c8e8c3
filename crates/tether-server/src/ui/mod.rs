//! The web UI served at `/`: hand-written HTML, CSS and vanilla JavaScript embedded in the
//! binary with `include_str!` (no Node toolchain, no bundler), on top of the JSON API.
//!
//! | route | serves |
//! | --- | --- |
//! | `GET /` | the runs list (status and workflow filters, newest first, pages) |
//! | `GET /runs/{run_id}` | one run: status, input, output or error, the journal as lanes, hooks, shared state, resume / signal / cancel |
//! | `GET /ui/{asset}` | the stylesheet and scripts |
//! | `GET /v1/runs/stream` | server-sent events: some run changed (the list page) |
//! | `GET /v1/runs/{run_id}/stream` | server-sent events: the run or one of its hook threads changed |
//! | `GET /v1/runs/{run_id}/threads` | the run's hook threads, as runs |
//!
//! Pages and assets hold no data, so they are served without authentication; the scripts
//! read everything through `/v1/...`, sending the API token the user typed into the page
//! (kept in the browser's `localStorage`) as `Authorization: Bearer`. The streams are read
//! with `fetch` (not `EventSource`, which cannot send headers), so they follow the same rule
//! as the rest of the API and no token ever travels in a URL.
//!
//! Pages are rendered in the browser from API data with `textContent` only (never
//! `innerHTML`), and served with a Content-Security-Policy allowing only this origin's
//! scripts and styles.

pub(crate) mod stream;

use axum::extract::{OriginalUri, Path};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::HeaderName;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::Route;

/// Headers of every page and asset: strict CSP (this origin's scripts and styles only, no
/// inline code, no framing), no MIME sniffing, no referrer (run ids stay on this server).
const SECURITY_HEADERS: [(&str, &str); 4] = [
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
         img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
];

/// The embedded files: (name under `/ui/`, content type, content).
const ASSETS: [(&str, &str, &str); 4] = [
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("assets/app.css"),
    ),
    (
        "common.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/common.js"),
    ),
    (
        "list.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/list.js"),
    ),
    (
        "run.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/run.js"),
    ),
];

const INDEX_HTML: &str = include_str!("assets/index.html");
const RUN_HTML: &str = include_str!("assets/run.html");

/// The UI's routes (pages, assets, streams, the threads listing), merged into the API router.
pub(crate) fn routes() -> Vec<Route> {
    vec![
        Route::get("/", index),
        Route::get("/runs/{run_id}", run_page),
        Route::get("/ui/{asset}", asset),
        Route::get("/v1/runs/stream", stream::runs_stream),
        Route::get("/v1/runs/{run_id}/stream", stream::run_stream),
        Route::get("/v1/runs/{run_id}/threads", stream::threads),
    ]
}

/// An embedded file with its content type and the security headers.
fn embedded(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = (
        [
            (CONTENT_TYPE, content_type),
            // Embedded in the binary: a new build may change them, so always revalidate.
            (CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response();
    for (name, value) in SECURITY_HEADERS {
        resp.headers_mut().insert(
            HeaderName::from_static(name),
            axum::http::HeaderValue::from_static(value),
        );
    }
    resp
}

/// `GET /` → the runs list page.
#[utoipa::path(
    get,
    path = "/",
    tag = "ui",
    summary = "The web UI: the runs list",
    responses((status = 200, description = "An HTML page", content_type = "text/html", body = String)),
)]
pub(crate) async fn index(OriginalUri(original): OriginalUri, uri: Uri) -> Response {
    page(INDEX_HTML, &mount_prefix(original.path(), uri.path()))
}

/// `GET /runs/{run_id}` → the run page (the script reads the id from the address; the page
/// is the same for every run: only the path prefix Tether is mounted under goes into it).
#[utoipa::path(
    get,
    path = "/runs/{run_id}",
    tag = "ui",
    summary = "The web UI: one run",
    params(("run_id" = String, Path, description = "The run (read by the page's script)")),
    responses((status = 200, description = "An HTML page", content_type = "text/html", body = String)),
)]
pub(crate) async fn run_page(OriginalUri(original): OriginalUri, uri: Uri) -> Response {
    page(RUN_HTML, &mount_prefix(original.path(), uri.path()))
}

/// A page whose links and assets start at `prefix` (`""` at the site's root).
fn page(html: &'static str, prefix: &str) -> Response {
    let mut resp = embedded("text/html; charset=utf-8", "");
    *resp.body_mut() = axum::body::Body::from(html.replace(PREFIX_MARK, prefix));
    resp
}

/// Where a page's links and assets start: `%BASE%` in the HTML.
const PREFIX_MARK: &str = "%BASE%";

/// The path prefix Tether's routes are mounted under (`Router::nest("/tether", ..)` gives
/// `/tether`), from the request's original path and the path the router matched. Only
/// unreserved URL characters and `/` are kept in it; anything else gives `""`, so nothing
/// that could break out of an HTML attribute is ever echoed.
fn mount_prefix(original: &str, matched: &str) -> String {
    let prefix = if matched == "/" {
        original.trim_end_matches('/')
    } else {
        original.strip_suffix(matched).unwrap_or("")
    };
    let safe = prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b));
    if safe && !prefix.starts_with("//") {
        prefix.to_owned()
    } else {
        String::new()
    }
}

/// `GET /ui/{asset}` → an embedded stylesheet or script; `404 not_found` for any other name.
#[utoipa::path(
    get,
    path = "/ui/{asset}",
    tag = "ui",
    summary = "The web UI's stylesheet and scripts",
    params(("asset" = String, Path, description = "`app.css`, `common.js`, `list.js` or `run.js`")),
    responses(
        (status = 200, description = "CSS or JavaScript", content(
            (String = "text/css"),
            (String = "text/javascript"),
        )),
        (status = 404, description = "`not_found`", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => embedded(content_type, body),
        None => ApiError::route_not_found("GET", "/ui/(unknown asset)").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mount_prefix_is_read_from_the_paths_and_only_ever_safe() {
        assert_eq!(mount_prefix("/", "/"), "");
        assert_eq!(mount_prefix("/runs/r1", "/runs/r1"), "");
        assert_eq!(mount_prefix("/tether", "/"), "/tether");
        assert_eq!(mount_prefix("/tether/", "/"), "/tether");
        assert_eq!(mount_prefix("/a/b/runs/r1", "/runs/r1"), "/a/b");
        assert_eq!(mount_prefix("/x\"y/runs/r", "/runs/r"), "");
        assert_eq!(mount_prefix("/%3Cs%3E", "/"), "");
        assert_eq!(mount_prefix("//evil.example", "/"), "");
    }

    #[test]
    fn pages_load_only_embedded_assets() {
        for page in [INDEX_HTML, RUN_HTML] {
            for src in page.split("src=\"").skip(1) {
                let src = src.split('"').next().unwrap_or_default();
                let name = src.strip_prefix("%BASE%/ui/").unwrap_or(src);
                assert!(
                    ASSETS.iter().any(|(n, _, _)| *n == name),
                    "page loads {src}, which is not embedded"
                );
            }
            assert!(
                !page.contains("<script>"),
                "inline scripts are refused by the CSP"
            );
        }
    }

    #[test]
    fn scripts_never_write_html() {
        for (name, _, body) in ASSETS {
            for forbidden in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
            ] {
                assert!(!body.contains(forbidden), "{name} uses {forbidden}");
            }
        }
    }
}
