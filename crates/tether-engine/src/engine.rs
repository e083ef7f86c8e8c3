//! [`Engine`]: the public face of the runtime, and the shared state behind it (`Inner`): the
//! writer's queue, the cache of live runs, the completion waiters.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use serde_json::Value;
use tether_core::{Environment, Event, Registry};
use tether_store::{OpResult, Store, StoreError, WriteOp};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::debug;

use crate::activity::{Activity, Ticket};
use crate::actor::{run_actor, ActorMsg, Mail};
use crate::background::{heartbeat_loop, listen_loop, poll_loop};
use crate::clock::Clock;
use crate::config::EngineConfig;
use crate::error::EngineError;
use crate::system_env::SystemEnvironment;
use crate::writer::{writer_loop, WriteReq};

/// A live run's entry in the cache.
struct LiveHandle {
    tx: mpsc::UnboundedSender<Mail>,
    generation: u64,
    idle: Arc<AtomicBool>,
    last_active: u64,
    /// The last journal entry the live run has applied.
    applied: tokio::sync::watch::Receiver<u64>,
}

pub(crate) struct Inner {
    pub store: Arc<dyn Store>,
    pub registry: Arc<Registry>,
    pub env: Arc<dyn Environment>,
    pub config: EngineConfig,
    /// This process's id among the nodes sharing the store.
    pub node_id: String,
    writer_tx: mpsc::UnboundedSender<WriteReq>,
    live: Mutex<HashMap<String, LiveHandle>>,
    waiters: Mutex<HashMap<String, Vec<oneshot::Sender<()>>>>,
    /// Runs just started whose caller waits for their first suspension.
    pub(crate) starting: Mutex<HashMap<String, oneshot::Sender<()>>>,
    /// Runs this node is creating and claiming in one commit: what their first actor needs
    /// instead of reading the store (see `start.rs`).
    pub(crate) seeds: Mutex<HashMap<String, crate::start::Seed>>,
    /// Hooks this node's commits created, by token (see `hook_cache.rs`).
    pub(crate) hooks: Mutex<crate::hook_cache::HookCache>,
    pub blocked: Mutex<HashSet<String>>,
    stopping: AtomicBool,
    /// Set first on shutdown: no new live runs from then on.
    draining: AtomicBool,
    counter: AtomicU64,
    me: Weak<Inner>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// This engine's metrics (`metrics.rs`).
    pub(crate) metrics: crate::metrics::Metrics,
    /// Change notifications for watchers (see `changes.rs`).
    pub(crate) changes: tokio::sync::broadcast::Sender<tether_store::RunChanged>,
    /// The work in flight (see `activity.rs` and [`Engine::settle`]).
    pub(crate) activity: Arc<Activity>,
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

    /// Count one more unit of work in flight until the ticket is dropped.
    #[inline]
    pub(crate) fn ticket(&self) -> Ticket {
        self.activity.ticket()
    }

    /// A message for a live run, counted as work in flight until the run has handled it.
    #[inline]
    fn mail(&self, msg: ActorMsg) -> Mail {
        Mail {
            msg,
            ticket: self.ticket(),
        }
    }

