//! Engine settings.

use std::collections::BTreeMap;
use std::time::Duration;

pub use tether_store::{QueueLimit, QueueRate, DEFAULT_QUEUE};

use crate::clock::Clock;

/// How long idempotency keys are remembered unless configured otherwise: 24 hours.
pub const DEFAULT_IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Settings of an [`crate::Engine`]. `Default` gives the documented defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    /// Most runs kept live in memory (default 10,000). Past it, the least recently active
    /// suspended runs are evicted; they are rebuilt by replay when an event arrives.
    pub max_live_runs: usize,
    /// Most write operations in one group commit (default 512).
    pub max_batch: usize,
    /// Largest accepted payload or input, in bytes of JSON (default 1 MiB).
    pub max_payload_bytes: usize,
    /// How often the engine looks for runs with due timers or unfinished work that are not
    /// live (default 200 ms). Live runs fire their own timers on time.
    pub poll_interval: Duration,
    /// Delay before a run whose storage write failed is rebuilt and retried (default 1 s).
    pub retry_delay: Duration,
    /// This process's id among the nodes sharing a store. `None` (the default) picks one:
    /// `local` on SQLite (one process per file, so a restarted process takes its runs back at
    /// once), a random id on shared backends.
    pub node_id: Option<String>,
    /// How long a node's claim on a run lasts without a heartbeat (default 10 s). Heartbeats
    /// go out every third of it; a node that stops beating loses its runs to others after this.
    pub lease: Duration,
    /// The base URL callers reach this server at, for webhook URLs (default
    /// `http://127.0.0.1:8080`; `tether dev` sets it to its own address or `--public-url`).
    pub public_url: Option<String>,
    /// How long the run counts of `GET /metrics` (`tether_runs`) are reused before the store
    /// is asked again (default 5 s; the query reads the whole `runs` table).
    pub run_count_max_age: Duration,
    /// Where the engine reads the time and waits for it (default: the system clock). A
    /// [`Clock::manual`] clock lets tests move time by hand: timers fire when it is moved
    /// past them, without real waiting (see [`crate::Engine::settle`]).
    pub clock: Clock,
    /// How long ended runs are kept (`--retention`). `None` (the default) keeps them for
    /// ever. With `Some(d)`, namespaces whose runs all ended more than `d` ago are deleted
    /// with everything of theirs (see `tether_store::retention`), in batches.
    pub retention: Option<Duration>,
    /// How long an idempotency key (of a start, resume, spawn or signal) is remembered
    /// (default 24 h, `--idempotency-window`); a retry after it is a new request. A payload
    /// kept by `resume_or_start` for a token no hook registered within it is dropped. `None`
    /// remembers keys for as long as their run is kept (a kept signal's key and a kept
    /// payload: for ever).
    pub idempotency_window: Option<Duration>,
    /// How often retention and the idempotency window are applied, at most (default 60 s;
    /// never less often than a quarter of the shorter of the two, so a short retention is
    /// kept to closely).
    pub retention_interval: Duration,
    /// How late a schedule's tick may fire and still count as on time (default 10 s). A
    /// tick later than this (no node was up to fire it) is *missed*: the schedule's
    /// `catch_up` policy runs the latest missed tick once or skips them all.
    pub schedule_grace: Duration,
    /// The task queues this node serves (`--queues`): it claims only runs (and hook threads)
    /// of these queues; a run of another queue started or resumed here is stored and run by a
    /// node that serves it. `None` (the default): every queue. The default queue is named
    /// [`DEFAULT_QUEUE`]; a list that leaves it out leaves runs started without a queue to
    /// other nodes.
    pub queues: Option<Vec<String>>,
    /// Limits per queue (`--queue-limit`, `--queue-rate`), applied cluster-wide when this node
    /// admits a run (its first claim): at most `concurrency` admitted runs of the queue that
    /// have not ended, at most `rate` admissions per period. Each admission is checked
    /// against the limits of the node making it: give every node the same limits.
    pub queue_limits: BTreeMap<String, QueueLimit>,
}

impl EngineConfig {
    /// The queues served and their limits, as a claim carries them.
    pub fn queue_policy(&self) -> tether_store::QueuePolicy {
        tether_store::QueuePolicy {
            serves: self.queues.as_ref().map(|q| q.iter().cloned().collect()),
            limits: self.queue_limits.clone(),
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_live_runs: 10_000,
            max_batch: 512,
            max_payload_bytes: 1024 * 1024,
            poll_interval: Duration::from_millis(200),
            retry_delay: Duration::from_secs(1),
            node_id: None,
            lease: Duration::from_secs(10),
            public_url: None,
            run_count_max_age: Duration::from_secs(5),
            clock: Clock::system(),
            retention: None,
            idempotency_window: Some(DEFAULT_IDEMPOTENCY_WINDOW),
            retention_interval: Duration::from_secs(60),
            schedule_grace: Duration::from_secs(10),
            queues: None,
            queue_limits: BTreeMap::new(),
        }
    }
}
