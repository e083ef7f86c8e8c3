//! The task queue options of `serve`: `--queues a,b`, `--queue-limit a=10`,
//! `--queue-rate a=5/s`, parsed into the engine's settings.

use std::collections::BTreeMap;

use tether_engine::{QueueLimit, QueueRate};

/// One queue name (see `tether_store::check_queue_name`).
pub(super) fn parse_queue(s: &str) -> Result<String, String> {
    tether_store::check_queue_name(s)?;
    Ok(s.to_owned())
}

/// `NAME=N`: at most N admitted runs of the queue at once (N ≥ 1).
pub(super) fn parse_limit(s: &str) -> Result<(String, u64), String> {
    let (name, n) = s
        .split_once('=')
        .ok_or_else(|| format!("expected QUEUE=N, e.g. emails=10 (got {s:?})"))?;
    let n: u64 = n
        .parse()
        .map_err(|_| format!("the limit of {name:?} must be a whole number (got {n:?})"))?;
    if n == 0 {
        return Err(format!("the limit of {name:?} must be at least 1"));
    }
    Ok((parse_queue(name)?, n))
}

/// `NAME=N/PERIOD`: at most N admissions per period; the period is `s`, `m`, `h` or a
/// number of milliseconds followed by `ms` (`5/s`, `100/m`, `3/500ms`).
pub(super) fn parse_rate(s: &str) -> Result<(String, QueueRate), String> {
    let bad = || format!("expected QUEUE=N/PERIOD, e.g. emails=5/s or emails=3/500ms (got {s:?})");
    let (name, rate) = s.split_once('=').ok_or_else(bad)?;
    let (count, period) = rate.split_once('/').ok_or_else(bad)?;
    let count: u64 = count.parse().map_err(|_| bad())?;
    let per_ms = match period {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        ms => ms
            .strip_suffix("ms")
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(bad)?,
    };
    if count == 0 || per_ms == 0 {
        return Err(format!(
            "the rate of {name:?} needs at least 1 per at least 1 ms"
        ));
    }
    Ok((parse_queue(name)?, QueueRate { count, per_ms }))
}

/// The limits per queue the flags give (the last flag for a queue wins).
pub(super) fn limits(
    concurrency: &[(String, u64)],
    rates: &[(String, QueueRate)],
) -> BTreeMap<String, QueueLimit> {
    let mut limits: BTreeMap<String, QueueLimit> = BTreeMap::new();
    for (queue, n) in concurrency {
        limits.entry(queue.clone()).or_default().concurrency = Some(*n);
    }
    for (queue, rate) in rates {
        limits.entry(queue.clone()).or_default().rate = Some(*rate);
    }
    limits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_limit("emails=10"), Ok(("emails".into(), 10)));
        assert!(parse_limit("emails=0").is_err());
        assert!(parse_limit("emails").is_err());
        assert!(parse_limit("bad name=1").is_err());
        assert_eq!(
            parse_rate("a=5/s"),
            Ok((
                "a".into(),
                QueueRate {
                    count: 5,
                    per_ms: 1000
                }
            ))
        );
        assert_eq!(
            parse_rate("a=3/500ms"),
            Ok((
                "a".into(),
                QueueRate {
                    count: 3,
                    per_ms: 500
                }
            ))
        );
        assert!(parse_rate("a=5").is_err());
        assert!(parse_rate("a=0/s").is_err());
        let both = limits(
            &[("a".into(), 2)],
            &[(
                "a".into(),
                QueueRate {
                    count: 1,
                    per_ms: 1,
                },
            )],
        );
        assert_eq!(both["a"].concurrency, Some(2));
        assert!(both["a"].rate.is_some());
    }
}
