//! The background task that fires due ticks. Every node runs it; none coordinates with the
//! others: a tick's run has an id derived from the tick and is created in the transaction that
//! moves the schedule on, only while the schedule still has that tick as its next one (see
//! `tether_store::plan::schedule`), so of several nodes firing a tick one makes its run and
//! the others are refused. The task sleeps (on the engine's clock, so a manual clock drives
//! it) until the earliest next tick, and reads the schedules again when one changes here and
//! at least every `poll_interval` (another node may have created one).

use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tether_store::{
    schedule_run_id, CatchUp, Fence, FireTick, FirstClaim, OpOutcome, OpRejected, ScheduleOp,
    ScheduleRecord, WriteOp, FIRST_EPOCH,
};
use tokio::sync::Notify;

use super::cron::CronTicks;
use crate::activity::{Activity, Ticket};
use crate::engine::Inner;
use crate::error::EngineError;
use crate::new_runs::Seed;

/// Most ticks of one schedule fired in one pass (then the others get their turn).
const MAX_FIRES_PER_PASS: usize = 100;

/// How long a fired run's seed waits for its first actor (as `start_run` does).
const SEED_WAIT: Duration = Duration::from_secs(2);

/// The ticker's wake-up: "the schedules changed here, read them again". Holds a unit of
/// activity until the ticker has read them, so [`crate::Engine::settle`] waits for it.
#[derive(Default)]
pub(crate) struct Ticker {
    changed: Arc<Notify>,
    pending: Mutex<Option<Ticket>>,
}

impl Ticker {
    /// The schedules changed: the ticker reads them again (counted as work until it has).
    pub(crate) fn poke(&self, activity: &Arc<Activity>) {
        *self.pending.lock() = Some(activity.ticket());
        self.changed.notify_one();
    }
}

/// What to fire for a schedule whose next tick `next` is due at `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Decision {
    /// The tick whose run to start; `None`: missed ticks skipped.
    pub(crate) run_tick: Option<u64>,
    /// The schedule's next tick after this fire.
    pub(crate) next_tick: Option<u64>,
}

/// A tick at most `grace` late runs; a later one was missed (no node was up): with
/// [`CatchUp::One`] the latest missed tick runs once, with [`CatchUp::Skip`] none does; the
/// schedule then moves to its first tick after the missed ones (which may be due: it fires
/// on its own, on time).
pub(crate) fn decide(
    cron: &CronTicks,
    catch_up: CatchUp,
    next: u64,
    now: u64,
    grace: u64,
) -> Decision {
    let on_time_from = now.saturating_sub(grace);
    if next >= on_time_from {
        return Decision {
            run_tick: Some(next),
            next_tick: cron.next_after(next),
        };
    }
    let latest_missed = cron
        .last_before(on_time_from)
        .filter(|t| *t >= next)
        .unwrap_or(next);
    Decision {
        run_tick: (catch_up == CatchUp::One).then_some(latest_missed),
        next_tick: cron.next_after(latest_missed),
    }
}

