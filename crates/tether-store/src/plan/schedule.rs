//! Schedules: what each [`ScheduleOp`] writes, and when it is refused, over the row
//! primitives of [`ScheduleBackend`]. The one rule that makes a tick fire exactly once: the
//! tick's run is created and the schedule advanced in one transaction, only while the
//! schedule (locked) still has the tick as its next one; a loser reads the moved schedule
//! after the winner's commit and is refused before writing anything.

use serde_json::Value;
use tether_core::event::RunStatus;

use crate::{
    schedule_run_id, FireTick, OpOutcome, OpRejected, OpResult, Overlap, ScheduleOp, ScheduleSpec,
    StoreError,
};

/// The columns of a schedule a fire reads (and, on shared backends, locks).
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleRow {
    /// The workflow a tick starts.
    pub workflow: String,
    /// The input of its runs.
    pub input: Value,
    /// Ticks while the previous run goes on.
    pub overlap: Overlap,
    /// Paused.
    pub paused: bool,
    /// The next tick to fire.
    pub next_tick_ms: Option<u64>,
    /// The run its latest tick started.
    pub last_run_id: Option<String>,
}

/// A backend's transaction as the schedule ops use it: a few statements of SQL each.
#[allow(async_fn_in_trait)] // generic use only: the caller's concrete future keeps its `Send`
pub trait ScheduleBackend {
    /// The schedule's row, locked until the transaction ends; `None` if there is none.
    async fn lock_schedule(&mut self, id: &str) -> Result<Option<ScheduleRow>, StoreError>;

    /// Insert a schedule, unpaused; `false` (nothing written) when the id is taken.
    async fn insert_schedule(
        &mut self,
        spec: &ScheduleSpec,
        next_tick_ms: Option<u64>,
        at_ms: u64,
    ) -> Result<bool, StoreError>;

    /// Delete a schedule; `false` if there is none.
    async fn delete_schedule(&mut self, id: &str) -> Result<bool, StoreError>;

    /// Set `paused`, and the next tick when `next_tick_ms` is given.
    async fn set_schedule_paused(
        &mut self,
        id: &str,
        paused: bool,
        next_tick_ms: Option<Option<u64>>,
        at_ms: u64,
    ) -> Result<(), StoreError>;

    /// Move the schedule to its next tick, and record `last_run_id` when given.
    async fn advance_schedule(
        &mut self,
        id: &str,
        next_tick_ms: Option<u64>,
        last_run_id: Option<&str>,
        at_ms: u64,
    ) -> Result<(), StoreError>;

    /// The status of a run (not locked), `None` if there is no such run.
    async fn run_status(&mut self, run_id: &str) -> Result<Option<RunStatus>, StoreError>;
}

/// What firing a tick does once it is granted, decided from the schedule and its last run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FirePlan {
    /// Start the run with this id.
    Start(String),
    /// No run: only the next tick moves (a skipped tick).
    Skip,
}

/// Whether `fire` may go ahead on `row` (refusals first), and whether it starts a run.
/// `last_run_status`: the status of the schedule's last run, if it has one that still exists.
pub fn plan_fire(
    row: Option<&ScheduleRow>,
    fire: &FireTick,
    last_run_status: Option<RunStatus>,
) -> Result<FirePlan, OpRejected> {
    let Some(row) = row else {
        return Err(OpRejected::ScheduleNotFound {
            id: fire.id.clone(),
        });
    };
    if row.paused || row.next_tick_ms != Some(fire.expected_tick_ms) {
        return Err(OpRejected::ScheduleMoved {
            id: fire.id.clone(),
        });
    }
    let Some(tick) = fire.run_tick_ms else {
        return Ok(FirePlan::Skip);
    };
    let busy = last_run_status.is_some_and(|s| !s.is_terminal());
    if row.overlap == Overlap::Skip && busy {
        return Ok(FirePlan::Skip);
    }
    Ok(FirePlan::Start(schedule_run_id(&fire.id, tick)))
}

/// Apply one schedule op (the executor's arm for [`crate::WriteOp::Schedule`]).
pub async fn schedule_op<B>(b: &mut B, op: &ScheduleOp) -> Result<OpResult, StoreError>
where
    B: ScheduleBackend + super::batch::BatchBackend,
{
    let not_found = |id: &str| OpRejected::ScheduleNotFound { id: id.to_owned() };
    match op {
        ScheduleOp::Create {
            spec,
            next_tick_ms,
            at_ms,
        } => Ok(if b.insert_schedule(spec, *next_tick_ms, *at_ms).await? {
            Ok(OpOutcome::Updated)
        } else {
            Err(OpRejected::ScheduleExists {
                id: spec.id.clone(),
            })
        }),
        ScheduleOp::Delete { id } => Ok(if b.delete_schedule(id).await? {
            Ok(OpOutcome::Updated)
        } else {
            Err(not_found(id))
        }),
        ScheduleOp::Pause { id, at_ms } => {
            let Some(row) = b.lock_schedule(id).await? else {
                return Ok(Err(not_found(id)));
            };
            if !row.paused {
                b.set_schedule_paused(id, true, None, *at_ms).await?;
            }
            Ok(Ok(OpOutcome::Updated))
        }
        ScheduleOp::Resume {
            id,
            next_tick_ms,
            at_ms,
        } => {
            let Some(row) = b.lock_schedule(id).await? else {
                return Ok(Err(not_found(id)));
            };
            if row.paused {
                b.set_schedule_paused(id, false, Some(*next_tick_ms), *at_ms)
                    .await?;
            }
            Ok(Ok(OpOutcome::Updated))
        }
        ScheduleOp::Fire(fire) => fire_tick(b, fire).await,
    }
}

