//! Percentiles and means over measured durations.

use std::time::Duration;

/// Milliseconds with three decimals.
pub(crate) fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// The `p`-th percentile (0..=100) of `samples` in ms (nearest rank).
pub(crate) fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort();
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    ms(samples[rank.clamp(1, samples.len()) - 1])
}

/// Mean of `samples` in ms.
pub(crate) fn mean(samples: &[Duration]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let total: Duration = samples.iter().sum();
    ms(total / samples.len() as u32)
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
}