/// The ticker task: fire what is due, then sleep until the earliest next tick.
pub(crate) async fn ticker_loop(inner: Weak<Inner>) {
    let Some(changes) = inner.upgrade().map(|e| e.ticker.changed.clone()) else {
        return;
    };
    let mut woke = None;
    loop {
        let Some(engine) = inner.upgrade() else {
            return;
        };
        // A draining node starts no run it could not make live: the others fire the ticks.
        if engine.lifecycle.is_draining() {
            return;
        }
        let busy = engine.activity.ticket();
        // Taken first: a change made while this pass reads is seen by the next one.
        let poked = engine.ticker.pending.lock().take();
        let changed = changes.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        drop(woke.take());
        let earliest = match fire_due(&engine).await {
            Ok(earliest) => earliest,
            Err(e) => {
                tracing::warn!(error = %e, "could not fire due schedule ticks; will try again");
                None
            }
        };
        // Registered on a manual clock before this pass stops counting as work, so a test
        // moving the clock stops at the tick.
        let wait = engine.clock().wait_until(earliest);
        let poll = engine.config.poll_interval;
        drop((busy, poked));
        drop(engine);
        tokio::select! {
            // The clock first: a due tick must not lose its place to the poll (a test moving
            // a manual clock waits for it).
            biased;
            wakeup = wait => woke = Some(wakeup),
            _ = &mut changed => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

/// Fire every due tick of every unpaused schedule; the earliest next tick after that (now,
/// when a schedule moved under this node's feet and must be read again).
async fn fire_due(engine: &Inner) -> Result<Option<u64>, EngineError> {
    let schedules = engine.store.list_schedules().await?;
    let mut earliest: Option<u64> = None;
    // A workflow this node does not run is left to the nodes that do (a rolling deploy).
    let runnable = |s: &&ScheduleRecord| engine.registry.get(&s.spec.workflow).is_some();
    for schedule in schedules.iter().filter(|s| !s.paused).filter(runnable) {
        let cron = match CronTicks::parse(&schedule.spec.cron, &schedule.spec.timezone) {
            Ok(cron) => cron,
            Err(e) => {
                tracing::warn!(schedule = %schedule.spec.id, error = %e, "schedule cannot tick");
                continue;
            }
        };
        let mut next = schedule.next_tick_ms;
        let mut fired = 0;
        while let Some(tick) = next {
            if tick > engine.now_ms() || fired >= MAX_FIRES_PER_PASS {
                break;
            }
            fired += 1;
            match fire_one(engine, schedule, &cron, tick).await? {
                Fired::Next(n) => next = n,
                Fired::Moved => {
                    next = Some(engine.now_ms());
                    break;
                }
            }
        }
        if let Some(at) = next {
            earliest = Some(earliest.map_or(at, |e| e.min(at)));
        }
    }
    Ok(earliest)
}

/// What firing one tick left.
enum Fired {
    /// The schedule's next tick (`None`: it has no more).
    Next(Option<u64>),
    /// Another node fired it, or the schedule was paused, resumed or deleted: read again.
    Moved,
}

/// Fire the tick `expected` of `schedule` (with the missed ticks before it, see [`decide`]).
async fn fire_one(
    engine: &Inner,
    schedule: &ScheduleRecord,
    cron: &CronTicks,
    expected: u64,
) -> Result<Fired, EngineError> {
    let now = engine.now_ms();
    let grace = u64::try_from(engine.config.schedule_grace.as_millis()).unwrap_or(u64::MAX);
    let decision = decide(cron, schedule.spec.catch_up, expected, now, grace);
    let id = &schedule.spec.id;
    let run_id = decision.run_tick.map(|tick| schedule_run_id(id, tick));
    let lease_until_ms = now + u64::try_from(engine.config.lease.as_millis()).unwrap_or(0);
    // A tick's run is on the default queue: created claimed by this node when it serves that
    // queue without limits, else left for a claim that admits it (as `start_run` does).
    let claims = engine
        .queue_policy
        .claims_at_creation(tether_store::DEFAULT_QUEUE);
    let first_flush = run_id.as_ref().filter(|_| claims).map(|run_id| {
        let seed = Seed {
            fence: Fence {
                node: engine.node_id.clone(),
                epoch: FIRST_EPOCH,
            },
            started: tether_store::run_started(
                schedule.spec.workflow.clone(),
                schedule.spec.input.clone(),
                now,
            ),
        };
        engine.new_runs.register(run_id, seed)
    });
    let op = WriteOp::Schedule(ScheduleOp::Fire(FireTick {
        id: id.clone(),
        expected_tick_ms: expected,
        run_tick_ms: decision.run_tick,
        next_tick_ms: decision.next_tick,
        claim: claims.then(|| FirstClaim {
            node: engine.node_id.clone(),
            lease_until_ms,
        }),
        at_ms: now,
    }));
    let result = engine.writer.write(op).await;
    let started = matches!(result, Ok(Ok(OpOutcome::Appended { .. })));
    if let Some(run_id) = run_id.as_ref().filter(|_| claims) {
        match (started, first_flush, engine.me.upgrade()) {
            (true, Some(first_flush), Some(me)) => {
                let run_id = run_id.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(SEED_WAIT, first_flush).await;
                    me.new_runs.forget(&run_id);
                });
            }
            _ => engine.new_runs.forget(run_id),
        }
    }
    match result? {
        Ok(outcome) => {
            let started = matches!(outcome, OpOutcome::Appended { .. });
            engine
                .metrics
                .schedule_tick(if started { "started" } else { "skipped" });
            tracing::info!(
                schedule = %id,
                tick_ms = expected,
                run_id = run_id.as_deref().filter(|_| started).unwrap_or("-"),
                "schedule ticked"
            );
            Ok(Fired::Next(decision.next_tick))
        }
        Err(OpRejected::ScheduleMoved { .. } | OpRejected::ScheduleNotFound { .. }) => {
            engine.metrics.schedule_tick("lost");
            Ok(Fired::Moved)
        }
        Err(other) => Err(other.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_735_689_600_000;

    #[test]
    fn late_ticks_run_each_and_missed_ones_follow_the_policy() {
        let cron = CronTicks::parse("* * * * * *", "UTC").unwrap();
        let on_time = decide(&cron, CatchUp::One, T, T + 3_000, 10_000);
        assert_eq!(on_time.run_tick, Some(T));
        assert_eq!(on_time.next_tick, Some(T + 1_000));
        // Down for a minute: the last tick more than 10 s late runs, the rest follow on time.
        let missed = decide(&cron, CatchUp::One, T, T + 60_000, 10_000);
        assert_eq!(missed.run_tick, Some(T + 49_000));
        assert_eq!(missed.next_tick, Some(T + 50_000));
        let skipped = decide(&cron, CatchUp::Skip, T, T + 60_000, 10_000);
        assert_eq!(skipped.run_tick, None);
        assert_eq!(skipped.next_tick, Some(T + 50_000));
    }
}