    /// A waiter woken when `run_id` ends or its journal grows (see `wake_waiters`).
    pub(crate) fn add_waiter(&self, run_id: &str) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut waiters = self.waiters.lock();
        let list = waiters.entry(run_id.to_string()).or_default();
        list.retain(|w| !w.is_closed()); // waiters that timed out before
        list.push(tx);
        rx
    }

    /// Forget the closed waiters of `run_id`, and its entry if nobody else waits.
    pub(crate) fn drop_closed_waiters(&self, run_id: &str) {
        let mut waiters = self.waiters.lock();
        if let Some(list) = waiters.get_mut(run_id) {
            list.retain(|w| !w.is_closed());
            if list.is_empty() {
                waiters.remove(run_id);
            }
        }
    }

    /// The live run's "last applied entry" watch, if the run is live here.
    pub(crate) fn applied_watch(&self, run_id: &str) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.live.lock().get(run_id).map(|h| h.applied.clone())
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Queue one write for the next group commit and wait for it to commit.
    pub async fn write(&self, op: WriteOp) -> Result<OpResult, StoreError> {
        let mut results = self.write_all(vec![op]).await?;
        results
            .pop()
            .ok_or_else(|| StoreError::corrupt("the store answered no result"))
    }

    /// Queue writes that must commit together (same transaction) and wait for them.
    pub async fn write_all(&self, ops: Vec<WriteOp>) -> Result<Vec<OpResult>, StoreError> {
        let (reply, rx) = oneshot::channel();
        let stopped = || StoreError::unavailable("the engine is shutting down");
        self.writer_tx
            .send(WriteReq {
                ops,
                reply,
                span: tracing::Span::current(),
                ticket: self.ticket(),
            })
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// The run has written its first decisions (or ended): release `start_run`'s caller.
    pub fn first_flush_done(&self, run_id: &str) {
        if let Some(tx) = self.starting.lock().remove(run_id) {
            let _ = tx.send(());
        }
    }

    /// Queue a write for the next group commit without waiting for it (best effort).
    pub fn write_detached(&self, op: WriteOp) {
        let (reply, _) = oneshot::channel();
        let _ = self.writer_tx.send(WriteReq {
            ops: vec![op],
            reply,
            span: tracing::Span::none(),
            ticket: self.ticket(),
        });
    }

    /// Hand committed entries to the run's live actor, starting one (which replays from the
    /// store) when the run is not live. Runs never go live again once ended.
    pub fn deliver(&self, run_id: &str, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let terminal = events.iter().any(|e| e.body.is_terminal());
        if terminal {
            self.wake_waiters(run_id);
            return;
        }
        if self.is_stopping() {
            return;
        }
        let tick = self.counter.fetch_add(1, Ordering::Relaxed);
        let committed = crate::actor::Delivery {
            committed: std::time::Instant::now(),
            span: tracing::Span::current(),
        };
        let resume = crate::metrics::is_resume(&events);
        let mut live = self.live.lock();
        if let Some(h) = live.get_mut(run_id) {
            h.last_active = tick;
            let mail = self.mail(ActorMsg::Events(events, committed));
            if h.tx.send(mail).is_ok() {
                self.metrics.live_lookup(resume, true);
                return;
            }
            // The actor is gone: the entries are in the store, a new actor will load them.
            live.remove(run_id);
            self.metrics.live_lookup(resume, false);
            self.spawn_actor_locked(&mut live, run_id, None, tick);
            return;
        }
        self.metrics.live_lookup(resume, false);
        self.spawn_actor_locked(&mut live, run_id, Some((events, committed)), tick);
    }

    /// Wake the callers of [`Engine::wait_for_run`] waiting on the run: they read it again,
    /// and wait on if it has not ended.
    pub(crate) fn wake_waiters(&self, run_id: &str) {
        if let Some(ws) = self.waiters.lock().remove(run_id) {
            for w in ws {
                let _ = w.send(());
            }
        }
    }

    /// Make the run live if it is not (after a failure, or when a timer is due). Returns
    /// whether it started an actor.
    pub fn wake(&self, run_id: &str) -> bool {
        if self.is_stopping() || self.blocked.lock().contains(run_id) {
            return false;
        }
        let tick = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut live = self.live.lock();
        if !live.contains_key(run_id) {
            return self.spawn_actor_locked(&mut live, run_id, None, tick);
        }
        false
    }

    /// Make live the runs the store says have work and no owner but this node (recovery after
    /// a restart, due timers of evicted runs, runs whose write failed). Returns how many it
    /// made live.
    pub(crate) async fn wake_due_runs(&self) -> Result<usize, StoreError> {
        let ids = self
            .store
            .runs_needing_work(self.now_ms(), &self.node_id, 1000)
            .await?;
        let mut woken = 0;
        for id in ids {
            if !self.is_live(&id) && self.wake(&id) {
                woken += 1;
            }
        }
        Ok(woken)
    }

    pub fn wake_later(&self, run_id: String) {
        let Some(me) = self.me.upgrade() else { return };
        let delay = self.config.retry_delay;
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            me.wake(&run_id);
        });
    }

    fn spawn_actor_locked(
        &self,
        live: &mut HashMap<String, LiveHandle>,
        run_id: &str,
        first: Option<(Vec<Event>, crate::actor::Delivery)>,
        tick: u64,
    ) -> bool {
        if self.draining.load(Ordering::Acquire) {
            return false;
        }
        let Some(me) = self.me.upgrade() else {
            return false;
        };
        let (tx, rx) = mpsc::unbounded_channel();
        if let Some((events, committed)) = first {
            let _ = tx.send(self.mail(ActorMsg::Events(events, committed)));
        }
        let generation = self.counter.fetch_add(1, Ordering::Relaxed);
        let idle = Arc::new(AtomicBool::new(false));
        let (applied_tx, applied) = tokio::sync::watch::channel(0);
        live.insert(
            run_id.to_string(),
            LiveHandle {
                tx,
                generation,
                idle: idle.clone(),
                last_active: tick,
                applied,
            },
        );
        // The new run counts as busy until it first waits (loading, replaying, first writes).
        let starting = self.ticket();
        tokio::spawn(run_actor(
            me,
            run_id.to_string(),
            generation,
            rx,
            idle,
            applied_tx,
            starting,
        ));
        if live.len() > self.config.max_live_runs {
            self.evict_some(live, self.config.max_live_runs);
        }
        true
    }

    /// Ask the least recently active idle runs to leave, down to ~7/8 of the capacity.
    fn evict_some(&self, live: &mut HashMap<String, LiveHandle>, cap: usize) {
        let target = cap - cap / 8;
        let excess = live.len().saturating_sub(target);
        let mut idle: Vec<(u64, &LiveHandle)> = live
            .values()
            .filter(|h| h.idle.load(Ordering::Acquire))
            .map(|h| (h.last_active, h))
            .collect();
        idle.sort_by_key(|(t, _)| *t);
        for (_, h) in idle.into_iter().take(excess) {
            let _ = h.tx.send(self.mail(ActorMsg::Evict));
        }
    }

    /// Leave the cache if no message is waiting (checked under the cache lock, which every
    /// sender holds, so no entry can slip in between).
    pub(crate) fn try_evict(
        &self,
        run_id: &str,
        generation: u64,
        rx: &mpsc::UnboundedReceiver<Mail>,
    ) -> bool {
        let mut live = self.live.lock();
        if !rx.is_empty() {
            return false;
        }
        if live.get(run_id).is_some_and(|h| h.generation == generation) {
            live.remove(run_id);
        }
        true
    }

    pub fn remove_live(&self, run_id: &str, generation: u64) {
        let mut live = self.live.lock();
        if live.get(run_id).is_some_and(|h| h.generation == generation) {
            live.remove(run_id);
        }
    }

    /// Another run's journal grew in this process's commit (a signal was delivered to it):
    /// make it read the entry if live, or start it.
    pub fn wake_or_poke(&self, run_id: &str) {
        if !self.poke(run_id, u64::MAX) {
            self.wake(run_id);
        }
    }

    /// A hint that the run's journal reached `last_seq` (from another process).
    pub(crate) fn poke(&self, run_id: &str, last_seq: u64) -> bool {
        match self.live.lock().get(run_id) {
            Some(h) => h.tx.send(self.mail(ActorMsg::Poke { last_seq })).is_ok(),
            None => false,
        }
    }

    fn live_len(&self) -> usize {
        self.live.lock().len()
    }

    pub(crate) fn is_live(&self, run_id: &str) -> bool {
        self.live.lock().contains_key(run_id)
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
            .field("live_runs", &self.inner.live_len())
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
        let (writer_tx, writer_rx) = mpsc::unbounded_channel();
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
            config,
            writer_tx,
            live: Mutex::new(HashMap::new()),
            waiters: Mutex::new(HashMap::new()),
            starting: Mutex::new(HashMap::new()),
            seeds: Mutex::new(HashMap::new()),
            hooks: Mutex::new(crate::hook_cache::HookCache::default()),
            blocked: Mutex::new(HashSet::new()),
            stopping: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            counter: AtomicU64::new(1),
            me: me.clone(),
            tasks: Mutex::new(Vec::new()),
            metrics: crate::metrics::Metrics::new(),
            changes: crate::changes::channel(),
            activity: Arc::new(Activity::default()),
        });
        let writer = tokio::spawn(writer_loop(Arc::downgrade(&inner), writer_rx));
        let poller = tokio::spawn(poll_loop(Arc::downgrade(&inner)));
        let heartbeat = tokio::spawn(heartbeat_loop(Arc::downgrade(&inner)));
        inner.tasks.lock().extend([writer, poller, heartbeat]);
        if let Some(changes) = changes {
            let listener = tokio::spawn(listen_loop(Arc::downgrade(&inner), changes));
            inner.tasks.lock().push(listener);
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
        self.inner.live_len()
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
        if self.inner.is_stopping() {
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
        self.inner.write(op).await??;
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
        let _busy = self.inner.ticket();
        Ok(self.inner.wake_due_runs().await?)
    }

    /// Stop: live runs dropped (their state is in the store), this node's leases ended so other
    /// nodes take its runs at once, no new requests, background tasks ended.
    pub async fn shutdown(&self) {
        self.inner.draining.store(true, Ordering::Release);
        let handles: Vec<_> = self.inner.live.lock().drain().map(|(_, h)| h).collect();
        drop(handles);
        // Hand this node's runs over at once: end its leases now (their fences stay valid
        // until another node claims a run, so a write still in flight commits or is fenced).
        let release = WriteOp::RenewLeases {
            node: self.inner.node_id.clone(),
            lease_until_ms: 0,
        };
        if let Err(e) = self.inner.write(release).await {
            tracing::warn!(error = %e, "could not release this node's leases; others wait for them to expire");
        }
        self.halt().await;
    }

    /// Stop as a crash would, keeping this node's leases (they run out on their own): for
    /// tests of node loss.
    pub async fn halt(&self) {
        self.inner.draining.store(true, Ordering::Release);
        self.inner.stopping.store(true, Ordering::Release);
        let handles: Vec<_> = self.inner.live.lock().drain().map(|(_, h)| h).collect();
        drop(handles);
        let tasks: Vec<_> = self.inner.tasks.lock().drain(..).collect();
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
        // Give aborted actors a moment to drop their machines.
        tokio::task::yield_now().await;
        debug!("engine stopped");
    }
}
