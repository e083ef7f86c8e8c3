//! A live run's writes: new command records, status and wake-up changes in one append,
//! carrying the actor's fence.

use tether_core::{EventBody, RunMachine, RunStatus};
use tether_store::{OpRejected, WakeAt, WriteOp};

use super::{Actor, Exit};

impl Actor {
    /// Write new command records and status changes, if any, in one append.
    pub(super) async fn flush(&mut self, machine: &mut RunMachine) -> Result<(), Exit> {
        let events = machine.take_outbox();
        if self
            .result_after
            .is_some_and(|before| machine.last_seq() > before)
        {
            self.result_after = None;
        }
        let status = if self.steps.is_empty() && self.result_after.is_none() {
            RunStatus::Suspended
        } else {
            RunStatus::Running
        };
        // Timers and hook expiries alike wake the run (the poller finds it by `wake_at` after
        // a restart or an eviction).
        let wake = machine.pending_deadlines().first().map(|d| d.at_ms);
        let status_change = (self.status_sent != Some(status)).then_some(status);
        let wake_change = if self.wake_sent != Some(wake) {
            WakeAt::Set(wake)
        } else {
            WakeAt::Keep
        };
        if events.is_empty() && status_change.is_none() && wake_change == WakeAt::Keep {
            return Ok(());
        }
        self.append(events, status_change, wake_change).await?;
        self.status_sent = Some(status);
        self.wake_sent = Some(wake);
        Ok(())
    }

    pub(super) async fn append(
        &self,
        events: Vec<EventBody>,
        status: Option<RunStatus>,
        wake_at: WakeAt,
    ) -> Result<(), Exit> {
        let op = WriteOp::Append {
            run_id: self.run_id.clone(),
            events,
            status,
            wake_at,
            fence: self.fence.clone(),
            at_ms: self.inner.now_ms(),
        };
        match self.inner.writer.write(op).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(OpRejected::Fenced { .. })) => Err(Exit::NotMine),
            Ok(Err(OpRejected::RunFinished { .. } | OpRejected::RunNotFound { .. })) => {
                Err(Exit::Done)
            }
            Ok(Err(other)) => Err(Exit::Failed(other.to_string())),
            Err(e) => Err(Exit::from(e)),
        }
    }
}
