//! The engine's metrics: one registry per [`crate::Engine`] (no global state, so engines in one
//! process, e.g. parallel tests, never mix), rendered in the Prometheus / OpenMetrics text
//! format by [`crate::Engine::render_metrics`] (the server's `GET /metrics`) and readable as
//! numbers through [`Metrics::snapshot`] (tests, `tether bench`).
//!
//! Every metric is named `tether_…`:
//!
//! | metric | type | what |
//! | --- | --- | --- |
//! | `tether_runs{workflow,status}` | gauge | runs in the store, counted at scrape time |
//! | `tether_resumes_accepted_total` | counter | resumes accepted (idempotent retries included) |
//! | `tether_resumes_refused_total{reason}` | counter | refused resumes, by error code |
//! | `tether_resume_wake_seconds` | histogram | resume accepted → payload applied by its live run |
//! | `tether_journal_commit_seconds` | histogram | one group commit's store transaction |
//! | `tether_journal_commit_ops` | histogram | write ops per group commit |
//! | `tether_live_runs` | gauge | runs held in memory (read at scrape time) |
//! | `tether_live_run_cache_hits_total` | counter | resumed payloads whose run was live in memory |
//! | `tether_live_run_cache_misses_total` | counter | ... whose run had to be rebuilt (replay) |
//! | `tether_lease_takeovers_total` | counter | runs this node claimed from another node's lease |
//! | `tether_run_count_errors_total` | counter | scrapes whose `tether_runs` query failed |
//! | `tether_webhook_rejected_total{reason}` | counter | webhook requests refused by their verifier |
//! | `tether_runs_deleted_total` | counter | ended runs deleted by retention (threads included) |
//! | `tether_idempotency_keys_deleted_total` | counter | idempotency keys (and kept payloads) past their window |
//! | `tether_schedule_ticks_total{outcome}` | counter | schedule ticks this node fired: `started` (a run), `skipped` (no run: overlap, catch-up, run exists), `lost` (another node fired it, or the schedule changed) |
//!
//! The hot path only touches atomics: counters are created up front (refusal reasons included)
//! and the histograms are lock-free ([`AtomicHistogram`]).

use std::fmt;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use tether_store::RunCount;

mod histogram;

use histogram::AtomicHistogram;
pub use histogram::HistogramSummary;

/// The `Content-Type` of [`crate::Engine::render_metrics`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The refusal reasons counted without a lock: the engine's error codes a resume can end with,
/// plus `invalid_json` (refused by the HTTP layer before the engine sees it).
const REASONS: [&str; 10] = [
    "hook_not_found",
    "run_finished",
    "invalid_payload",
    "invalid_json",
    "payload_too_large",
    "hook_definition_missing",
    "storage_unavailable",
    "storage_full",
    "storage_read_only",
    "shutting_down",
];

/// Why a verified webhook's request was refused (the server's error code without `webhook_`).
pub const WEBHOOK_REJECT_REASONS: [&str; 4] = [
    "signature_missing",
    "signature_invalid",
    "timestamp_stale",
    "secret_missing",
];

/// Upper bounds of the latency histograms, in seconds (100 µs to 10 s).
const SECONDS_BOUNDS: [f64; 16] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Upper bounds of the batch size histogram, in ops.
const OPS_BOUNDS: [f64; 11] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

/// What a schedule tick this node fired came to.
const TICK_OUTCOMES: [&str; 3] = ["started", "skipped", "lost"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: String,
}

/// What a scrape reads from the store: the run counts and the queue depths.
#[derive(Clone, Debug, Default)]
pub(crate) struct StoreCounts {
    runs: Vec<RunCount>,
    queues: Vec<tether_store::QueueDepth>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    workflow: String,
    status: String,
}

