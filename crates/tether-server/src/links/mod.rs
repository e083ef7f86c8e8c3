//! Resume links: signed, single-use capability URLs that resume one hook with one payload.
//!
//! A link is stateless: `{kid}.{claims}.{signature}`, where `claims` is the base64url of a
//! small JSON object (the hook's token, the run and command index of the hook it was made
//! for, the payload, a label, the expiry and a random 128-bit link id) and `signature` the
//! base64url of HMAC-SHA256 under the key `kid` over a fixed prefix, the key id and the
//! claims. Claims are signed, not encrypted: whoever holds the link can read the payload,
//! the label and the hook's token (which, behind an API token, resumes nothing by itself).
//!
//! Single use comes from the store: the link is used through the ordinary resume with the
//! idempotency key `link:{link id}`, durable and shared by every node; a second use finds the
//! key used and is refused with `410 link_used`. Keys live for the idempotency window, so a
//! link never outlives it (see [`max_lifetime`]).

pub(crate) mod keys;
pub(crate) mod page;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;
use tether_core::event::CommandIndex;
use tether_core::Environment;
use tether_engine::EngineConfig;

pub use keys::{LinkKeyError, LinkKeys};

/// The version of the claims' format.
const VERSION: u8 = 1;

/// What every signature starts with, so a link key used elsewhere signs nothing a link
/// could be mistaken for.
const DOMAIN: &[u8] = b"tether-resume-link-v1\n";

/// Largest payload a link carries, in bytes of JSON: the payload travels in the URL.
pub(crate) const MAX_LINK_PAYLOAD: usize = 2048;

/// Longest label, in characters.
pub(crate) const MAX_LABEL_CHARS: usize = 200;

/// A link's lifetime when the request names none: a day (or less, see [`max_lifetime`]).
pub(crate) const DEFAULT_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// What a link says, signed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Claims {
    /// The format's version.
    pub v: u8,
    /// The link's id: 128 random bits, base64url. Its idempotency key is `link:{id}`.
    pub id: String,
    /// The hook's token.
    pub tok: String,
    /// The run holding the hook the link was made for.
    pub run: String,
    /// The hook's command index in that run.
    pub cmd: CommandIndex,
    /// The payload the link resumes the hook with.
    pub p: Value,
    /// What the page shows above the payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l: Option<String>,
    /// The set the link belongs to: of the links of one set (e.g. "approve" and "reject"),
    /// the first used wins and the others answer `410 link_used`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s: Option<String>,
    /// Expiry, ms since the Unix epoch (by the engine's clock).
    pub exp: u64,
}

impl Claims {
    /// The idempotency key the link's use is recorded under: `link:{id}`, or for a link of
    /// a set, one key for the whole set (scoped to the hook the set was made for, so a set
    /// name reused for another run's hook is another set). Another link of the set then
    /// finds the key used with another payload, and is refused like a second use.
    pub(crate) fn idempotency_key(&self) -> String {
        match &self.s {
            Some(set) => format!("link-set:{}:{}:{set}", self.run, self.cmd),
            None => format!("link:{}", self.id),
        }
    }
}

/// Why a link is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not a link, or altered: the signature does not match.
    Invalid,
    /// Signed by a key this server does not have.
    UnknownKey,
    /// Past its expiry.
    Expired,
}

/// A new random link id (128 bits, base64url).
pub(crate) fn new_link_id() -> String {
    let mut id = [0u8; 16];
    tether_engine::SystemEnvironment::default().random_bytes(&mut id);
    URL_SAFE_NO_PAD.encode(id)
}

/// The MAC of `kid` and `claims` (as written in the link) under `secret`.
fn mac(secret: &[u8], kid: &str, claims: &str) -> Option<Hmac<Sha256>> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).ok()?;
    mac.update(DOMAIN);
    mac.update(kid.as_bytes());
    mac.update(b".");
    mac.update(claims.as_bytes());
    Some(mac)
}

/// The link (the last segment of its URL) for `claims`, signed with the signing key.
pub(crate) fn sign(keys: &LinkKeys, claims: &Claims) -> Result<String, String> {
    let key = keys.signing();
    let json = serde_json::to_vec(claims).map_err(|e| format!("cannot encode a link: {e}"))?;
    let encoded = URL_SAFE_NO_PAD.encode(json);
    let mac = mac(&key.secret, &key.kid, &encoded).ok_or("cannot key HMAC-SHA256")?;
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    Ok(format!("{}.{encoded}.{signature}", key.kid))
}

