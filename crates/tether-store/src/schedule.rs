//! Durable cron schedules: what the store keeps of a schedule ([`ScheduleRecord`]) and the
//! writes that change one ([`ScheduleOp`], inside [`crate::WriteOp::Schedule`]).
//!
//! The store knows nothing of cron: the engine computes every tick instant and hands it in.
//! What the store guarantees is *exactly one run per tick*: a tick's run has the id
//! [`schedule_run_id`] (the schedule id and the tick instant), and firing it advances the
//! schedule's `next_tick_ms` with a compare-and-set on the old value, in the same
//! transaction as creating the run. Two nodes firing the same tick: one creates the run, the
//! other is refused ([`crate::OpRejected::ScheduleMoved`]) and writes nothing.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::FirstClaim;

/// The prefix of every run id a schedule starts (`sched:{schedule_id}:{tick_ms}`); run ids
/// chosen by callers may not start with it.
pub const SCHEDULE_RUN_PREFIX: &str = "sched:";

/// The id of the run `schedule_id` starts for the tick at `tick_ms` (ms since the Unix
/// epoch): the same on every node and after every restart.
pub fn schedule_run_id(schedule_id: &str, tick_ms: u64) -> String {
    format!("{SCHEDULE_RUN_PREFIX}{schedule_id}:{tick_ms}")
}

/// The schedule that started `run_id` and the tick it was started for, if the id is one a
/// schedule gives ([`schedule_run_id`]).
pub fn schedule_of(run_id: &str) -> Option<(&str, u64)> {
    let rest = run_id.strip_prefix(SCHEDULE_RUN_PREFIX)?;
    let (id, tick) = rest.rsplit_once(':')?;
    if id.is_empty() || tick.is_empty() || !tick.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((id, tick.parse().ok()?))
}

/// What happens to a tick while the schedule's previous run has not ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Overlap {
    /// The tick is skipped (no run), the schedule moves on to its next tick. The default.
    #[default]
    Skip,
    /// The tick starts its run anyway: runs of one schedule may overlap.
    Allow,
}

/// What happens to ticks no node fired on time (every node was down).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// The latest missed tick runs once; older missed ticks are skipped. The default.
    #[default]
    One,
    /// Missed ticks are skipped: the schedule moves on to its next tick in the future.
    Skip,
}

macro_rules! names {
    ($t:ty { $($v:ident = $s:literal),+ }) => {
        impl $t {
            /// The name stored and shown.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),+ }
            }

            /// The value named `s`, if any.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$v),)+ _ => None }
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
names!(Overlap { Skip = "skip", Allow = "allow" });
names!(CatchUp { One = "one", Skip = "skip" });

/// What a schedule is, as its creator gave it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleSpec {
    /// The schedule id (the engine checks its spelling).
    pub id: String,
    /// The workflow each tick starts.
    pub workflow: String,
    /// The cron expression (5 fields, or 6 with seconds first; the engine checks it).
    pub cron: String,
    /// The IANA time zone the expression is read in (`UTC`, `Europe/Paris`).
    pub timezone: String,
    /// The input of every run it starts.
    pub input: Value,
    /// Ticks while the previous run goes on.
    pub overlap: Overlap,
    /// Ticks no node fired on time.
    pub catch_up: CatchUp,
}

/// A schedule as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleRecord {
    /// What it is.
    pub spec: ScheduleSpec,
    /// Paused: no tick fires until it is resumed.
    pub paused: bool,
    /// The next tick to fire, ms since the Unix epoch; `None` when the expression has no
    /// further instant.
    pub next_tick_ms: Option<u64>,
    /// The run its latest fired tick started (or found already started), if any.
    pub last_run_id: Option<String>,
    /// Creation time, ms since the Unix epoch.
    pub created_at_ms: u64,
    /// Last change (created, fired, paused, resumed), ms since the Unix epoch.
    pub updated_at_ms: u64,
}