/// The metrics of one engine. Cheap to update from any task.
pub struct Metrics {
    registry: Registry,
    resumes_accepted: Counter,
    resumes_refused: Family<ReasonLabels, Counter>,
    /// Pre-created children of `resumes_refused` for [`REASONS`] (same order).
    refused_known: Vec<Counter>,
    resume_wake: AtomicHistogram,
    commit_seconds: AtomicHistogram,
    commit_ops: AtomicHistogram,
    live_runs: Gauge,
    cache_hits: Counter,
    cache_misses: Counter,
    lease_takeovers: Counter,
    run_count_errors: Counter,
    webhook_rejected: Family<ReasonLabels, Counter>,
    runs_deleted: Counter,
    keys_deleted: Counter,
    schedule_ticks: Family<OutcomeLabels, Counter>,
    /// The last run counts read and when (scrapes within `run_count_max_age` reuse them; one
    /// scrape at a time queries the store).
    run_counts: tokio::sync::Mutex<Option<(Instant, StoreCounts)>>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("snapshot", &self.snapshot())
            .finish()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let resumes_accepted = Counter::default();
        registry.register(
            "tether_resumes_accepted",
            "Hook resumes accepted (the payload is durably stored; idempotent retries included)",
            resumes_accepted.clone(),
        );
        let resumes_refused = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "tether_resumes_refused",
            "Hook resumes refused, by reason (the API's error code)",
            resumes_refused.clone(),
        );
        let refused_known = REASONS
            .iter()
            .map(|r| {
                resumes_refused
                    .get_or_create(&ReasonLabels {
                        reason: (*r).to_owned(),
                    })
                    .clone()
            })
            .collect();
        let resume_wake = AtomicHistogram::seconds();
        registry.register_with_unit(
            "tether_resume_wake",
            "From a resume's group commit to its run's actor having applied the payload \
             (the workflow ran until it waits again); resumes whose run is live on this node",
            Unit::Seconds,
            resume_wake.clone(),
        );
        let commit_seconds = AtomicHistogram::seconds();
        registry.register_with_unit(
            "tether_journal_commit",
            "Duration of one group commit (one store transaction, one fsync)",
            Unit::Seconds,
            commit_seconds.clone(),
        );
        let commit_ops = AtomicHistogram::new(&OPS_BOUNDS, 1.0);
        registry.register(
            "tether_journal_commit_ops",
            "Write ops per group commit",
            commit_ops.clone(),
        );
        let live_runs = Gauge::default();
        registry.register(
            "tether_live_runs",
            "Runs held in memory by this node (the live-run cache)",
            live_runs.clone(),
        );
        let cache_hits = Counter::default();
        registry.register(
            "tether_live_run_cache_hits",
            "Resumed payloads whose run was live in memory",
            cache_hits.clone(),
        );
        let cache_misses = Counter::default();
        registry.register(
            "tether_live_run_cache_misses",
            "Resumed payloads whose run was not live: it was rebuilt by replay",
            cache_misses.clone(),
        );
        let lease_takeovers = Counter::default();
        registry.register(
            "tether_lease_takeovers",
            "Runs this node claimed while another node's lease was recorded on them",
            lease_takeovers.clone(),
        );
        let run_count_errors = Counter::default();
        registry.register(
            "tether_run_count_errors",
            "Scrapes whose count of runs by workflow and status failed (tether_runs omitted)",
            run_count_errors.clone(),
        );
        let webhook_rejected = Family::<ReasonLabels, Counter>::default();
        for r in WEBHOOK_REJECT_REASONS {
            drop(webhook_rejected.get_or_create(&ReasonLabels {
                reason: r.to_owned(),
            }));
        }
        registry.register(
            "tether_webhook_rejected",
            "Webhook requests refused by their verifier (never stored), by reason",
            webhook_rejected.clone(),
        );
        let runs_deleted = Counter::default();
        registry.register(
            "tether_runs_deleted",
            "Ended runs deleted by retention (--retention), hook threads included",
            runs_deleted.clone(),
        );
        let keys_deleted = Counter::default();
        registry.register(
            "tether_idempotency_keys_deleted",
            "Idempotency keys (and payloads kept for no hook) forgotten at the end of their window (--idempotency-window)",
            keys_deleted.clone(),
        );
        let schedule_ticks = Family::<OutcomeLabels, Counter>::default();
        for o in TICK_OUTCOMES {
            drop(schedule_ticks.get_or_create(&OutcomeLabels {
                outcome: o.to_owned(),
            }));
        }
        registry.register(
            "tether_schedule_ticks",
            "Schedule ticks this node fired, by outcome: started (a run), skipped (no run), lost (another node fired it first)",
            schedule_ticks.clone(),
        );
        Metrics {
            registry,
            schedule_ticks,
            runs_deleted,
            keys_deleted,
            resumes_accepted,
            resumes_refused,
            refused_known,
            resume_wake,
            commit_seconds,
            commit_ops,
            live_runs,
            cache_hits,
            cache_misses,
            lease_takeovers,
            run_count_errors,
            webhook_rejected,
            run_counts: tokio::sync::Mutex::new(None),
        }
    }

    /// A resume was accepted.
    pub fn resume_accepted(&self) {
        self.resumes_accepted.inc();
    }

    /// A resume was refused with the error code `reason` (e.g. `hook_not_found`). The server
    /// calls this for refusals it makes before the engine (`invalid_json`, `payload_too_large`).
    pub fn resume_refused(&self, reason: &str) {
        match REASONS.iter().position(|r| *r == reason) {
            Some(i) => {
                self.refused_known[i].inc();
            }
            None => {
                self.resumes_refused
                    .get_or_create(&ReasonLabels {
                        reason: reason.to_owned(),
                    })
                    .inc();
            }
        }
    }

    /// A verified webhook refused a request, for `reason` (one of [`WEBHOOK_REJECT_REASONS`]).
    pub fn webhook_rejected(&self, reason: &str) {
        self.webhook_rejected
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// A live run applied a resumed payload `elapsed` after its commit.
    pub(crate) fn resume_woke(&self, elapsed: Duration) {
        self.resume_wake.observe_duration(elapsed);
    }

    /// One group commit of `ops` ops took `elapsed`.
    pub(crate) fn commit_done(&self, ops: usize, elapsed: Duration) {
        self.commit_seconds.observe_duration(elapsed);
        self.commit_ops.observe_units(ops as u64);
    }

    /// A resumed payload went to a live run (`hit`) or had to start one. Only resumes count
    /// (`resume`): a run's own writes always find it live, a new run never does.
    pub(crate) fn live_lookup(&self, resume: bool, hit: bool) {
        if !resume {
            return;
        }
        if hit {
            self.cache_hits.inc();
        } else {
            self.cache_misses.inc();
        }
    }

    /// This node claimed a run another node had a lease on.
    pub(crate) fn lease_taken_over(&self) {
        self.lease_takeovers.inc();
    }

    /// Retention deleted `runs` ended runs and forgot `keys` idempotency keys.
    pub(crate) fn retention_done(&self, runs: u64, keys: u64) {
        self.runs_deleted.inc_by(runs);
        self.keys_deleted.inc_by(keys);
    }

    /// A schedule tick this node fired came to `outcome` (one of `started`, `skipped`,
    /// `lost`).
    pub(crate) fn schedule_tick(&self, outcome: &'static str) {
        self.schedule_ticks
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// The numbers as they are now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let mut refused: Vec<(String, u64)> = REASONS
            .iter()
            .zip(&self.refused_known)
            .map(|(r, c)| ((*r).to_owned(), c.get()))
            .filter(|(_, n)| *n > 0)
            .collect();
        refused.sort();
        MetricsSnapshot {
            resumes_accepted: self.resumes_accepted.get(),
            resumes_refused: refused,
            resume_wake: self.resume_wake.summary(),
            commits: self.commit_seconds.summary(),
            committed_ops: self.commit_ops.summary().sum as u64,
            live_run_cache_hits: self.cache_hits.get(),
            live_run_cache_misses: self.cache_misses.get(),
            lease_takeovers: self.lease_takeovers.get(),
            runs_deleted: self.runs_deleted.get(),
            idempotency_keys_deleted: self.keys_deleted.get(),
        }
    }

    /// The text exposition: every metric, with `live_runs` and the run counts (`None` when
    /// they could not be read: `tether_runs` is left out and the error counter moves).
    pub(crate) fn render(
        &self,
        live_runs: usize,
        counts: Option<&StoreCounts>,
    ) -> Result<String, fmt::Error> {
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        self.live_runs
            .set(i64::try_from(live_runs).unwrap_or(i64::MAX));
        let mut runs_registry = Registry::default();
        match counts {
            Some(counts) => {
                let runs = Family::<RunLabels, Gauge>::default();
                for c in &counts.runs {
                    let labels = RunLabels {
                        workflow: c.workflow.clone(),
                        status: c.status.as_str().to_owned(),
                    };
                    runs.get_or_create(&labels)
                        .set(i64::try_from(c.count).unwrap_or(i64::MAX));
                }
                runs_registry.register(
                    "tether_runs",
                    "Runs in the store by workflow and status (hook threads included)",
                    runs,
                );
                let depth = Family::<QueueLabels, Gauge>::default();
                for q in &counts.queues {
                    let labels = QueueLabels {
                        queue: q.queue.clone(),
                    };
                    depth
                        .get_or_create(&labels)
                        .set(i64::try_from(q.waiting).unwrap_or(i64::MAX));
                }
                runs_registry.register(
                    "tether_queue_depth",
                    "Unfinished runs per task queue not admitted yet (waiting for a slot, the rate \
                     limit or a node serving the queue)",
                    depth,
                );
            }
            None => {
                self.run_count_errors.inc();
            }
        }
        let mut out = String::new();
        encode_registry(&mut out, &runs_registry)?;
        encode_registry(&mut out, &self.registry)?;
        encode_eof(&mut out)?;
        Ok(out)
    }
}

