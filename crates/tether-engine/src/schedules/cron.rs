//! A schedule's cron expression read in its time zone: parsed once when the schedule is
//! created (a bad expression or zone is refused then, saying what to fix), and asked for the
//! tick instants the store keeps as ms since the Unix epoch.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};
use croner::Cron;

/// A cron expression in a time zone.
#[derive(Clone, Debug)]
pub(crate) struct CronTicks {
    cron: Cron,
    tz: Tz,
}

impl CronTicks {
    /// Read `expr` (5 fields `min hour day-of-month month day-of-week`, or 6 with seconds
    /// first, or 7 with a year last) in the IANA zone `tz`; the error says what to fix.
    pub(crate) fn parse(expr: &str, tz: &str) -> Result<CronTicks, String> {
        let zone: Tz = tz.parse().map_err(|_| {
            format!(
                "unknown time zone {tz:?}: use an IANA zone name such as \"UTC\", \
                 \"Europe/Paris\" or \"America/New_York\""
            )
        })?;
        let fields = expr.split_whitespace().count();
        if !(5..=7).contains(&fields) {
            return Err(format!(
                "cron expression {expr:?} has {fields} fields; write 5 (minute hour \
                 day-of-month month day-of-week), or 6 with seconds first (\"*/10 * * * * *\": \
                 every 10 seconds)"
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(expr)
            .map_err(|e| {
                format!(
                    "cron expression {expr:?} is not valid: {e}; write 5 fields (minute hour \
                     day-of-month month day-of-week) or 6 with seconds first"
                )
            })?;
        Ok(CronTicks { cron, tz: zone })
    }

    /// The first tick strictly after `after_ms`; `None` if there is none (a year-bound
    /// expression whose last instant has passed).
    pub(crate) fn next_after(&self, after_ms: u64) -> Option<u64> {
        // Ticks are whole seconds: the first one after `after_ms` is the first one after its
        // second.
        let at = self.at(after_ms - after_ms % 1_000)?;
        let next = self.cron.find_next_occurrence(&at, false).ok()?;
        to_ms(&next).filter(|t| *t > after_ms)
    }

    /// The last tick strictly before `before_ms`, if any.
    pub(crate) fn last_before(&self, before_ms: u64) -> Option<u64> {
        // Ticks are whole seconds: with a fraction, `before_ms`'s own second is before it.
        let second = before_ms - before_ms % 1_000;
        let at = self.at(second)?;
        let prev = self
            .cron
            .find_previous_occurrence(&at, second != before_ms)
            .ok()?;
        to_ms(&prev).filter(|t| *t < before_ms)
    }

    fn at(&self, ms: u64) -> Option<DateTime<Tz>> {
        let ms = i64::try_from(ms).ok()?;
        let utc = Utc.timestamp_millis_opt(ms).single()?;
        Some(utc.with_timezone(&self.tz))
    }
}

fn to_ms<Z: TimeZone>(t: &DateTime<Z>) -> Option<u64> {
    u64::try_from(t.timestamp_millis()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2025-01-01T00:00:00Z.
    const JAN1: u64 = 1_735_689_600_000;

    #[test]
    fn seconds_are_optional() {
        let every_second = CronTicks::parse("*/1 * * * * *", "UTC").unwrap();
        assert_eq!(every_second.next_after(JAN1), Some(JAN1 + 1_000));
        assert_eq!(every_second.next_after(JAN1 + 1), Some(JAN1 + 1_000));
        assert_eq!(every_second.next_after(JAN1 + 999), Some(JAN1 + 1_000));
        assert_eq!(every_second.last_before(JAN1 + 1_500), Some(JAN1 + 1_000));
        assert_eq!(every_second.last_before(JAN1 + 1_000), Some(JAN1));
        let every_ten = CronTicks::parse("*/10 * * * * *", "UTC").unwrap();
        assert_eq!(every_ten.next_after(JAN1 + 1), Some(JAN1 + 10_000));
        assert_eq!(every_ten.last_before(JAN1 + 25_000), Some(JAN1 + 20_000));
        let every_minute = CronTicks::parse("* * * * *", "UTC").unwrap();
        assert_eq!(every_minute.next_after(JAN1), Some(JAN1 + 60_000));
    }

    #[test]
    fn the_zone_moves_the_ticks() {
        let nine = CronTicks::parse("0 9 * * *", "Europe/Paris").unwrap();
        // 09:00 in Paris is 08:00 UTC in January.
        assert_eq!(nine.next_after(JAN1), Some(JAN1 + 8 * 3_600_000));
    }

    #[test]
    fn bad_expressions_and_zones_say_what_to_fix() {
        let e = CronTicks::parse("* * *", "UTC").unwrap_err();
        assert!(e.contains("has 3 fields"), "{e}");
        let e = CronTicks::parse("61 * * * *", "UTC").unwrap_err();
        assert!(e.contains("is not valid"), "{e}");
        let e = CronTicks::parse("* * * * *", "Mars/Olympus").unwrap_err();
        assert!(e.contains("unknown time zone"), "{e}");
    }
}
