//! Verified webhooks: how a webhook's requests are authenticated before they reach the
//! workflow, and how a sender's retried delivery is recognised.
//!
//! A [`WebhookVerifier`] is stored with the webhook (in its hook metadata, so a request to any
//! node of a cluster is checked the same way). It names its secret, never holds it: the
//! [`SecretName`] is resolved by the server when a request arrives (from the server's
//! configured secrets, else from the environment variable of that name). A journal therefore
//! never contains a webhook secret.
//!
//! The checks themselves (HMAC-SHA256, compared in constant time) are made by the server
//! (`tether-server`'s `webhook_verify.rs`); a request that fails them is answered `401` and
//! is not stored.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Default timestamp tolerance of the Stripe and Slack presets (5 minutes, as both senders
/// document).
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

/// The name of a secret: the server looks it up among its configured secrets, then in the
/// environment variable of that name. Only the name is journaled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretName(pub String);

impl SecretName {
    /// A secret read from the environment variable (or configured secret) `name`.
    pub fn env(name: impl Into<String>) -> Self {
        SecretName(name.into())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for SecretName {
    fn from(name: &str) -> Self {
        SecretName(name.to_owned())
    }
}

impl From<String> for SecretName {
    fn from(name: String) -> Self {
        SecretName(name)
    }
}

/// How a webhook's requests are verified, and what identifies a delivery (a request carrying a
/// delivery id already accepted is answered as a duplicate and stored once).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scheme", rename_all = "snake_case")]
#[non_exhaustive]
pub enum WebhookVerifier {
    /// GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`; delivery id
    /// `X-GitHub-Delivery`.
    Github {
        /// The secret's name.
        secret: SecretName,
    },
    /// Stripe: `Stripe-Signature: t=<unix secs>,v1=<hex HMAC-SHA256(secret, "{t}.{body}")>`
    /// (any `v1` entry may match), `t` within `tolerance_secs` of the server's clock; delivery
    /// id: the event's `id` (a field of the JSON body).
    Stripe {
        /// The secret's name.
        secret: SecretName,
        /// Largest accepted distance between `t` and now, in seconds.
        tolerance_secs: u64,
    },
    /// Slack: `X-Slack-Signature: v0=<hex HMAC-SHA256(secret, "v0:{ts}:{body}")>` with `ts`
    /// from `X-Slack-Request-Timestamp`, within `tolerance_secs` of now; delivery id: the
    /// body's `event_id` (Events API) when present. Slack's retries (`X-Slack-Retry-Num`) of
    /// an event carry the same `event_id`, so they are stored once.
    Slack {
        /// The secret's name.
        secret: SecretName,
        /// Largest accepted distance between the request timestamp and now, in seconds.
        tolerance_secs: u64,
    },
    /// Any sender signing the raw body: `{header}: {prefix}<hex HMAC-SHA256(secret, body)>`;
    /// the delivery id, if the sender gives one, in `delivery_id_header`.
    HmacSha256 {
        /// The secret's name.
        secret: SecretName,
        /// The header carrying the signature (case-insensitive).
        header: String,
        /// Text before the hex digest (e.g. `sha256=`); empty for none.
        #[serde(default)]
        prefix: String,
        /// The header carrying the sender's delivery id, if any.
        #[serde(default)]
        delivery_id_header: Option<String>,
    },
}

impl WebhookVerifier {
    /// The GitHub preset, with the secret named `secret` (e.g. an environment variable).
    pub fn github(secret: impl Into<SecretName>) -> Self {
        WebhookVerifier::Github {
            secret: secret.into(),
        }
    }

    /// The Stripe preset (tolerance 300 s; see [`Self::tolerance`]).
    pub fn stripe(secret: impl Into<SecretName>) -> Self {
        WebhookVerifier::Stripe {
            secret: secret.into(),
            tolerance_secs: DEFAULT_TOLERANCE_SECS,
        }
    }

    /// The Slack preset (tolerance 300 s; see [`Self::tolerance`]).
    pub fn slack(secret: impl Into<SecretName>) -> Self {
        WebhookVerifier::Slack {
            secret: secret.into(),
            tolerance_secs: DEFAULT_TOLERANCE_SECS,
        }
    }

    /// A generic HMAC-SHA256 signature of the raw body, hex-encoded in `header`.
    pub fn hmac_sha256(secret: impl Into<SecretName>, header: impl Into<String>) -> Self {
        WebhookVerifier::HmacSha256 {
            secret: secret.into(),
            header: header.into(),
            prefix: String::new(),
            delivery_id_header: None,
        }
    }

    /// The text before the hex digest of a generic signature (e.g. `sha256=`); other
    /// verifiers are returned unchanged.
    pub fn prefix(mut self, text: impl Into<String>) -> Self {
        if let WebhookVerifier::HmacSha256 { prefix, .. } = &mut self {
            *prefix = text.into();
        }
        self
    }

    /// The header carrying a generic sender's delivery id; other verifiers are returned
    /// unchanged.
    pub fn delivery_id_header(mut self, name: impl Into<String>) -> Self {
        if let WebhookVerifier::HmacSha256 {
            delivery_id_header, ..
        } = &mut self
        {
            *delivery_id_header = Some(name.into());
        }
        self
    }

    /// The timestamp tolerance of the Stripe and Slack presets (whole seconds); other
    /// verifiers are returned unchanged.
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        if let WebhookVerifier::Stripe { tolerance_secs, .. }
        | WebhookVerifier::Slack { tolerance_secs, .. } = &mut self
        {
            *tolerance_secs = tolerance.as_secs();
        }
        self
    }

    /// The name of the secret this verifier needs.
    pub fn secret(&self) -> &SecretName {
        match self {
            WebhookVerifier::Github { secret }
            | WebhookVerifier::Stripe { secret, .. }
            | WebhookVerifier::Slack { secret, .. }
            | WebhookVerifier::HmacSha256 { secret, .. } => secret,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_the_secret_name_is_serialized() {
        let v = WebhookVerifier::hmac_sha256("MY_SECRET", "X-Sig")
            .prefix("sha256=")
            .delivery_id_header("X-Id");
        assert_eq!(
            serde_json::to_value(&v).expect("encode"),
            json!({"scheme": "hmac_sha256", "secret": "MY_SECRET", "header": "X-Sig",
                   "prefix": "sha256=", "delivery_id_header": "X-Id"})
        );
        let s = WebhookVerifier::stripe("STRIPE").tolerance(Duration::from_secs(60));
        let back: WebhookVerifier =
            serde_json::from_value(serde_json::to_value(&s).expect("encode")).expect("decode");
        assert_eq!(back, s);
        assert_eq!(back.secret().as_str(), "STRIPE");
    }
}
