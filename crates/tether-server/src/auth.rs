//! API-token authentication: with [`crate::ServerOptions::api_token`] set, every `/v1/...`,
//! `/metrics` and `/openapi.json` request must carry `Authorization: Bearer <token>`.
//! `/healthz`, resume links (`/l/{link}`) and webhook URLs never do (a webhook's token, a
//! signed link, is its own credential).

use axum::extract::Request;
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::AppState;

/// Whether `path` is under the token-protected API (`/metrics` included: run counts and
/// rates are not for anyone who can reach the port; `/openapi.json` too, like the API it
/// describes).
pub(crate) fn protected(path: &str) -> bool {
    path == "/v1" || path.starts_with("/v1/") || path == "/metrics" || path == "/openapi.json"
}

/// Compare two byte strings in time that depends only on their lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether the request's `Authorization` header carries `Bearer <expected>`.
fn authorized(req: &Request, expected: &str) -> bool {
    let Some(value) = req.headers().get(AUTHORIZATION) else {
        return false;
    };
    let value = value.as_bytes();
    let Some(scheme_end) = value.iter().position(|b| *b == b' ') else {
        return false;
    };
    let (scheme, rest) = value.split_at(scheme_end);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return false;
    }
    constant_time_eq(rest.trim_ascii(), expected.as_bytes())
}

/// The `401 unauthorized` answer to an unauthenticated `/v1/...` request, if `req` is one.
pub(crate) fn refusal(state: &AppState, req: &Request) -> Option<Response> {
    let expected = state.options.api_token.as_deref()?;
    if !protected(req.uri().path()) || authorized(req, expected) {
        return None;
    }
    let message = if req.headers().contains_key(AUTHORIZATION) {
        "invalid API token"
    } else {
        "missing API token: send Authorization: Bearer <token>"
    };
    let mut resp = ApiError::unauthorized(message).into_response();
    resp.headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    Some(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_bytes() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cret", b"s3creT"));
        assert!(!constant_time_eq(b"s3cret", b"s3cre"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn protects_only_the_v1_api() {
        assert!(protected("/v1/runs"));
        assert!(protected("/v1"));
        assert!(protected("/metrics"));
        assert!(protected("/openapi.json"));
        assert!(!protected("/v1runs"));
        assert!(!protected("/healthz"));
        assert!(!protected("/.well-known/workflow/v1/webhook/abc"));
        // Resume links: made behind the token, used without it.
        assert!(protected("/v1/hooks/tok/links"));
        assert!(!protected("/l/k1.abc.def"));
    }
}
