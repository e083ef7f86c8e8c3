//! Getting entries and hints to live runs: handing committed entries to a run's actor
//! (starting one, which replays from the store, when the run is not live), waking runs that
//! have work, and poking a run another node wrote to. Uses the live-run cache
//! (`live_runs.rs`), the waiters (`waiters.rs`) and the lifecycle flags (`lifecycle.rs`).

use tether_core::Event;
use tether_store::{ClaimIfFree, Fence, StoreError, WriteOp};

use crate::actor::{run_actor, ActorMsg, Delivery, Mail};
use crate::engine::Inner;
use crate::live_runs::LiveGuard;

impl Inner {
    /// A message for a live run, counted as work in flight until the run has handled it.
    #[inline]
    pub(crate) fn mail(&self, msg: ActorMsg) -> Mail {
        Mail {
            msg,
            ticket: self.activity.ticket(),
        }
    }

    /// Hand committed entries to the run's live actor, starting one (which replays from the
    /// store) when the run is not live. Runs never go live again once ended.
    pub(crate) fn deliver(&self, run_id: &str, events: Vec<Event>) {
        self.hand_over(run_id, events, true, None);
    }

    /// [`Inner::deliver`] of entries whose commit also claimed the run for this node
    /// ([`Inner::claim_if_free`]): an actor started for it writes under `fence` without a
    /// claim of its own. A run live here already keeps its actor (which claims as usual).
    pub(crate) fn deliver_claimed(&self, run_id: &str, events: Vec<Event>, fence: Fence) {
        self.hand_over(run_id, events, true, Some(fence));
    }

    /// The claim a resume of a run not live here asks for ([`tether_store::ClaimIfFree`]):
    /// this node, for one lease from `now_ms`, under its queue policy.
    pub(crate) fn claim_if_free(&self, now_ms: u64) -> ClaimIfFree {
        ClaimIfFree {
            node: self.node_id.clone(),
            lease_until_ms: now_ms + self.config.lease.as_millis() as u64,
            queues: self.queue_policy.clone(),
        }
    }

    /// Hand committed entries to the run's actor if it is live here, and otherwise leave them
    /// in the store: the run is another node's (its lease is live), which learns of them from
    /// the store's notifications. Starting an actor here would only read the run and have its
    /// claim refused, and on PostgreSQL that refused claim cost more database work than the
    /// resume itself (BENCHMARKS.md, scale-out).
    pub(crate) fn deliver_if_live(&self, run_id: &str, events: Vec<Event>) {
        self.hand_over(run_id, events, false, None);
    }

    /// [`Inner::deliver`], starting an actor for a run not live here only if `may_start`
    /// (with `claimed`, the claim the commit made for it). An ending wakes the run's waiters
    /// with what it wrote instead.
    fn hand_over(&self, run_id: &str, events: Vec<Event>, may_start: bool, claimed: Option<Fence>) {
        let Some(last) = events.last() else {
            return;
        };
        if let Some(end) = events.iter().find(|e| e.body.is_terminal()) {
            // What the ending wrote is worked out only if someone here waits for it.
            self.waiters.ended(run_id, || {
                tether_store::Ending::of(&end.body).map(|ending| crate::waiters::Ended {
                    ending,
                    last_seq: last.seq,
                    at_ms: last.at_ms,
                })
            });
            return;
        }
        if self.lifecycle.is_stopping() {
            self.give_back(run_id, claimed);
            return;
        }
        let tick = self.live.tick();
        let committed = Delivery {
            committed: std::time::Instant::now(),
            span: tracing::Span::current(),
        };
        let resume = crate::metrics::is_resume(&events);
        let mut live = self.live.lock();
        let mail = self.mail(ActorMsg::Events(events, committed));
        let first = match live.touch(run_id, tick) {
            Some(tx) => match tx.send(mail) {
                Ok(()) => {
                    self.metrics.live_lookup(resume, true);
                    return;
                }
                // The actor is gone: the entries are in the store, a new actor will load them.
                Err(_) => {
                    live.remove(run_id);
                    None
                }
            },
            None => Some(mail),
        };
        if may_start {
            self.metrics.live_lookup(resume, false);
            self.spawn_actor(&mut live, run_id, first, tick, claimed);
        }
    }

