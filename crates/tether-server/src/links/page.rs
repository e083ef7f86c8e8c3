//! The small HTML pages of a resume link: the confirmation (label, payload, one button), the
//! answer after it was pressed, and a refusal. Server-rendered, no script: everything from the
//! link is escaped, and the pages are served under a Content-Security-Policy that allows only
//! their own inline stylesheet (by its hash) and a form posting back to this origin.

use std::sync::LazyLock;

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The pages' only styles (inline, allowed by their hash).
const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;\
padding:0 1rem;color:#1d1d1f}h1{font-size:1.3rem}pre{background:#f4f4f5;padding:.75rem;\
border-radius:6px;overflow:auto}button{font-size:1rem;padding:.5rem 1.5rem;border-radius:6px;\
border:0;background:#2563eb;color:#fff;cursor:pointer}.muted{color:#6b7280;font-size:.9rem}";

/// The Content-Security-Policy of every link page.
static CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'; base-uri 'none'; \
         frame-ancestors 'none'"
    )
});

/// `text` with the characters HTML gives a meaning to escaped.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page: `title` (escaped here) and `body` (HTML, escaped by the caller).
fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex, nofollow\">\
         <title>{}</title><style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n",
        escape(title)
    )
}

/// The headers every link answer carries, HTML or JSON: not cached anywhere, not sent on
/// as a referrer (the link is a credential), not framed, not indexed.
pub(crate) fn secure(mut resp: Response) -> Response {
    let headers = resp.headers_mut();
    for (name, value) in [
        ("cache-control", "no-store"),
        ("referrer-policy", "no-referrer"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("x-robots-tag", "noindex, nofollow"),
    ] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    if let Ok(csp) = HeaderValue::from_str(&CSP) {
        headers.insert(HeaderName::from_static("content-security-policy"), csp);
    }
    // `no-store` above wins; make sure nothing set another.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// An HTML answer with `status` and the link pages' headers.
fn html(status: StatusCode, page: String) -> Response {
    secure((status, [(CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response())
}

/// `GET /l/{link}`: what the link will do, and the one button that does it.
pub(crate) fn confirm(label: Option<&str>, payload: &Value) -> Response {
    let pretty = serde_json::to_string_pretty(payload).unwrap_or_else(|_| payload.to_string());
    let title = label.unwrap_or("Confirm");
    let body = format!(
        "<main>\n<h1 id=\"label\">{}</h1>\n<p class=\"muted\">Pressing the button sends this \
         answer. The link works once.</p>\n<pre id=\"payload\">{}</pre>\n\
         <form method=\"post\"><button id=\"confirm\" type=\"submit\">Confirm</button></form>\n\
         </main>",
        escape(title),
        escape(&pretty)
    );
    html(StatusCode::OK, document(title, &body))
}

/// After the button: the answer was delivered.
pub(crate) fn done() -> Response {
    let body = "<main>\n<h1 id=\"done\">Done</h1>\n<p>Your answer was delivered. You can close \
                this page.</p>\n</main>";
    html(StatusCode::OK, document("Done", body))
}

/// A refused link (or a failed use), for a person: the status, the message and the code.
pub(crate) fn refused(status: StatusCode, code: &str, message: &str) -> Response {
    let title = match code {
        "link_used" => "This link was already used",
        "link_expired" => "This link has expired",
        "link_invalid" => "This link is not valid",
        "hook_not_found" => "Nothing is waiting for this answer any more",
        _ => "This link could not be used",
    };
    let body = format!(
        "<main>\n<h1 id=\"refused\">{}</h1>\n<p>{}</p>\n<p class=\"muted\">Error code: \
         <code id=\"code\">{}</code></p>\n</main>",
        escape(title),
        escape(message),
        escape(code)
    );
    html(status, document(title, &body))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    async fn text(resp: Response) -> String {
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn what_comes_from_the_link_is_escaped() {
        let resp = confirm(
            Some("<script>alert(1)</script> & \"q\""),
            &json!({"note": "</pre><img src=x onerror=alert(1)>"}),
        );
        let csp = resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("style-src 'sha256-") && !csp.contains("script-src"));
        assert_eq!(resp.headers()["referrer-policy"], "no-referrer");
        assert_eq!(resp.headers()["cache-control"], "no-store");
        let page = text(resp).await;
        assert!(
            !page.contains("<script>") && !page.contains("<img"),
            "{page}"
        );
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot;"));
        assert!(page.contains("&lt;/pre&gt;&lt;img src=x onerror=alert(1)&gt;"));
        assert!(page.contains("<form method=\"post\">"));
    }

    #[test]
    fn the_style_hash_is_the_inline_styles() {
        let expected = STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
        assert!(CSP.contains(&expected));
        assert!(document("t", "").contains(&format!("<style>{STYLE}</style>")));
    }
}