impl crate::Engine {
    /// This engine's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Every metric in the text format (`Content-Type`: [`CONTENT_TYPE`]). Reads the run
    /// counts from the store (one grouped query, reused for
    /// [`crate::EngineConfig::run_count_max_age`]); if that fails, `tether_runs` is left out,
    /// `tether_run_count_errors_total` moves and the rest is still given.
    pub async fn render_metrics(&self) -> String {
        let max_age = self.inner.config.run_count_max_age;
        let counts = {
            let mut cached = self.inner.metrics.run_counts.lock().await;
            match &*cached {
                Some((at, counts)) if at.elapsed() < max_age => Some(counts.clone()),
                _ => match self.read_counts().await {
                    Ok(counts) => {
                        *cached = Some((Instant::now(), counts.clone()));
                        Some(counts)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not count runs for the metrics");
                        None
                    }
                },
            }
        };
        // Writing to a String cannot fail; an error here would be a bug in the encoder.
        self.inner
            .metrics
            .render(self.live_runs(), counts.as_ref())
            .unwrap_or_else(|_| "# EOF\n".to_owned())
    }
}

impl crate::Engine {
    /// The run counts and queue depths (`tether_queue_depth`), from the store.
    async fn read_counts(&self) -> Result<StoreCounts, tether_store::StoreError> {
        Ok(StoreCounts {
            runs: self.inner.store.count_runs().await?,
            queues: self.inner.store.queue_depths().await?,
        })
    }
}

