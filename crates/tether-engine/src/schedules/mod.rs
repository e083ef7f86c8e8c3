//! Durable cron schedules: each tick of a schedule starts exactly one run of its workflow,
//! whichever nodes are up, across restarts.
//!
//! - `cron.rs`: the expression (5 fields, or 6 with seconds first) in its IANA time zone;
//! - `ticker.rs`: the background task every node runs, firing due ticks through the writer;
//! - this file: the engine's methods to create, read, list, delete, pause and resume them.
//!
//! Exactly once per tick needs no cluster protocol: a tick's run id is derived from the
//! schedule and the tick ([`tether_store::schedule_run_id`]) and the run is created in the
//! transaction that moves the schedule to its next tick, only while the schedule still has
//! that tick as its next one (`tether_store::plan::schedule`).

mod cron;
mod ticker;

pub use tether_store::{CatchUp, Overlap, ScheduleRecord, ScheduleSpec};
use tether_store::{ScheduleOp, WriteOp};

use crate::engine::Engine;
use crate::error::EngineError;
pub(crate) use ticker::{ticker_loop, Ticker};

/// Longest schedule id.
pub const MAX_SCHEDULE_ID_LEN: usize = 128;

/// What [`Engine::create_schedule`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct CreatedSchedule {
    /// The schedule as stored.
    pub schedule: ScheduleRecord,
    /// `true` if this call created it, `false` if it existed already with the same settings
    /// (a repeated create).
    pub created: bool,
}

/// Whether `id` is a schedule id: 1 to [`MAX_SCHEDULE_ID_LEN`] ASCII letters, digits and
/// `-_.:` (it appears in URLs and in the ids of the runs it starts).
pub fn valid_schedule_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_SCHEDULE_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

impl Engine {
    /// Create a schedule: from now on, each tick of `spec.cron` (in `spec.timezone`) starts
    /// one run of `spec.workflow` with `spec.input`, with the id
    /// `sched:{id}:{tick_ms}`. Refused, storing nothing, with
    /// [`EngineError::InvalidSchedule`] (id, expression or zone; the message says what to
    /// fix), [`EngineError::WorkflowNotFound`], [`EngineError::InvalidInput`], and
    /// [`EngineError::ScheduleExists`] when the id is taken by a schedule with other
    /// settings (the same settings answer with that schedule: a retried create is harmless).
    pub async fn create_schedule(
        &self,
        spec: ScheduleSpec,
    ) -> Result<CreatedSchedule, EngineError> {
        self.alive()?;
        if !valid_schedule_id(&spec.id) {
            return Err(EngineError::InvalidSchedule {
                message: format!(
                    "schedule id {:?} must be 1 to {MAX_SCHEDULE_ID_LEN} characters among \
                     letters, digits and - _ . :",
                    spec.id
                ),
            });
        }
        let ticks = cron::CronTicks::parse(&spec.cron, &spec.timezone)
            .map_err(|message| EngineError::InvalidSchedule { message })?;
        let Some(wf) = self.inner.registry.get(&spec.workflow) else {
            return Err(EngineError::WorkflowNotFound {
                name: spec.workflow.clone(),
                known: self.inner.registry.workflow_names().join(", "),
            });
        };
        self.check_size(&spec.input)?;
        wf.check_input(&spec.input)
            .map_err(|message| EngineError::InvalidInput {
                workflow: spec.workflow.clone(),
                message,
            })?;
        let now = self.inner.now_ms();
        let op = WriteOp::Schedule(ScheduleOp::Create {
            spec: spec.clone(),
            next_tick_ms: ticks.next_after(now),
            at_ms: now,
        });
        let created = match self.inner.writer.write(op).await? {
            Ok(_) => true,
            Err(tether_store::OpRejected::ScheduleExists { .. }) => false,
            Err(other) => return Err(other.into()),
        };
        let schedule = self.get_schedule(&spec.id).await?;
        if !created && schedule.spec != spec {
            return Err(EngineError::ScheduleExists { id: spec.id });
        }
        self.inner.ticker.poke(&self.inner.activity);
        Ok(CreatedSchedule { schedule, created })
    }

    /// One schedule; [`EngineError::ScheduleNotFound`] if there is none.
    pub async fn get_schedule(&self, id: &str) -> Result<ScheduleRecord, EngineError> {
        let found = if crate::engine::plausible(id) {
            self.inner.store.get_schedule(id).await?
        } else {
            None
        };
        found.ok_or_else(|| EngineError::ScheduleNotFound { id: id.to_owned() })
    }

    /// Every schedule, by id.
    pub async fn list_schedules(&self) -> Result<Vec<ScheduleRecord>, EngineError> {
        Ok(self.inner.store.list_schedules().await?)
    }

    /// Delete a schedule: no more ticks. The runs it started stay (and a running one goes on).
    pub async fn delete_schedule(&self, id: &str) -> Result<(), EngineError> {
        self.alive()?;
        self.get_schedule(id).await?;
        let op = WriteOp::Schedule(ScheduleOp::Delete { id: id.to_owned() });
        self.inner.writer.write(op).await??;
        self.inner.ticker.poke(&self.inner.activity);
        Ok(())
    }

    /// Pause a schedule: no tick fires until it is resumed (a no-op if paused).
    pub async fn pause_schedule(&self, id: &str) -> Result<ScheduleRecord, EngineError> {
        self.alive()?;
        self.get_schedule(id).await?;
        let op = WriteOp::Schedule(ScheduleOp::Pause {
            id: id.to_owned(),
            at_ms: self.inner.now_ms(),
        });
        self.inner.writer.write(op).await??;
        self.inner.ticker.poke(&self.inner.activity);
        self.get_schedule(id).await
    }

    /// Resume a paused schedule from its next tick after now: the ticks that passed while it
    /// was paused do not fire (a no-op if it is not paused).
    pub async fn resume_schedule(&self, id: &str) -> Result<ScheduleRecord, EngineError> {
        self.alive()?;
        let schedule = self.get_schedule(id).await?;
        let ticks = cron::CronTicks::parse(&schedule.spec.cron, &schedule.spec.timezone)
            .map_err(|message| EngineError::InvalidSchedule { message })?;
        let now = self.inner.now_ms();
        let op = WriteOp::Schedule(ScheduleOp::Resume {
            id: id.to_owned(),
            next_tick_ms: ticks.next_after(now),
            at_ms: now,
        });
        self.inner.writer.write(op).await??;
        self.inner.ticker.poke(&self.inner.activity);
        self.get_schedule(id).await
    }
}
