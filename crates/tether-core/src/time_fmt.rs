//! Journal times (milliseconds since the Unix epoch) as RFC 3339 text in UTC, for the API and
//! the CLI. Pure arithmetic, defined for every `u64` (a date past year 9999 prints more digits
//! rather than failing: stored times may come from a damaged database).

/// `2024-05-01T12:30:00.250Z`: RFC 3339 in UTC with milliseconds.
pub fn rfc3339_ms(ms: u64) -> String {
    let (date, sod) = split(ms);
    format!("{date}T{}.{:03}Z", hms(sod), ms % 1000)
}

/// `2024-05-01T12:30:00Z`: RFC 3339 in UTC to the second.
pub fn rfc3339_s(ms: u64) -> String {
    let (date, sod) = split(ms);
    format!("{date}T{}Z", hms(sod))
}

/// The date (`YYYY-MM-DD`) and the second of that day.
fn split(ms: u64) -> (String, u64) {
    let secs = ms / 1000;
    let (y, m, d) = civil_from_days(secs / 86_400);
    (format!("{y:04}-{m:02}-{d:02}"), secs % 86_400)
}

fn hms(sod: u64) -> String {
    format!("{:02}:{:02}:{:02}", sod / 3600, sod % 3600 / 60, sod % 60)
}

/// (year, month, day) of the day `days` after 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_millis() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_782_400_001), "2000-02-29T00:00:00.001Z");
        assert_eq!(rfc3339_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339_ms(1_735_689_599_999), "2024-12-31T23:59:59.999Z");
        assert!(!rfc3339_ms(u64::MAX).is_empty());
    }

    #[test]
    fn formats_to_the_second() {
        assert_eq!(rfc3339_s(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_s(951_782_400_001), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_s(1_700_000_000_123), "2023-11-14T22:13:20Z");
        assert!(!rfc3339_s(u64::MAX).is_empty());
    }
}