/// Whether committed entries handed to a run are a resumed payload (`HookReceived`).
pub(crate) fn is_resume(events: &[tether_core::Event]) -> bool {
    matches!(
        events.first().map(|e| &e.body),
        Some(tether_core::EventBody::HookReceived { .. })
    )
}

/// The span a live run applies one delivered entry under: for a resumed payload,
/// `apply_resume` as a child of the resume request's span (so a trace goes from the HTTP
/// request through the commit to the workflow seeing the payload); none otherwise.
pub(crate) fn apply_span(
    resumed: bool,
    parent: &tracing::Span,
    run_id: &str,
    seq: u64,
) -> tracing::Span {
    if resumed {
        tracing::info_span!(parent: parent, "apply_resume", run_id, seq)
    } else {
        tracing::Span::none()
    }
}

/// The engine's counters as numbers (see [`Metrics::snapshot`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsSnapshot {
    /// Resumes accepted.
    pub resumes_accepted: u64,
    /// Resumes refused, by reason (only reasons seen), sorted.
    pub resumes_refused: Vec<(String, u64)>,
    /// Resume-to-wake latencies observed.
    pub resume_wake: HistogramSummary,
    /// Group commits and their total time.
    pub commits: HistogramSummary,
    /// Write ops committed, all group commits together.
    pub committed_ops: u64,
    /// Live-run cache hits.
    pub live_run_cache_hits: u64,
    /// Live-run cache misses.
    pub live_run_cache_misses: u64,
    /// Runs claimed from another node's lease.
    pub lease_takeovers: u64,
    /// Ended runs deleted by retention.
    pub runs_deleted: u64,
    /// Idempotency keys forgotten at the end of their window.
    pub idempotency_keys_deleted: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_metric_with_the_tether_prefix() {
        let m = Metrics::new();
        m.resume_accepted();
        m.resume_refused("hook_not_found");
        m.resume_refused("hook_not_found");
        m.resume_refused("something_new");
        m.commit_done(3, Duration::from_millis(2));
        m.webhook_rejected("signature_invalid");
        m.schedule_tick("started");
        let counts = StoreCounts {
            runs: vec![RunCount {
                workflow: "approval".into(),
                status: tether_core::RunStatus::Suspended,
                count: 7,
            }],
            queues: vec![tether_store::QueueDepth {
                queue: "b".into(),
                waiting: 3,
            }],
        };
        let text = m.render(5, Some(&counts)).expect("render");
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("tether_"), "{line}");
        }
        for expected in [
            "tether_runs{workflow=\"approval\",status=\"suspended\"} 7",
            "tether_queue_depth{queue=\"b\"} 3",
            "tether_resumes_accepted_total 1",
            "tether_resumes_refused_total{reason=\"hook_not_found\"} 2",
            "tether_resumes_refused_total{reason=\"something_new\"} 1",
            "tether_resumes_refused_total{reason=\"invalid_json\"} 0",
            "tether_journal_commit_ops_count 1",
            "tether_journal_commit_ops_sum 3.0",
            "tether_journal_commit_seconds_bucket{le=\"0.0025\"} 1",
            "tether_journal_commit_seconds_bucket{le=\"+Inf\"} 1",
            "tether_live_runs 5",
            "tether_webhook_rejected_total{reason=\"signature_invalid\"} 1",
            "tether_webhook_rejected_total{reason=\"timestamp_stale\"} 0",
            "tether_schedule_ticks_total{outcome=\"started\"} 1",
            "tether_schedule_ticks_total{outcome=\"lost\"} 0",
        ] {
            assert!(text.contains(expected), "{expected} missing in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(text.matches("# EOF").count(), 1);

        let without = m.render(0, None).expect("render");
        assert!(!without.contains("tether_runs{"));
        assert!(without.contains("tether_run_count_errors_total 1"));
    }
}
