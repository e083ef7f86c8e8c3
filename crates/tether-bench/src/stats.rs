//! Percentiles and means over measured durations.

use std::time::Duration;

/// Milliseconds with three decimals.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// The `p`-th percentile (0..=100) of `samples` in ms (nearest rank).
pub fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort();
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    ms(samples[rank.clamp(1, samples.len()) - 1])
}

/// Mean of `samples` in ms.
pub fn mean(samples: &[Duration]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let total: Duration = samples.iter().sum();
    ms(total / samples.len() as u32)
}

/// `count` per second over `took`, rounded (0 when nothing was timed).
pub fn per_s(count: usize, took: Duration) -> f64 {
    let secs = took.as_secs_f64();
    if secs > 0.0 {
        (count as f64 / secs).round()
    } else {
        0.0
    }
}

/// The share of `phase` the writer spent committing: `commit_s` (the commits' summed
/// durations) over the phase, to two decimals (0 when nothing was timed). The writer commits
/// one batch at a time, so near 1.0 it is what limits the rate.
pub fn writer_busy(commit_s: f64, phase: Duration) -> f64 {
    let secs = phase.as_secs_f64();
    if secs > 0.0 {
        (commit_s / secs * 100.0).round() / 100.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&mut v, 50.0), 50.0);
        assert_eq!(percentile(&mut v, 99.0), 99.0);
        assert_eq!(percentile(&mut v, 100.0), 100.0);
        assert_eq!(mean(&v[..4]), 2.5);
    }

    #[test]
    fn rates_round_and_never_divide_by_zero() {
        assert_eq!(per_s(1000, Duration::from_millis(250)), 4000.0);
        assert_eq!(per_s(3, Duration::ZERO), 0.0);
    }
}