    /// Release a claim no actor took (the engine is stopping or draining): another node need
    /// not wait for the lease to run out.
    fn give_back(&self, run_id: &str, claimed: Option<Fence>) {
        if let Some(fence) = claimed {
            self.writer.write_detached(WriteOp::Release {
                run_id: run_id.to_owned(),
                fence,
            });
        }
    }

    /// Make the run live if it is not (after a failure, or when a timer is due). Returns
    /// whether it started an actor.
    pub(crate) fn wake(&self, run_id: &str) -> bool {
        if self.lifecycle.is_stopping() || self.live.is_blocked(run_id) {
            return false;
        }
        let tick = self.live.tick();
        let mut live = self.live.lock();
        if !live.contains(run_id) {
            return self.spawn_actor(&mut live, run_id, None, tick, None);
        }
        false
    }

    /// Make live the runs the store says have work and no owner but this node (recovery after
    /// a restart, due timers of evicted runs, runs whose write failed). Returns how many it
    /// made live.
    pub(crate) async fn wake_due_runs(&self) -> Result<usize, StoreError> {
        let served = self.queue_policy.served();
        let ids = self
            .store
            .runs_needing_work(self.now_ms(), &self.node_id, served.as_deref(), 1000)
            .await?;
        let mut woken = 0;
        for id in ids {
            if !self.live.is_live(&id) && self.wake(&id) {
                woken += 1;
            }
        }
        Ok(woken)
    }

    /// Make the run live again after [`crate::EngineConfig::retry_delay`] (its write failed).
    pub(crate) fn wake_later(&self, run_id: String) {
        let Some(me) = self.me.upgrade() else { return };
        let delay = self.config.retry_delay;
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            me.wake(&run_id);
        });
    }

    /// Another run's journal grew in this process's commit (a signal was delivered to it):
    /// make it read the entry if live, or start it.
    pub(crate) fn wake_or_poke(&self, run_id: &str) {
        if !self.poke(run_id, u64::MAX) {
            self.wake(run_id);
        }
    }

    /// A cancel request to `run_id` committed: the store passed it on to the run's attached
    /// unfinished children (and theirs) in the same transaction; make them read it. Reads the
    /// children in the background (counted as work in flight).
    pub(crate) fn poke_children(&self, run_id: &str) {
        let Some(me) = self.me.upgrade() else { return };
        let ticket = self.activity.ticket();
        let run_id = run_id.to_owned();
        tokio::spawn(async move {
            let _busy = ticket;
            let mut todo = vec![run_id];
            while let Some(parent) = todo.pop() {
                let children = match me.store.list_children(&parent).await {
                    Ok(children) => children,
                    // The poller reaches them (their journal is past their checkpoint).
                    Err(e) => {
                        tracing::debug!(%parent, error = %e, "could not list children to cancel");
                        continue;
                    }
                };
                for child in children.into_iter().filter(|c| !c.status.is_terminal()) {
                    me.wake_or_poke(&child.run_id);
                    todo.push(child.run_id);
                }
            }
        });
    }

    /// A hint that the run's journal reached `last_seq` (from another process). Whether the
    /// run is live here.
    pub(crate) fn poke(&self, run_id: &str, last_seq: u64) -> bool {
        self.live
            .send(run_id, || self.mail(ActorMsg::Poke { last_seq }))
    }

    /// Start an actor for the run, with `first` in its inbox (and `claimed`, the claim made
    /// for it in the commit that brought `first`), unless the engine is draining (then the
    /// claim is given back). Whether it started one.
    fn spawn_actor(
        &self,
        live: &mut LiveGuard<'_>,
        run_id: &str,
        first: Option<Mail>,
        tick: u64,
        claimed: Option<Fence>,
    ) -> bool {
        let me = match self.me.upgrade() {
            Some(me) if !self.lifecycle.is_draining() => me,
            _ => {
                self.give_back(run_id, claimed);
                return false;
            }
        };
        let slot = live.insert(run_id, tick, first);
        // The new run counts as busy until it first waits (loading, replaying, first writes).
        let starting = self.activity.ticket();
        tokio::spawn(run_actor(me, run_id.to_string(), slot, starting, claimed));
        live.evict_excess(|| self.mail(ActorMsg::Evict));
        true
    }
}
