//! The keys resume links are signed with ([`LinkKeys`]): the first signs, every one verifies,
//! so a key is rotated by putting the new one first and keeping the old one until the links
//! it signed are out of date. Secrets are never printed (`Debug` shows key ids only).

use std::fmt;

use tether_core::Environment;

/// Longest key id.
const MAX_KID_LEN: usize = 32;

/// Fewest bytes of a configured secret (256 bits, the size of HMAC-SHA256's output).
pub const MIN_SECRET_LEN: usize = 32;

/// A configuration of link keys that cannot be used; the message names the key id, never
/// the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkKeyError(pub String);

impl fmt::Display for LinkKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LinkKeyError {}

/// One key: its id (carried in every link it signs) and its secret.
#[derive(Clone)]
pub(crate) struct LinkKey {
    pub(crate) kid: String,
    pub(crate) secret: Vec<u8>,
}

/// The keys that sign and verify resume links (`POST /v1/hooks/{token}/links`, `/l/{link}`).
///
/// The first key signs new links; every key verifies, so a key is rotated without breaking
/// links still in date: put the new key first, keep the old one after it until its last
/// link has expired, then remove it. Every node sharing a database must have the same keys
/// for a link made on one node to work on another. [`LinkKeys::generate`] (the default) makes
/// a random key: links then work on this process only, and die with it.
#[derive(Clone)]
pub struct LinkKeys {
    keys: Vec<LinkKey>,
    generated: bool,
}

impl fmt::Debug for LinkKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secrets.
        f.debug_struct("LinkKeys")
            .field(
                "kids",
                &self.keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
            )
            .field("generated", &self.generated)
            .finish()
    }
}

impl Default for LinkKeys {
    /// [`LinkKeys::generate`].
    fn default() -> Self {
        LinkKeys::generate()
    }
}

impl LinkKeys {
    /// One random key (256 bits from the operating system), with a random id: links signed
    /// with it are refused by any other process (another node, this one after a restart).
    pub fn generate() -> Self {
        let env = tether_engine::SystemEnvironment::default();
        let mut secret = vec![0u8; 32];
        env.random_bytes(&mut secret);
        let mut id = [0u8; 6];
        env.random_bytes(&mut id);
        let kid: String = std::iter::once("gen-".to_string())
            .chain(id.iter().map(|b| format!("{b:02x}")))
            .collect();
        LinkKeys {
            keys: vec![LinkKey { kid, secret }],
            generated: true,
        }
    }

    /// The key `kid` with `secret` (at least [`MIN_SECRET_LEN`] bytes), signing and verifying.
    /// A key id is 1 to 32 ASCII letters, digits, `-` or `_`.
    pub fn new(kid: &str, secret: &str) -> Result<Self, LinkKeyError> {
        Ok(LinkKeys {
            keys: vec![checked(kid, secret)?],
            generated: false,
        })
    }

    /// These keys and `kid` after them, verifying only (an older key being rotated out).
    pub fn verifying(mut self, kid: &str, secret: &str) -> Result<Self, LinkKeyError> {
        let key = checked(kid, secret)?;
        if self.keys.iter().any(|k| k.kid == key.kid) {
            return Err(LinkKeyError(format!(
                "the link key id {kid:?} is given twice: each key needs an id of its own"
            )));
        }
        if self.generated {
            // A configured key replaces the generated one.
            self.keys.clear();
            self.generated = false;
        }
        self.keys.push(key);
        Ok(self)
    }

    /// Keys from `kid=secret` items, separated by commas or given one by one (the command
    /// line's repeated `--link-key`, or `TETHER_LINK_KEYS="k2=...,k1=..."`): the first signs.
    pub fn parse<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Self, LinkKeyError> {
        let mut keys: Option<LinkKeys> = None;
        for item in items.into_iter().flat_map(|i| i.split(',')) {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let Some((kid, secret)) = item.split_once('=') else {
                return Err(LinkKeyError(
                    "a link key is written kid=secret (e.g. k1=$(openssl rand -base64 32)); \
                     one item has no `=`"
                        .into(),
                ));
            };
            keys = Some(match keys {
                None => LinkKeys::new(kid.trim(), secret.trim())?,
                Some(k) => k.verifying(kid.trim(), secret.trim())?,
            });
        }
        keys.ok_or_else(|| LinkKeyError("no link key given".into()))
    }

    /// Whether these keys were generated at start ([`LinkKeys::generate`]) rather than
    /// configured.
    pub fn is_generated(&self) -> bool {
        self.generated
    }

    /// The ids of the keys, the signing one first.
    pub fn kids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.kid.as_str()).collect()
    }

    /// The key new links are signed with.
    pub(crate) fn signing(&self) -> &LinkKey {
        // Every constructor leaves at least one key.
        &self.keys[0]
    }

    /// The key with id `kid`, if configured.
    pub(crate) fn find(&self, kid: &str) -> Option<&LinkKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }
}

/// Whether `kid` can be a key id (it travels in links, before a `.`).
pub(crate) fn valid_kid(kid: &str) -> bool {
    (1..=MAX_KID_LEN).contains(&kid.len())
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn checked(kid: &str, secret: &str) -> Result<LinkKey, LinkKeyError> {
    if !valid_kid(kid) {
        return Err(LinkKeyError(format!(
            "the link key id {kid:?} must be 1 to {MAX_KID_LEN} ASCII letters, digits, `-` or `_`"
        )));
    }
    if secret.len() < MIN_SECRET_LEN {
        return Err(LinkKeyError(format!(
            "the secret of link key {kid:?} is {} bytes; it must be at least {MIN_SECRET_LEN} \
             (e.g. `openssl rand -base64 32`)",
            secret.len()
        )));
    }
    Ok(LinkKey {
        kid: kid.to_owned(),
        secret: secret.as_bytes().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S1: &str = "0123456789abcdef0123456789abcdef-one";
    const S2: &str = "0123456789abcdef0123456789abcdef-two";

    #[test]
    fn the_first_key_signs_and_all_verify() {
        let keys = LinkKeys::parse([format!("k2={S2}, k1={S1}").as_str()]).unwrap();
        assert_eq!(keys.kids(), ["k2", "k1"]);
        assert_eq!(keys.signing().kid, "k2");
        assert!(keys.find("k1").is_some());
        assert!(!keys.is_generated());
        let repeated = LinkKeys::parse([format!("k2={S2}").as_str(), &format!("k1={S1}")]);
        assert_eq!(repeated.unwrap().kids(), ["k2", "k1"]);
    }

    #[test]
    fn bad_keys_are_refused_without_their_secret() {
        for (spec, says) in [
            ("k1=short".to_string(), "at least 32"),
            (format!("k.1={S1}"), "must be 1 to 32"),
            (format!("={S1}"), "must be 1 to 32"),
            ("k1".to_string(), "kid=secret"),
            (format!("k1={S1},k1={S2}"), "twice"),
            (String::new(), "no link key"),
        ] {
            let e = LinkKeys::parse([spec.as_str()]).unwrap_err().to_string();
            assert!(e.contains(says), "{spec}: {e}");
            assert!(!e.contains(S1) && !e.contains("short"), "{e}");
        }
    }

    #[test]
    fn debug_shows_no_secret() {
        let keys = LinkKeys::new("k1", S1).unwrap();
        let shown = format!("{keys:?}");
        assert!(shown.contains("k1") && !shown.contains(S1), "{shown}");
        let generated = LinkKeys::generate();
        assert!(generated.is_generated());
        assert!(valid_kid(&generated.signing().kid));
        assert_ne!(generated.signing().kid, LinkKeys::generate().signing().kid);
    }
}