/// [`ScheduleOp::Fire`]: see [`FireTick`].
async fn fire_tick<B>(b: &mut B, fire: &FireTick) -> Result<OpResult, StoreError>
where
    B: ScheduleBackend + super::batch::BatchBackend,
{
    let row = b.lock_schedule(&fire.id).await?;
    let last_status = match row.as_ref().and_then(|r| r.last_run_id.as_deref()) {
        Some(last) if row.as_ref().is_some_and(|r| r.overlap == Overlap::Skip) => {
            b.run_status(last).await?
        }
        _ => None,
    };
    let plan = match plan_fire(row.as_ref(), fire, last_status) {
        Ok(plan) => plan,
        Err(refused) => return Ok(Err(refused)),
    };
    let Some(row) = row else {
        return Ok(Err(OpRejected::ScheduleNotFound {
            id: fire.id.clone(),
        }));
    };
    let mut outcome = OpOutcome::Updated;
    let mut last_run = None;
    if let FirePlan::Start(run_id) = plan {
        let started = crate::run_started(row.workflow.clone(), row.input.clone(), fire.at_ms);
        // A tick's run is on the default queue (schedules name no queue).
        let queue = crate::DEFAULT_QUEUE;
        if b.insert_run(&run_id, &row.input, fire.claim.as_ref(), queue, &started)
            .await?
        {
            outcome = OpOutcome::Appended {
                run_id: run_id.clone(),
                events: vec![started],
            };
        }
        last_run = Some(run_id);
    }
    b.advance_schedule(&fire.id, fire.next_tick_ms, last_run.as_deref(), fire.at_ms)
        .await?;
    Ok(Ok(outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(overlap: Overlap, paused: bool, next: Option<u64>) -> ScheduleRow {
        ScheduleRow {
            workflow: "wf".into(),
            input: Value::Null,
            overlap,
            paused,
            next_tick_ms: next,
            last_run_id: Some("sched:s:1000".into()),
        }
    }

    fn fire(expected: u64, run: Option<u64>) -> FireTick {
        FireTick {
            id: "s".into(),
            expected_tick_ms: expected,
            run_tick_ms: run,
            next_tick_ms: Some(expected + 1000),
            claim: None,
            at_ms: expected,
        }
    }

    #[test]
    fn a_fire_goes_ahead_only_on_the_tick_it_read() {
        let r = row(Overlap::Allow, false, Some(2000));
        assert_eq!(
            plan_fire(Some(&r), &fire(2000, Some(2000)), None),
            Ok(FirePlan::Start("sched:s:2000".into()))
        );
        assert!(matches!(
            plan_fire(Some(&r), &fire(1000, Some(1000)), None),
            Err(OpRejected::ScheduleMoved { .. })
        ));
        let paused = row(Overlap::Allow, true, Some(2000));
        assert!(matches!(
            plan_fire(Some(&paused), &fire(2000, Some(2000)), None),
            Err(OpRejected::ScheduleMoved { .. })
        ));
        assert!(matches!(
            plan_fire(None, &fire(2000, Some(2000)), None),
            Err(OpRejected::ScheduleNotFound { .. })
        ));
        assert_eq!(
            plan_fire(Some(&r), &fire(2000, None), None),
            Ok(FirePlan::Skip)
        );
    }

    #[test]
    fn skip_overlap_skips_while_the_last_run_goes_on() {
        let skip = row(Overlap::Skip, false, Some(2000));
        let allow = row(Overlap::Allow, false, Some(2000));
        let f = fire(2000, Some(2000));
        assert_eq!(
            plan_fire(Some(&skip), &f, Some(RunStatus::Running)),
            Ok(FirePlan::Skip)
        );
        assert_eq!(
            plan_fire(Some(&skip), &f, Some(RunStatus::Completed)),
            Ok(FirePlan::Start("sched:s:2000".into()))
        );
        assert_eq!(
            plan_fire(Some(&allow), &f, Some(RunStatus::Running)),
            Ok(FirePlan::Start("sched:s:2000".into()))
        );
    }
}