/// The claims of `link` if it is signed by one of `keys` and in date at `now_ms`.
pub(crate) fn open(keys: &LinkKeys, link: &str, now_ms: u64) -> Result<Claims, Refusal> {
    let mut parts = link.split('.');
    let (Some(kid), Some(encoded), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Invalid);
    };
    if !keys::valid_kid(kid) {
        return Err(Refusal::Invalid);
    }
    let key = keys.find(kid).ok_or(Refusal::UnknownKey)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| Refusal::Invalid)?;
    let mac = mac(&key.secret, kid, encoded).ok_or(Refusal::Invalid)?;
    // Constant time (`hmac`'s `verify_slice`).
    mac.verify_slice(&signature).map_err(|_| Refusal::Invalid)?;
    let json = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| Refusal::Invalid)?;
    let claims: Claims = serde_json::from_slice(&json).map_err(|_| Refusal::Invalid)?;
    if claims.v != VERSION {
        return Err(Refusal::Invalid);
    }
    if now_ms >= claims.exp {
        return Err(Refusal::Expired);
    }
    Ok(claims)
}

/// The longest a link may live on this engine: a use is recorded as an idempotency key,
/// forgotten after the idempotency window, or with its run after the retention (whichever is
/// shorter; the key is recorded when the link is used, after it was made). A link must
/// expire before then, or it could be used again. `None`: keys are kept as long as their
/// runs, which are kept for ever.
pub(crate) fn max_lifetime(config: &EngineConfig) -> Option<Duration> {
    match (config.idempotency_window, config.retention) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// New claims for a link (its id drawn now).
pub(crate) fn claims(
    token: &str,
    hook: &tether_store::HookRef,
    payload: Value,
    label: Option<String>,
    set: Option<String>,
    exp: u64,
) -> Claims {
    Claims {
        v: VERSION,
        id: new_link_id(),
        tok: token.to_owned(),
        run: hook.run_id.clone(),
        cmd: hook.hook_cmd,
        p: payload,
        l: label,
        s: set,
        exp,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const S1: &str = "0123456789abcdef0123456789abcdef-one";
    const S2: &str = "0123456789abcdef0123456789abcdef-two";

    fn sample(exp: u64) -> Claims {
        let hook = tether_store::HookRef {
            run_id: "r1".into(),
            hook_cmd: 3,
        };
        claims(
            "tok",
            &hook,
            json!({"approved": true}),
            Some("Ok?".into()),
            None,
            exp,
        )
    }

    #[test]
    fn a_signed_link_opens_until_it_expires() {
        let keys = LinkKeys::new("k1", S1).unwrap();
        let c = sample(1_000);
        let link = sign(&keys, &c).unwrap();
        assert!(link.starts_with("k1."));
        assert_eq!(open(&keys, &link, 999), Ok(c.clone()));
        assert_eq!(open(&keys, &link, 1_000), Err(Refusal::Expired));
        assert_eq!(c.idempotency_key(), format!("link:{}", c.id));
        assert_eq!(URL_SAFE_NO_PAD.decode(&c.id).unwrap().len(), 16);
        assert_ne!(sample(1).id, sample(1).id);
        let set = Claims {
            s: Some("decision".into()),
            ..sample(1)
        };
        assert_eq!(set.idempotency_key(), "link-set:r1:3:decision");
    }

    #[test]
    fn tampering_is_refused() {
        let keys = LinkKeys::new("k1", S1).unwrap();
        let link = sign(&keys, &sample(1_000)).unwrap();
        let (head, sig) = link.rsplit_once('.').unwrap();
        let (kid, claims) = head.split_once('.').unwrap();
        // Another payload, the same signature.
        let mut c = sample(1_000);
        c.p = json!({"approved": false});
        let forged = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap());
        for bad in [
            format!("{kid}.{forged}.{sig}"),
            format!("{kid}.{claims}.{}", &sig[1..]),
            format!("{kid}.{claims}"),
            format!("{link}.x"),
            "nope".to_string(),
            format!("k!.{claims}.{sig}"),
        ] {
            assert_eq!(open(&keys, &bad, 0), Err(Refusal::Invalid), "{bad}");
        }
        // Signed by another secret under the same id.
        let other = LinkKeys::new("k1", S2).unwrap();
        assert_eq!(open(&other, &link, 0), Err(Refusal::Invalid));
        // An id this server does not have.
        let k2 = LinkKeys::new("k2", S2).unwrap();
        assert_eq!(open(&k2, &link, 0), Err(Refusal::UnknownKey));
    }

    #[test]
    fn an_old_key_still_verifies_after_rotation() {
        let old = LinkKeys::new("k1", S1).unwrap();
        let link = sign(&old, &sample(1_000)).unwrap();
        let rotated = LinkKeys::new("k2", S2)
            .unwrap()
            .verifying("k1", S1)
            .unwrap();
        assert!(open(&rotated, &link, 0).is_ok());
        assert!(sign(&rotated, &sample(1)).unwrap().starts_with("k2."));
    }

    #[test]
    fn links_live_within_the_shorter_of_the_window_and_the_retention() {
        let hour = Duration::from_secs(3600);
        let mut config = EngineConfig::default();
        assert_eq!(max_lifetime(&config), Some(24 * hour));
        config.retention = Some(hour);
        assert_eq!(max_lifetime(&config), Some(hour));
        config.idempotency_window = None;
        assert_eq!(max_lifetime(&config), Some(hour));
        config.retention = None;
        assert_eq!(max_lifetime(&config), None);
    }
}
