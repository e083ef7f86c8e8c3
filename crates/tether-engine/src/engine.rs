//! [`Engine`]: the public face of the runtime, and the shared state behind it (`Inner`), a
//! plain composition of handles with one job each: the writer (`writer.rs`), the live-run
//! cache (`live_runs.rs`), the runs being started (`new_runs.rs`), the waiters
//! (`waiters.rs`), the hook cache (`hook_cache.rs`), the webhook response hub
//! (`responses.rs`), the change notifications (`changes.rs`), the work in flight
//! (`activity.rs`), the metrics (`metrics.rs`) and the lifecycle flags (`lifecycle.rs`).
//! Feeding live runs is `delivery.rs`'s job.

use std::fmt;
use std::sync::{Arc, Weak};

use serde_json::Value;
use tether_core::{Environment, Registry};
use tether_store::{Store, WriteOp};
use tracing::debug;

use crate::activity::Activity;
use crate::background::{heartbeat_loop, listen_loop, poll_loop};
use crate::changes::Changes;
use crate::clock::Clock;
use crate::config::EngineConfig;
use crate::error::EngineError;
use crate::hook_cache::HookCache;
use crate::lifecycle::Lifecycle;
use crate::live_runs::LiveRuns;
use crate::new_runs::NewRuns;
use crate::responses::ResponseHub;
use crate::system_env::SystemEnvironment;
use crate::waiters::Waiters;
use crate::writer::{writer_loop, Writer};

/// The engine's shared state: what it runs on, and one handle per concern.
pub(crate) struct Inner {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The workflows and hook definitions.
    pub registry: Arc<Registry>,
    /// Time and randomness for the workflows.
    pub env: Arc<dyn Environment>,
    /// The settings.
    pub config: EngineConfig,
    /// The queues this node serves and their limits, as every claim carries them.
    pub queue_policy: Arc<tether_store::QueuePolicy>,
    /// This process's id among the nodes sharing the store.
    pub node_id: String,
    /// The store reports other processes' commits (several nodes may share it).
    pub shared_store: bool,
    /// The group-commit writer.
    pub writer: Writer,
    /// The runs live on this node.
    pub live: LiveRuns,
    /// Runs this node is starting (see `start.rs`).
    pub new_runs: NewRuns,
    /// Callers waiting for news of a run.
    pub waiters: Waiters,
    /// Hooks this node's commits created, by token.
    pub hooks: HookCache,
    /// Manual webhook requests waiting for their response.
    pub responses: ResponseHub,
    /// Change notifications for watchers.
    pub changes: Changes,
    /// The work in flight (see [`Engine::settle`]).
    pub activity: Arc<Activity>,
    /// This engine's metrics.
    pub metrics: crate::metrics::Metrics,
    /// Draining, stopping, and the background tasks.
    pub lifecycle: Lifecycle,
    /// The wake-up of the schedule ticker (`schedules/ticker.rs`).
    pub ticker: crate::schedules::Ticker,
    /// Itself, for the tasks it spawns.
    pub(crate) me: Weak<Inner>,
}

impl Inner {
    /// The engine's clock.
    #[inline]
    pub(crate) fn clock(&self) -> &Clock {
        &self.config.clock
    }

    /// The time by the engine's clock, ms since the Unix epoch.
    #[inline]
    pub(crate) fn now_ms(&self) -> u64 {
        self.config.clock.now_ms()
    }
}

/// Longest run id, token, signal id or idempotency key the engine looks up.
pub(crate) const MAX_ID_LEN: usize = 1024;

/// Whether an id from outside can name anything: not empty, not absurdly long, no NUL byte
/// (which no store can hold). Anything else is answered "not found" without touching storage.
pub(crate) fn plausible(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_LEN && !id.contains('\0')
}

/// The Tether runtime: starts runs, accepts hook payloads, and keeps every run moving.
/// Cheap to clone. Must be created inside a tokio runtime.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("backend", &self.inner.store.backend_name())
            .field("live_runs", &self.inner.live.len())
            .finish()
    }
}

