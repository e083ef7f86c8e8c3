//! A histogram with fixed buckets updated with atomics only, exposed in the OpenMetrics
//! text format (see the module above).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// How many observations a histogram has and their sum (seconds or ops).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HistogramSummary {
    /// Observations.
    pub count: u64,
    /// Their sum, in the histogram's unit.
    pub sum: f64,
}

/// A histogram with fixed buckets updated with atomics only (`prometheus_client`'s own
/// histogram takes a lock per observation). Values are kept as integers in a small unit
/// (nanoseconds for durations), so the sum is exact and needs no compare-and-swap loop.
#[derive(Clone, Debug)]
pub(crate) struct AtomicHistogram {
    inner: Arc<HistogramInner>,
}

#[derive(Debug)]
struct HistogramInner {
    /// Upper bounds in the exposed unit, ascending (`+Inf` implied).
    bounds: Vec<f64>,
    /// The same bounds in integer units.
    unit_bounds: Vec<u64>,
    /// One per bound plus the `+Inf` bucket; not cumulative.
    buckets: Vec<AtomicU64>,
    /// Sum of the observations, in integer units.
    sum_units: AtomicU64,
    /// Exposed unit per integer unit (1e-9 for nanoseconds).
    scale: f64,
}

impl AtomicHistogram {
    /// A histogram over `bounds` (exposed unit) of values recorded in units of `scale`.
    pub(super) fn new(bounds: &[f64], scale: f64) -> AtomicHistogram {
        let unit_bounds = bounds.iter().map(|b| (b / scale).round() as u64).collect();
        let buckets = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        AtomicHistogram {
            inner: Arc::new(HistogramInner {
                bounds: bounds.to_vec(),
                unit_bounds,
                buckets,
                sum_units: AtomicU64::new(0),
                scale,
            }),
        }
    }

    /// A latency histogram in seconds, recorded in nanoseconds.
    pub(super) fn seconds() -> AtomicHistogram {
        AtomicHistogram::new(&super::SECONDS_BOUNDS, 1e-9)
    }

    pub(super) fn observe_duration(&self, d: Duration) {
        self.observe_units(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    pub(super) fn observe_units(&self, v: u64) {
        let i = self.inner.unit_bounds.partition_point(|b| *b < v);
        self.inner.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.inner.sum_units.fetch_add(v, Ordering::Relaxed);
    }

    pub(super) fn summary(&self) -> HistogramSummary {
        HistogramSummary {
            count: self
                .inner
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .sum(),
            sum: self.inner.sum_units.load(Ordering::Relaxed) as f64 * self.inner.scale,
        }
    }
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), fmt::Error> {
        let inner = &self.inner;
        let mut buckets = Vec::with_capacity(inner.buckets.len());
        let mut count = 0;
        for (i, b) in inner.buckets.iter().enumerate() {
            let n = b.load(Ordering::Relaxed);
            count += n;
            let bound = inner.bounds.get(i).copied().unwrap_or(f64::INFINITY);
            buckets.push((bound, n));
        }
        let sum = inner.sum_units.load(Ordering::Relaxed) as f64 * inner.scale;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_and_sum() {
        let h = AtomicHistogram::seconds();
        h.observe_duration(Duration::from_micros(50)); // first bucket
        h.observe_duration(Duration::from_micros(100)); // on the bound: first bucket
        h.observe_duration(Duration::from_millis(3)); // le 0.005
        h.observe_duration(Duration::from_secs(60)); // +Inf
        let s = h.summary();
        assert_eq!(s.count, 4);
        assert!((s.sum - 60.003_15).abs() < 1e-9, "{}", s.sum);
        let counts: Vec<u64> = h
            .inner
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        assert_eq!(counts[0], 2);
        assert_eq!(counts[5], 1);
        assert_eq!(counts[16], 1);
    }
}
