//! Whether the group-commit writer pauses before it collects a batch.
//!
//! When the writer takes its first queued write, the runs its last commit woke may be about
//! to write too: a run of steps computes its next step and writes it a few microseconds after
//! its last one committed. Yielding once to the scheduler lets them join this commit instead
//! of waiting a whole commit for the next (more writes per `fsync`). But where the writer is
//! the limit and the runs it woke have long work to do (rebuilding evicted runs by replay), the
//! same yield puts it behind all of that work, and fewer writes commit per second.
//!
//! Neither rule suits every load, and the cost of a pause alone does not tell them apart (it is
//! as large for steps, where it pays, as where it does not). Nor does one batch: a batch that
//! pauses collects the backlog the batches before it left, and leaves the next ones less. So
//! the writer measures both choices over epochs of [`EPOCH_BATCHES`] batches: the writes
//! committed per second of wall time over the epoch (the waits for writes included: a pause
//! that leaves the writer idle afterwards, its runs busy elsewhere, shows there), as a moving
//! average per choice. It measures both first, then keeps the better one and gives the other
//! one epoch in [`EXPLORE_EVERY`], so it follows the load as it changes. An epoch in which the
//! writer waited for writes more than half the time is not counted: the writer was not the
//! limit then, and the choice did not matter.

use std::time::Instant;

/// Batches per measured epoch.
pub(crate) const EPOCH_BATCHES: u32 = 16;

/// One epoch in this many is run with the other choice than the better one, to keep its
/// measure current.
pub(crate) const EXPLORE_EVERY: u32 = 8;

/// Weight of the newest epoch in the moving averages.
const ALPHA: f64 = 0.25;

/// The writer's running measure of both choices.
#[derive(Debug, Default)]
pub(crate) struct PausePolicy {
    /// Writes per second, index 0: collect at once; index 1: yield once first.
    rates: [Option<f64>; 2],
    epochs: u32,
    epoch: Option<Epoch>,
}

/// The epoch under way.
#[derive(Debug, Clone, Copy)]
struct Epoch {
    paused: bool,
    started: Instant,
    batches: u32,
    ops: usize,
    /// Time spent on batches (from taking the first write to handing out the results).
    busy_secs: f64,
    /// When the batch under way took its first write.
    batch_started: Instant,
}

impl PausePolicy {
    /// Whether to pause before collecting the batch whose first write was taken `now`.
    pub(crate) fn choose(&mut self, now: Instant) -> bool {
        if let Some(epoch) = self.epoch.as_mut() {
            if epoch.batches < EPOCH_BATCHES {
                epoch.batch_started = now;
                return epoch.paused;
            }
        }
        if let Some(done) = self.epoch.take() {
            self.close(done, now);
        }
        self.epochs = self.epochs.wrapping_add(1);
        let paused = match self.rates {
            // Measure both first: at once, then paused.
            [None, _] => false,
            [Some(_), None] => true,
            _ if self.epochs % EXPLORE_EVERY == 0 => !self.better(),
            _ => self.better(),
        };
        self.epoch = Some(Epoch {
            paused,
            started: now,
            batches: 0,
            ops: 0,
            busy_secs: 0.0,
            batch_started: now,
        });
        paused
    }

    /// The batch chosen last committed `ops` writes and handed out their results at `now`.
    pub(crate) fn done(&mut self, ops: usize, now: Instant) {
        if let Some(epoch) = self.epoch.as_mut() {
            epoch.batches += 1;
            epoch.ops += ops;
            epoch.busy_secs += now
                .saturating_duration_since(epoch.batch_started)
                .as_secs_f64();
        }
    }

    /// Fold a finished epoch into its choice's measure.
    fn close(&mut self, epoch: Epoch, now: Instant) {
        let secs = now.saturating_duration_since(epoch.started).as_secs_f64();
        if secs <= 0.0 || epoch.busy_secs * 2.0 < secs {
            return;
        }
        let rate = epoch.ops as f64 / secs;
        let slot = &mut self.rates[usize::from(epoch.paused)];
        *slot = Some(match *slot {
            Some(old) => old + ALPHA * (rate - old),
            None => rate,
        });
        tracing::debug!(
            paused = epoch.paused,
            rate,
            at_once = ?self.rates[0],
            pausing = ?self.rates[1],
            "group commit pause: an epoch measured"
        );
    }