impl Engine {
    /// Start an engine on `store` running the workflows of `registry`, and recover the runs
    /// the store says have work (unfinished steps, due timers).
    pub fn start(store: Arc<dyn Store>, registry: Registry, config: EngineConfig) -> Engine {
        let env = SystemEnvironment {
            public_url: config.public_url.clone(),
            clock: config.clock.clone(),
        };
        Self::start_with_env(store, registry, config, Arc::new(env))
    }

    /// [`Engine::start`] with another clock/randomness source for the workflows (tests). The
    /// engine's own times (journal entries, timer firing, leases) come from
    /// [`EngineConfig::clock`]; give `env` the same clock.
    pub fn start_with_env(
        store: Arc<dyn Store>,
        registry: Registry,
        config: EngineConfig,
        env: Arc<dyn Environment>,
    ) -> Engine {
        let activity = Arc::new(Activity::default());
        let (writer, writer_rx) = Writer::new(activity.clone());
        let node_id = config.node_id.clone().unwrap_or_else(|| {
            if store.backend_name() == "sqlite" {
                "local".to_string()
            } else {
                format!("node-{}", uuid::Uuid::new_v4().simple())
            }
        });
        let changes = store.subscribe();
        let inner = Arc::new_cyclic(|me| Inner {
            node_id,
            store,
            registry: Arc::new(registry),
            env,
            shared_store: changes.is_some(),
            writer,
            live: LiveRuns::new(config.max_live_runs),
            queue_policy: Arc::new(config.queue_policy()),
            config,
            new_runs: NewRuns::default(),
            waiters: Waiters::default(),
            hooks: HookCache::default(),
            responses: ResponseHub::default(),
            changes: Changes::default(),
            activity,
            metrics: crate::metrics::Metrics::new(),
            lifecycle: Lifecycle::default(),
            ticker: crate::schedules::Ticker::default(),
            me: me.clone(),
        });
        let tasks = &inner.lifecycle;
        tasks.keep(tokio::spawn(writer_loop(Arc::downgrade(&inner), writer_rx)));
        tasks.keep(tokio::spawn(poll_loop(Arc::downgrade(&inner))));
        tasks.keep(tokio::spawn(heartbeat_loop(Arc::downgrade(&inner))));
        // The ticker's first pass counts as work: `settle` waits for it to read the schedules.
        inner.ticker.poke(&inner.activity);
        let ticker = crate::schedules::ticker_loop(Arc::downgrade(&inner));
        tasks.keep(tokio::spawn(ticker));
        if crate::retention::enabled(&inner.config) {
            let weak = Arc::downgrade(&inner);
            tasks.keep(tokio::spawn(crate::retention::retention_loop(weak)));
        }
        if let Some(changes) = changes {
            tasks.keep(tokio::spawn(listen_loop(Arc::downgrade(&inner), changes)));
        }
        Engine { inner }
    }

    /// The workflows and hook definitions this engine runs.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The store behind the engine.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// This process's node id.
    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    /// How many runs are live in memory now.
    pub fn live_runs(&self) -> usize {
        self.inner.live.len()
    }

