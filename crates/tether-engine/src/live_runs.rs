//! The cache of live runs: which runs have an actor on this node, the channel to each, and
//! which runs must not go live again (blocked: their code and journal disagree). Bounded by
//! [`crate::EngineConfig::max_live_runs`]; past it, the least recently active idle runs are
//! asked to leave.
//!
//! Every send to an actor and every insertion happens under the cache lock ([`LiveRuns::lock`]),
//! so an actor leaving the cache (`try_evict`) can check its inbox is empty without an entry
//! slipping in between. Making runs live and feeding them is `delivery.rs`'s job; this file
//! only keeps the cache.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use tokio::sync::{mpsc, watch};

use crate::actor::Mail;

/// A live run's entry in the cache.
struct LiveHandle {
    tx: mpsc::UnboundedSender<Mail>,
    /// Tells this actor from a later one of the same run.
    generation: u64,
    /// Set by the actor while it waits with no step running (it may be evicted).
    idle: Arc<AtomicBool>,
    /// The tick of its last delivery (least recently active runs are evicted first).
    last_active: u64,
    /// The last journal entry the live run has applied.
    applied: watch::Receiver<u64>,
}

/// What a new actor gets when its run enters the cache.
pub(crate) struct Slot {
    /// Its generation (see [`LiveRuns::remove`]).
    pub generation: u64,
    /// Its inbox.
    pub rx: mpsc::UnboundedReceiver<Mail>,
    /// Its "idle" flag, read by eviction.
    pub idle: Arc<AtomicBool>,
    /// Where it publishes the last entry it applied.
    pub applied: watch::Sender<u64>,
}

/// The live runs of this node.
pub(crate) struct LiveRuns {
    map: Mutex<HashMap<String, LiveHandle>>,
    /// Ticks (activity order) and generations.
    counter: AtomicU64,
    /// Most runs kept live.
    capacity: usize,
    /// Runs blocked on this node until restart.
    blocked: Mutex<HashSet<String>>,
}

impl LiveRuns {
    /// An empty cache holding at most `capacity` runs.
    pub(crate) fn new(capacity: usize) -> LiveRuns {
        LiveRuns {
            map: Mutex::new(HashMap::new()),
            counter: AtomicU64::new(1),
            capacity,
            blocked: Mutex::new(HashSet::new()),
        }
    }

    /// The next tick: when a run was last active, for eviction order.
    #[inline]
    pub(crate) fn tick(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    /// The cache, locked: to send to a run or insert one without a race with its leaving.
    #[inline]
    pub(crate) fn lock(&self) -> LiveGuard<'_> {
        LiveGuard {
            runs: self,
            map: self.map.lock(),
        }
    }

    /// Whether the run is live here.
    pub(crate) fn is_live(&self, run_id: &str) -> bool {
        self.map.lock().contains_key(run_id)
    }

    /// How many runs are live.
    pub(crate) fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// The live run's "last applied entry" watch, if the run is live here.
    pub(crate) fn applied_watch(&self, run_id: &str) -> Option<watch::Receiver<u64>> {
        self.map.lock().get(run_id).map(|h| h.applied.clone())
    }

    /// Send `mail` to the run if it is live; whether it was.
    pub(crate) fn send(&self, run_id: &str, mail: impl FnOnce() -> Mail) -> bool {
        match self.map.lock().get(run_id) {
            Some(h) => h.tx.send(mail()).is_ok(),
            None => false,
        }
    }

    /// Leave the cache if no message is waiting (checked under the cache lock, which every
    /// sender holds, so no entry can slip in between). Whether the actor may stop.
    pub(crate) fn try_evict(
        &self,
        run_id: &str,
        generation: u64,
        rx: &mpsc::UnboundedReceiver<Mail>,
    ) -> bool {
        let mut live = self.map.lock();
        if !rx.is_empty() {
            return false;
        }
        if live.get(run_id).is_some_and(|h| h.generation == generation) {
            live.remove(run_id);
        }
        true
    }

    /// The actor of `generation` has stopped: remove its entry (not a later actor's).
    pub(crate) fn remove(&self, run_id: &str, generation: u64) {
        let mut live = self.map.lock();
        if live.get(run_id).is_some_and(|h| h.generation == generation) {
            live.remove(run_id);
        }
    }

    /// Drop every entry: the actors' inboxes close and they stop (shutdown).
    pub(crate) fn clear(&self) {
        let handles: Vec<LiveHandle> = self.map.lock().drain().map(|(_, h)| h).collect();
        drop(handles);
    }

    /// Keep the run out of memory until restart (its code and journal disagree).
    pub(crate) fn block(&self, run_id: String) {
        self.blocked.lock().insert(run_id);
    }

    /// Whether the run is blocked on this node.
    pub(crate) fn is_blocked(&self, run_id: &str) -> bool {
        self.blocked.lock().contains(run_id)
    }
}

/// The locked cache (see [`LiveRuns::lock`]).
pub(crate) struct LiveGuard<'a> {
    runs: &'a LiveRuns,
    map: MutexGuard<'a, HashMap<String, LiveHandle>>,
}

impl LiveGuard<'_> {
    /// The live run's inbox, marking the run active at `tick`; `None` when it is not live.
    #[inline]
    pub(crate) fn touch(
        &mut self,
        run_id: &str,
        tick: u64,
    ) -> Option<&mpsc::UnboundedSender<Mail>> {
        let h = self.map.get_mut(run_id)?;
        h.last_active = tick;
        Some(&h.tx)
    }

    /// Whether the run is live here.
    pub(crate) fn contains(&self, run_id: &str) -> bool {
        self.map.contains_key(run_id)
    }

    /// Forget the run's entry (its actor is gone).
    pub(crate) fn remove(&mut self, run_id: &str) {
        self.map.remove(run_id);
    }

    /// Put a new actor's entry in the cache, with `first` already in its inbox.
    pub(crate) fn insert(&mut self, run_id: &str, tick: u64, first: Option<Mail>) -> Slot {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Some(mail) = first {
            let _ = tx.send(mail);
        }
        let generation = self.runs.tick();
        let idle = Arc::new(AtomicBool::new(false));
        let (applied, applied_rx) = watch::channel(0);
        self.map.insert(
            run_id.to_string(),
            LiveHandle {
                tx,
                generation,
                idle: idle.clone(),
                last_active: tick,
                applied: applied_rx,
            },
        );
        Slot {
            generation,
            rx,
            idle,
            applied,
        }
    }

    /// Past the capacity: ask the least recently active idle runs to leave (each gets
    /// `evict()`), down to ~7/8 of the capacity.
    pub(crate) fn evict_excess(&mut self, evict: impl Fn() -> Mail) {
        let cap = self.runs.capacity;
        if self.map.len() <= cap {
            return;
        }
        let target = cap - cap / 8;
        let excess = self.map.len().saturating_sub(target);
        let mut idle: Vec<(u64, &LiveHandle)> = self
            .map
            .values()
            .filter(|h| h.idle.load(Ordering::Acquire))
            .map(|h| (h.last_active, h))
            .collect();
        idle.sort_by_key(|(t, _)| *t);
        for (_, h) in idle.into_iter().take(excess) {
            let _ = h.tx.send(evict());
        }
    }
}
