//! Checking a verified webhook's request ([`tether_core::WebhookVerifier`]) before anything is
//! stored: the signature (HMAC-SHA256 over the raw body, compared in constant time by
//! `hmac`'s `verify_slice`), the timestamp where the sender signs one, and the sender's
//! delivery id, which makes a retried delivery a duplicate.
//!
//! Secrets are resolved here, per request, by name ([`WebhookSecrets`]): never journaled,
//! never logged, never put in an error message (only their name is).

use std::collections::BTreeMap;

use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tether_core::WebhookVerifier;

use crate::error::ApiError;

/// Where a verified webhook's secrets come from: values configured here by name, else the
/// environment variable of that name (read at each request, so a rotated variable applies
/// without a restart of the workflow). `Debug` shows the names only.
#[derive(Clone, Default)]
pub struct WebhookSecrets {
    values: BTreeMap<String, String>,
}

impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSecrets")
            .field("configured", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl WebhookSecrets {
    /// No configured secrets: every name is read from the environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Configure the secret `name` (it wins over an environment variable of that name).
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.values.insert(name.into(), value.into());
        self
    }

    /// The secret named `name`, if configured or set in the environment (an empty value
    /// counts as unset).
    fn resolve(&self, name: &str) -> Option<String> {
        self.values
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
            .filter(|v| !v.is_empty())
    }
}

/// Why a request was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The signature header (or the timestamp it needs) is absent or unreadable.
    SignatureMissing(String),
    /// The signature does not match.
    SignatureInvalid,
    /// The signed timestamp is outside the tolerance.
    TimestampStale { tolerance_secs: u64 },
    /// The server has no value for the secret the webhook names.
    SecretMissing(String),
}

impl Refusal {
    /// The `reason` label of `tether_webhook_rejected_total`.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Refusal::SignatureMissing(_) => "signature_missing",
            Refusal::SignatureInvalid => "signature_invalid",
            Refusal::TimestampStale { .. } => "timestamp_stale",
            Refusal::SecretMissing(_) => "secret_missing",
        }
    }

    /// The answer: `401` for the sender's fault, `503` for a secret the server lacks.
    pub(crate) fn into_api_error(self) -> ApiError {
        match self {
            Refusal::SignatureMissing(what) => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "webhook_signature_missing",
                format!("this webhook is verified: the request must carry {what}; nothing was stored"),
            ),
            Refusal::SignatureInvalid => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "webhook_signature_invalid",
                "the request's signature does not match the webhook's secret; nothing was stored",
            ),
            Refusal::TimestampStale { tolerance_secs } => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "webhook_timestamp_stale",
                format!(
                    "the signed timestamp is more than {tolerance_secs} s from the server's clock \
                     (a replay, or a clock to fix); nothing was stored"
                ),
            ),
            Refusal::SecretMissing(name) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "webhook_secret_missing",
                format!(
                    "the server has no value for the webhook secret {name:?}: set the \
                     environment variable {name} (or configure it in ServerOptions::webhook_secrets); \
                     nothing was stored"
                ),
            ),
        }
    }
}

