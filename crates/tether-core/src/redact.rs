//! Hook tokens are credentials: whoever knows one can resume its run. Logs, spans and traces
//! never carry a full token, only the short prefix [`redact_token`] shows.

use std::fmt;

/// Most characters of a token a log line shows.
const MAX_SHOWN: usize = 6;

/// A token as logs show it: a short prefix and `…` (see [`redact_token`]).
#[derive(Clone, Copy)]
pub struct RedactedToken<'a>(&'a str);

/// The token as it may appear in logs, spans and traces: at most its first 6 characters and
/// never more than a quarter of it, followed by `…`; e.g. `9f0c1a…` for a generated
/// 40-character token, `slac…` for `slack_messages:C42`, `…` for a token of 3 characters or
/// fewer. Formats without allocating (`tracing::info!(token = %redact_token(t), ..)`).
///
/// ```
/// use tether_core::redact_token;
/// assert_eq!(redact_token("9f0c1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f").to_string(), "9f0c1a…");
/// assert_eq!(redact_token("slack_messages:C42").to_string(), "slac…");
/// assert_eq!(redact_token("abc").to_string(), "…");
/// ```
pub fn redact_token(token: &str) -> RedactedToken<'_> {
    RedactedToken(token)
}

impl RedactedToken<'_> {
    /// The part of the token that is shown.
    fn shown(&self) -> &str {
        let chars = self.0.chars().count();
        let keep = MAX_SHOWN.min(chars / 4);
        let end = self
            .0
            .char_indices()
            .nth(keep)
            .map_or(self.0.len(), |(i, _)| i);
        &self.0[..end]
    }
}

impl fmt::Display for RedactedToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Control characters (a token is any string) would break a log line.
        for c in self.shown().chars() {
            if c.is_control() {
                f.write_str("?")?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        f.write_str("…")
    }
}

impl fmt::Debug for RedactedToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::redact_token;

    #[test]
    fn shows_a_short_prefix_only() {
        let token = "9f0c1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f";
        let shown = redact_token(token).to_string();
        assert_eq!(shown, "9f0c1a…");
        assert!(!shown.contains(&token[..8]));
        assert_eq!(redact_token("approval:o-1").to_string(), "app…");
        assert_eq!(redact_token("").to_string(), "…");
        assert_eq!(format!("{:?}", redact_token("abcdefgh")), "\"ab…\"");
    }

    #[test]
    fn multibyte_and_control_characters_are_safe() {
        assert_eq!(redact_token("ééééééééé").to_string(), "éé…");
        assert_eq!(redact_token("a\nbcdefgh").to_string(), "a?…");
    }
}
