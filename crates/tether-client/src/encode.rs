//! Percent-encoding of URL path segments (hook tokens can contain any character).

/// Percent-encode `s` for use as one URL path segment: every byte outside
/// `[A-Za-z0-9_.~-]` becomes `%XX` (so `/`, `:`, `?`, `%`, spaces and non-ASCII are all safe),
/// and a segment of only dots (`.`, `..`) is encoded whole, since HTTP clients resolve those
/// away and the request would reach another route.
///
/// ```
/// assert_eq!(tether_client::encode_path_segment("slack_messages:C1"), "slack_messages%3AC1");
/// assert_eq!(tether_client::encode_path_segment("a/é"), "a%2F%C3%A9");
/// assert_eq!(tether_client::encode_path_segment(".."), "%2E%2E");
/// ```
pub fn encode_path_segment(s: &str) -> String {
    if s == "." || s == ".." {
        return s.replace('.', "%2E");
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'~' | b'-') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::encode_path_segment;

    #[test]
    fn encodes_everything_but_unreserved() {
        assert_eq!(encode_path_segment("Az09_.~-"), "Az09_.~-");
        assert_eq!(encode_path_segment("a b/c?d#e%f"), "a%20b%2Fc%3Fd%23e%25f");
        assert_eq!(encode_path_segment("ü"), "%C3%BC");
        assert_eq!(encode_path_segment(""), "");
        assert_eq!(encode_path_segment("."), "%2E");
        assert_eq!(encode_path_segment("a..b"), "a..b");
    }
}
