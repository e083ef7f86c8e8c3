//! Durations of the retention flags (`--retention 7d`, `--idempotency-window 24h`): a whole
//! number and a unit (`ms`, `s`, `m`, `h`, `d`), or `off`.

use std::time::Duration;

/// A time window, or `None` for `off` (keep for ever).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window(pub Option<Duration>);

/// Why a window flag's value was refused (stable codes in [`WindowError::code`]).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WindowError {
    /// Not `off`, nor a number followed by a unit.
    #[error(
        "{0:?} is not a duration: write a whole number and a unit (ms, s, m, h or d), \
         e.g. 7d or 12h, or off"
    )]
    Malformed(String),
    /// Zero or too large.
    #[error("{0:?} is out of range: use at least 1 ms and at most 100 years, or off")]
    OutOfRange(String),
}

impl WindowError {
    /// The stable code of this error (clap prints the message; tests and callers that
    /// parse without clap match on the code).
    #[allow(dead_code)]
    pub fn code(&self) -> &'static str {
        match self {
            WindowError::Malformed(_) => "invalid_duration",
            WindowError::OutOfRange(_) => "duration_out_of_range",
        }
    }
}

/// Parse `7d`, `12h`, `30m`, `45s`, `500ms` or `off`.
pub fn parse_window(text: &str) -> Result<Window, WindowError> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("off") {
        return Ok(Window(None));
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| WindowError::Malformed(text.to_owned()))?;
    let unit_ms: u64 = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(WindowError::Malformed(text.to_owned())),
    };
    const MAX_MS: u64 = 100 * 365 * 86_400_000;
    match n.checked_mul(unit_ms) {
        Some(ms) if (1..=MAX_MS).contains(&ms) => Ok(Window(Some(Duration::from_millis(ms)))),
        _ => Err(WindowError::OutOfRange(text.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_off() {
        let d = |ms| Ok(Window(Some(Duration::from_millis(ms))));
        assert_eq!(parse_window("7d"), d(7 * 86_400_000));
        assert_eq!(parse_window("24h"), d(86_400_000));
        assert_eq!(parse_window("30m"), d(1_800_000));
        assert_eq!(parse_window("45s"), d(45_000));
        assert_eq!(parse_window("500ms"), d(500));
        assert_eq!(parse_window("off"), Ok(Window(None)));
        for bad in ["", "7", "d", "7w", "-1h", "1.5h"] {
            let e = parse_window(bad).unwrap_err();
            assert_eq!(e.code(), "invalid_duration", "{bad}");
        }
        assert_eq!(
            parse_window("0s").unwrap_err().code(),
            "duration_out_of_range"
        );
        assert_eq!(
            parse_window("99999999999999d").unwrap_err().code(),
            "duration_out_of_range"
        );
    }
}