/// A write to schedules (see [`crate::WriteOp::Schedule`]).
#[derive(Clone, Debug, PartialEq)]
pub enum ScheduleOp {
    /// Create a schedule, unpaused, whose first tick is `next_tick_ms`. Refused with
    /// [`crate::OpRejected::ScheduleExists`] if the id is taken (whatever its spec).
    /// Outcome: [`crate::OpOutcome::Updated`].
    Create {
        /// The schedule.
        spec: ScheduleSpec,
        /// Its first tick.
        next_tick_ms: Option<u64>,
        /// Commit time.
        at_ms: u64,
    },
    /// Delete a schedule; the runs it started stay. Refused with `ScheduleNotFound`.
    /// Outcome: `Updated`.
    Delete {
        /// The schedule id.
        id: String,
    },
    /// Pause a schedule (a no-op if it is paused). Refused with `ScheduleNotFound`.
    /// Outcome: `Updated`.
    Pause {
        /// The schedule id.
        id: String,
        /// Commit time.
        at_ms: u64,
    },
    /// Unpause a schedule with its next tick set to `next_tick_ms` (the ticks while it was
    /// paused do not fire); a no-op on an unpaused one. Refused with `ScheduleNotFound`.
    /// Outcome: `Updated`.
    Resume {
        /// The schedule id.
        id: String,
        /// Its next tick from now on.
        next_tick_ms: Option<u64>,
        /// Commit time.
        at_ms: u64,
    },
    /// Fire the schedule's tick `expected_tick_ms`; see [`FireTick`].
    Fire(FireTick),
}

/// Fire one due tick of a schedule: refused with `ScheduleNotFound`, and with
/// `ScheduleMoved` (writing nothing) unless the schedule is unpaused and its `next_tick_ms`
/// is still `expected_tick_ms` (another node fired it, or it was paused or resumed since).
/// Otherwise, in one transaction:
///
/// - with `run_tick_ms`, the run [`schedule_run_id`]`(id, run_tick_ms)` of the schedule's
///   workflow and input is created as [`crate::WriteOp::CreateRun`] does (with `claim`) —
///   unless the schedule's overlap is [`Overlap::Skip`] and its last run exists and has not
///   ended (the tick is skipped), or a run with that id exists already (the tick's run was
///   started before, e.g. by a deleted schedule of the same id: no second run);
/// - the schedule's `next_tick_ms` becomes `next_tick_ms`, and its `last_run_id` the run's id
///   when there is one.
///
/// Outcome: [`crate::OpOutcome::Appended`] with the new run's `RunStarted` when a run was
/// created, else `Updated`.
#[derive(Clone, Debug, PartialEq)]
pub struct FireTick {
    /// The schedule id.
    pub id: String,
    /// The tick being fired: the schedule's `next_tick_ms` as the firing node read it.
    pub expected_tick_ms: u64,
    /// The tick whose run to start (`expected_tick_ms`, or a later missed one with
    /// [`CatchUp::One`]); `None` skips the ticks up to `next_tick_ms` without a run.
    pub run_tick_ms: Option<u64>,
    /// The schedule's next tick after this one.
    pub next_tick_ms: Option<u64>,
    /// Create the run claimed by the node that will run it.
    pub claim: Option<FirstClaim>,
    /// Commit time.
    pub at_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tick_run_id_names_its_schedule_and_tick() {
        let id = schedule_run_id("nightly:eu", 1_735_689_600_000);
        assert_eq!(id, "sched:nightly:eu:1735689600000");
        assert_eq!(schedule_of(&id), Some(("nightly:eu", 1_735_689_600_000)));
        assert_eq!(schedule_of("sched::12"), None);
        assert_eq!(schedule_of("sched:x:"), None);
        assert_eq!(schedule_of("sched:x:1a"), None);
        assert_eq!(schedule_of("0192-uuid"), None);
    }

    #[test]
    fn names_round_trip() {
        for o in [Overlap::Skip, Overlap::Allow] {
            assert_eq!(Overlap::parse(o.as_str()), Some(o));
        }
        for c in [CatchUp::One, CatchUp::Skip] {
            assert_eq!(CatchUp::parse(c.as_str()), Some(c));
        }
        assert_eq!(Overlap::parse("never"), None);
    }
}