    pub(crate) fn check_size(&self, v: &Value) -> Result<(), EngineError> {
        let limit = self.inner.config.max_payload_bytes;
        let size = serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX);
        if size > limit {
            return Err(EngineError::PayloadTooLarge { size, limit });
        }
        Ok(())
    }

    pub(crate) fn alive(&self) -> Result<(), EngineError> {
        if self.inner.lifecycle.is_stopping() {
            return Err(EngineError::ShuttingDown);
        }
        Ok(())
    }

    /// Ask a run to cancel: the workflow sees `WorkflowError::Cancelled` at its next await.
    pub async fn cancel_run(
        &self,
        run_id: &str,
        reason: Option<String>,
    ) -> Result<(), EngineError> {
        self.alive()?;
        self.get_run(run_id).await?;
        let op = WriteOp::RequestCancel {
            run_id: run_id.to_string(),
            reason,
            at_ms: self.inner.now_ms(),
        };
        self.inner.writer.write(op).await??;
        Ok(())
    }

    /// The engine's clock ([`EngineConfig::clock`]).
    pub fn clock(&self) -> &Clock {
        self.inner.clock()
    }

    /// Wait until nothing is in flight: no write waiting for or in a group commit, no message
    /// waiting in a live run's inbox, no live run between two waits (starting, replaying,
    /// applying an entry, writing), no step attempt running, no poll of the store going on,
    /// and (with a manual clock) no timer or step back-off due at the clock's current time.
    /// Every live run then waits for something outside: a hook payload, a signal, a timer or
    /// back-off in the future of the clock.
    ///
    /// With a [`Clock::manual`] clock this makes tests exact: move the clock, `settle`, then
    /// look. Runs that are not in memory (evicted) and come due by a clock move are made live
    /// by the poller, or at once by [`Engine::wake_due_runs`]. With the system clock a timer
    /// or back-off coming due in real time is not waited for. Neither is the rebuild of a run
    /// whose storage write failed (it comes after [`EngineConfig::retry_delay`], real time). A
    /// step whose body never returns keeps `settle` waiting. Cost: one atomic increment and
    /// decrement per message and write.
    pub async fn settle(&self) {
        let activity = &self.inner.activity;
        let clock = self.inner.clock();
        let none = tokio::sync::Notify::new();
        loop {
            let idle = activity.idle_notify().notified();
            let released = clock.released().unwrap_or(&none).notified();
            tokio::pin!(idle, released);
            idle.as_mut().enable();
            released.as_mut().enable();
            // Due waits first: a waiter takes its ticket before it stops counting as due.
            if !clock.has_due_waits() && activity.is_idle() {
                return;
            }
            // A deferred write (a checkpoint) would otherwise keep this waiting until it
            // comes due.
            self.inner.writer.flush_deferred();
            tokio::select! {
                _ = idle => {}
                _ = released => {}
                // Only a safety net: the notifications above are what wake this.
                _ = tokio::time::sleep(std::time::Duration::from_millis(10)) => {}
            }
        }
    }

    /// Make live, now, the runs the store says have work that are not live here: a due timer
    /// (by this engine's clock) of an evicted run, a hook thread's next attempt, work
    /// interrupted by a restart. The poller does this every [`EngineConfig::poll_interval`];
    /// call it after moving a manual clock to not wait for it. Returns how many runs it made
    /// live (then [`Engine::settle`] to let them run).
    pub async fn wake_due_runs(&self) -> Result<usize, EngineError> {
        self.alive()?;
        let _busy = self.inner.activity.ticket();
        Ok(self.inner.wake_due_runs().await?)
    }

    /// Stop: live runs dropped (their state is in the store), this node's leases ended so other
    /// nodes take its runs at once, no new requests, background tasks ended.
    pub async fn shutdown(&self) {
        self.inner.lifecycle.drain();
        self.inner.live.clear();
        // Hand this node's runs over at once: end its leases now (their fences stay valid
        // until another node claims a run, so a write still in flight commits or is fenced).
        let release = WriteOp::RenewLeases {
            node: self.inner.node_id.clone(),
            lease_until_ms: 0,
        };
        if let Err(e) = self.inner.writer.write(release).await {
            tracing::warn!(error = %e, "could not release this node's leases; others wait for them to expire");
        }
        self.halt().await;
    }

    /// Stop as a crash would, keeping this node's leases (they run out on their own): for
    /// tests of node loss.
    pub async fn halt(&self) {
        self.inner.lifecycle.stop();
        self.inner.live.clear();
        let tasks = self.inner.lifecycle.take_tasks();
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
        // Give aborted actors a moment to drop their machines.
        tokio::task::yield_now().await;
        debug!("engine stopped");
    }
}