/// A header's value as text, if present and readable.
fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Decode lower- or upper-case hex; `None` for anything else.
fn hex_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.len() % 2 != 0 {
        return None;
    }
    bytes
        .chunks(2)
        .map(|pair| {
            let hi = char::from(pair[0]).to_digit(16)?;
            let lo = char::from(pair[1]).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}

/// Whether `signature_hex` is the HMAC-SHA256 of `parts` (concatenated) under `secret`.
fn hmac_matches(secret: &str, parts: &[&[u8]], signature_hex: &str) -> bool {
    let Some(expected) = hex_decode(signature_hex) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    for part in parts {
        mac.update(part);
    }
    mac.verify_slice(&expected).is_ok()
}

/// Whether the unix time `ts` is within `tolerance_secs` of `now_secs`.
fn fresh(ts: &str, now_secs: u64, tolerance_secs: u64) -> Result<(), Refusal> {
    let ts: u64 = ts
        .parse()
        .map_err(|_| Refusal::SignatureMissing("a unix timestamp in seconds".into()))?;
    if ts.abs_diff(now_secs) > tolerance_secs {
        return Err(Refusal::TimestampStale { tolerance_secs });
    }
    Ok(())
}

/// A string field of the JSON body, if the body is a JSON object holding one.
fn body_field(body: &[u8], field: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get(field)?.as_str().map(str::to_owned)
}

/// Check a request against `verifier`; `Ok` carries the sender's delivery id, if it gives one.
pub(crate) fn verify(
    verifier: &WebhookVerifier,
    secrets: &WebhookSecrets,
    headers: &HeaderMap,
    body: &[u8],
    now_secs: u64,
) -> Result<Option<String>, Refusal> {
    let name = verifier.secret().as_str();
    let secret = secrets
        .resolve(name)
        .ok_or_else(|| Refusal::SecretMissing(name.to_owned()))?;
    let missing = |what: &str| Refusal::SignatureMissing(what.to_owned());
    match verifier {
        WebhookVerifier::Github { .. } => {
            let sig = header(headers, "x-hub-signature-256")
                .ok_or_else(|| missing("an X-Hub-Signature-256 header"))?;
            let hex = sig
                .strip_prefix("sha256=")
                .ok_or_else(|| missing("an X-Hub-Signature-256 header starting with sha256="))?;
            if !hmac_matches(&secret, &[body], hex) {
                return Err(Refusal::SignatureInvalid);
            }
            Ok(header(headers, "x-github-delivery").map(str::to_owned))
        }
        WebhookVerifier::Stripe { tolerance_secs, .. } => {
            let sig = header(headers, "stripe-signature")
                .ok_or_else(|| missing("a Stripe-Signature header"))?;
            let mut ts = None;
            let mut v1 = Vec::new();
            for item in sig.split(',') {
                match item.trim().split_once('=') {
                    Some(("t", t)) => ts = Some(t),
                    Some(("v1", s)) => v1.push(s),
                    _ => {}
                }
            }
            let ts = ts.ok_or_else(|| missing("a Stripe-Signature with t=<timestamp>"))?;
            if v1.is_empty() {
                return Err(missing("a Stripe-Signature with a v1= signature"));
            }
            fresh(ts, now_secs, *tolerance_secs)?;
            if !v1
                .iter()
                .any(|s| hmac_matches(&secret, &[ts.as_bytes(), b".", body], s))
            {
                return Err(Refusal::SignatureInvalid);
            }
            Ok(body_field(body, "id"))
        }
        WebhookVerifier::Slack { tolerance_secs, .. } => {
            let sig = header(headers, "x-slack-signature")
                .ok_or_else(|| missing("an X-Slack-Signature header"))?;
            let ts = header(headers, "x-slack-request-timestamp")
                .ok_or_else(|| missing("an X-Slack-Request-Timestamp header"))?;
            let hex = sig
                .strip_prefix("v0=")
                .ok_or_else(|| missing("an X-Slack-Signature header starting with v0="))?;
            fresh(ts, now_secs, *tolerance_secs)?;
            if !hmac_matches(&secret, &[b"v0:", ts.as_bytes(), b":", body], hex) {
                return Err(Refusal::SignatureInvalid);
            }
            Ok(body_field(body, "event_id"))
        }
        WebhookVerifier::HmacSha256 {
            header: name,
            prefix,
            delivery_id_header,
            ..
        } => {
            let what = format!("a {name} header");
            let sig = header(headers, name).ok_or_else(|| missing(&what))?;
            let hex = sig
                .strip_prefix(prefix.as_str())
                .ok_or_else(|| missing(&format!("a {name} header starting with {prefix}")))?;
            if !hmac_matches(&secret, &[body], hex) {
                return Err(Refusal::SignatureInvalid);
            }
            Ok(delivery_id_header
                .as_deref()
                .and_then(|h| header(headers, h))
                .map(str::to_owned))
        }
        // `WebhookVerifier` is non-exhaustive: a scheme this server does not know refuses.
        #[allow(unreachable_patterns)]
        _ => Err(Refusal::SignatureInvalid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, parts: &[&[u8]]) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("key");
        for p in parts {
            mac.update(p);
        }
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("header value"));
        }
        h
    }

    #[test]
    fn stripe_accepts_any_matching_v1_and_refuses_a_stale_timestamp() {
        let secrets = WebhookSecrets::new().with("S", "whsec");
        let body = br#"{"id":"evt_1"}"#;
        let good = sign("whsec", &[b"1000.", body]);
        let h = headers(&[("stripe-signature", &format!("t=1000,v1=00ff,v1={good}"))]);
        let v = WebhookVerifier::stripe("S");
        assert_eq!(
            verify(&v, &secrets, &h, body, 1100),
            Ok(Some("evt_1".into()))
        );
        assert_eq!(
            verify(&v, &secrets, &h, body, 1000 + 301),
            Err(Refusal::TimestampStale {
                tolerance_secs: 300
            })
        );
    }

    #[test]
    fn a_missing_secret_is_the_servers_fault_and_never_shows_a_value() {
        let v = WebhookVerifier::github("TETHER_TEST_SURELY_UNSET_SECRET");
        let e = verify(&v, &WebhookSecrets::new(), &HeaderMap::new(), b"", 0).unwrap_err();
        assert_eq!(e.reason(), "secret_missing");
        assert_eq!(e.into_api_error().status, StatusCode::SERVICE_UNAVAILABLE);
        let dbg = format!("{:?}", WebhookSecrets::new().with("N", "hunter2"));
        assert!(!dbg.contains("hunter2"), "{dbg}");
    }

    #[test]
    fn hex_is_strict() {
        assert_eq!(hex_decode("0aFf"), Some(vec![0x0a, 0xff]));
        assert_eq!(hex_decode("0g"), None);
        assert_eq!(hex_decode("abc"), None);
    }
}
