//! The digest of a resume's payload that every backend stores next to its idempotency key, so
//! a key reused with another payload is told apart from a retry ([`OpRejected::IdempotencyKeyReused`]).
//!
//! [`OpRejected::IdempotencyKeyReused`]: crate::OpRejected::IdempotencyKeyReused

use serde_json::Value;
use sha2::{Digest, Sha256};

/// SHA-256 of the payload's canonical JSON, as 64 lower-case hex digits.
///
/// Canonical: the payload is the parsed JSON value, serialized again by `serde_json`, whose
/// objects (without its `preserve_order` feature, which the workspace does not enable) are
/// sorted maps. So two payloads that differ only in whitespace or in the order of object keys
/// have the same digest; any other difference (a value, `1` against `1.0`) changes it.
pub fn payload_digest(payload: &Value) -> String {
    let digest = payload_digest_bytes(payload);
    let mut hex = String::with_capacity(64);
    for byte in digest.iter() {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    hex
}

/// [`payload_digest`] as its 32 bytes (for ids derived from a key, without a hex round trip).
pub fn payload_digest_bytes(payload: &Value) -> [u8; 32] {
    // Serializing a `Value` cannot fail (its keys are strings): hash whatever was written.
    let mut hasher = Sha256::new();
    let _ = serde_json::to_writer(HashWriter(&mut hasher), payload);
    hasher.finalize().into()
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Feeds what `serde_json` writes straight into the hash (no intermediate buffer).
struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn digest_is_sha256_of_the_canonical_json() {
        // `echo -n '{"a":1,"b":[true,null]}' | sha256sum`
        let parsed: Value = serde_json::from_str(r#"{ "b": [true, null], "a": 1 }"#).unwrap();
        assert_eq!(
            payload_digest(&parsed),
            "1cc69c7fa23616ca2ec3ee70d24390a6225c8832db8a4c814c7e0e7f942f8668"
        );
        assert_eq!(
            payload_digest(&parsed),
            payload_digest(&json!({"a": 1, "b": [true, null]})),
            "key order and whitespace do not matter"
        );
        assert_ne!(payload_digest(&json!(1)), payload_digest(&json!(1.0)));
        assert_ne!(payload_digest(&json!("x")), payload_digest(&json!("y")));
    }
}