    /// The choice that commits more writes per second so far (not pausing until both are
    /// measured).
    fn better(&self) -> bool {
        match self.rates {
            [Some(at_once), Some(paused)] => paused > at_once,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    /// A batch's writes, its own time and the wait for the next batch's first write.
    type Cost = (usize, Duration, Duration);

    /// A load where a batch costs `paused` after a pause and `at_once` without.
    fn load(paused: Cost, at_once: Cost) -> impl Fn(bool) -> Cost {
        move |pause| if pause { paused } else { at_once }
    }

    /// How many of `n` batches pause, each taking the writer `cost(paused)`: its writes, its
    /// own time and the wait for the next batch's first write.
    fn run(
        policy: &mut PausePolicy,
        clock: &mut Instant,
        n: usize,
        cost: impl Fn(bool) -> Cost,
    ) -> usize {
        let mut paused = 0;
        for _ in 0..n {
            let pause = policy.choose(*clock);
            let (ops, busy, idle) = cost(pause);
            *clock += busy;
            policy.done(ops, *clock);
            *clock += idle;
            paused += usize::from(pause);
        }
        paused
    }

    /// How many of `n` batches pause under `cost`, from a new policy.
    fn run_new(n: usize, cost: impl Fn(bool) -> Cost) -> usize {
        run(&mut PausePolicy::default(), &mut Instant::now(), n, cost)
    }

    /// Batches in `epochs` epochs.
    fn epochs(n: u32) -> usize {
        (n * EPOCH_BATCHES) as usize
    }

    #[test]
    fn it_measures_both_then_keeps_a_choice_for_an_epoch() {
        let (mut policy, mut clock) = (PausePolicy::default(), Instant::now());
        let mut choices = Vec::new();
        for _ in 0..epochs(3) {
            let pause = policy.choose(clock);
            clock += us(100);
            policy.done(1, clock);
            choices.push(pause);
        }
        let one = epochs(1);
        assert!(
            choices[..one].iter().all(|p| !p),
            "the first epoch goes at once"
        );
        assert!(
            choices[one..2 * one].iter().all(|p| *p),
            "the second pauses"
        );
        // Equal measures: not pausing is the better choice.
        assert!(
            choices[2 * one..].iter().all(|p| !p),
            "then the better choice, a whole epoch"
        );
    }

    #[test]
    fn it_pauses_when_a_pause_gathers_more_than_it_costs() {
        // Steps: a pause takes a little time and nearly doubles the batch.
        let (mut policy, mut clock) = (PausePolicy::default(), Instant::now());
        let steps = load((28, us(1100), us(10)), (16, us(1000), us(10)));
        run(&mut policy, &mut clock, epochs(16), &steps);
        let paused = run(&mut policy, &mut clock, epochs(16), &steps);
        assert_eq!(paused, epochs(16 - 16 / EXPLORE_EVERY));
    }

    #[test]
    fn it_goes_at_once_when_a_pause_costs_more_than_it_gathers() {
        // Evicted runs: the pause waits behind replays and gathers little.
        let evicted = load((22, us(3000), us(10)), (20, us(2000), us(10)));
        let paused = run_new(epochs(16), evicted);
        // The epoch that measures the pause first, and the explored ones.
        assert_eq!(paused, epochs(1 + 16 / EXPLORE_EVERY));
    }

    #[test]
    fn the_wait_a_pause_leaves_behind_counts_against_it() {
        // Bigger batches for the same time, but the writer then waits for its runs.
        let idle_after = load((26, us(2000), us(1500)), (20, us(2000), us(50)));
        let paused = run_new(epochs(16), idle_after);
        // The epoch that measures the pause first, and the explored ones.
        assert_eq!(paused, epochs(1 + 16 / EXPLORE_EVERY));
    }

    #[test]
    fn a_writer_waiting_for_work_measures_nothing() {
        let (mut policy, mut clock) = (PausePolicy::default(), Instant::now());
        run(&mut policy, &mut clock, epochs(16), |_| {
            (1, us(500), us(100_000))
        });
        assert_eq!(policy.rates, [None, None]);
    }

    #[test]
    fn it_follows_the_load_when_it_changes() {
        let (mut policy, mut clock) = (PausePolicy::default(), Instant::now());
        let gathers = load((28, us(1000), us(10)), (16, us(1000), us(10)));
        let costs = load((16, us(3000), us(10)), (16, us(1000), us(10)));
        run(&mut policy, &mut clock, epochs(16), &gathers);
        assert!(policy.better());
        run(&mut policy, &mut clock, epochs(16), &costs);
        assert!(!policy.better());
        // The pause is measured again one epoch in EXPLORE_EVERY: give it a few.
        run(&mut policy, &mut clock, epochs(8 * EXPLORE_EVERY), &gathers);
        assert!(policy.better());
    }
}
