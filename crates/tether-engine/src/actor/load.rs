//! Loading a live run: claiming it (or taking the seed of a run this node just started),
//! reading its journal and rebuilding it by replay; and blocking a run whose code and journal
//! disagree.

use std::sync::Arc as StdArc;

use tether_core::{ErasedWorkflow, Event, EventBody, Progress, RunMachine, RunStatus};
use tether_store::{Fence, OpOutcome, OpRejected, WriteOp};
use tracing::{info_span, warn};

use super::{Actor, Exit};
use crate::new_runs::Seed;

impl Actor {
    /// The run's whole journal, from the store.
    pub(super) async fn read_journal(&self) -> Result<Vec<Event>, Exit> {
        self.inner
            .store
            .load_journal(&self.run_id, 0)
            .await
            .map_err(Exit::from)
    }

    /// Load and claim the run (unless it was claimed for this actor already): its workflow
    /// and journal. `Ok(None)`: nothing to run.
    pub(super) async fn load(
        &mut self,
    ) -> Result<Option<(StdArc<dyn ErasedWorkflow>, Vec<Event>)>, Exit> {
        if let Some(seed) = self.inner.new_runs.take_seed(&self.run_id) {
            return self.load_seeded(seed).await;
        }
        let inner = &self.inner;
        // Claimed already (by the commit that made the run live): the run and its journal are
        // read together. Otherwise the journal is read once the claim is made (below).
        let loaded = if self.fence.is_some() {
            let run = inner.store.load_run(&self.run_id).await;
            run.map(|found| found.map(|(record, journal)| (record, Some(journal))))
        } else {
            let run = inner.store.get_run(&self.run_id).await;
            run.map(|found| found.map(|record| (record, None)))
        };
        let Some((record, journal)) = loaded.map_err(Exit::from)? else {
            return Ok(None);
        };
        if record.status.is_terminal() {
            return Ok(None);
        }
        let Some(workflow) = inner.registry.get(&record.workflow) else {
            let err = tether_core::ErrorInfo::new(
                "workflow_not_registered",
                format!(
                    "workflow {:?} is not registered on this worker; the run waits for a worker that has it",
                    record.workflow
                ),
            );
            return Err(self.block(err).await);
        };
        if self.fence.is_none() {
            self.claim(&record).await?;
        }
        // Read the journal after the claim: nothing can be appended by a previous owner since.
        let journal = match journal {
            Some(journal) => journal,
            None => self
                .inner
                .store
                .load_journal(&self.run_id, 0)
                .await
                .map_err(Exit::from)?,
        };
        self.status_sent = Some(record.status);
        self.wake_sent = Some(record.wake_at_ms);
        self.parent = record.parent_run_id;
        Ok(Some((workflow, journal)))
    }

    /// Claim the run (`record`: as read before), or the reason not to run it here.
    async fn claim(&mut self, record: &tether_store::RunRecord) -> Result<(), Exit> {
        let inner = &self.inner;
        if !inner.queue_policy.serves(&record.queue) {
            // The claim would be refused (`NotServed`): leave the run to a node serving its
            // queue without writing anything.
            return Err(Exit::NotMine);
        }
        let now = self.inner.now_ms();
        let claim = WriteOp::Claim {
            run_id: self.run_id.clone(),
            node: inner.node_id.clone(),
            lease_until_ms: now + inner.config.lease.as_millis() as u64,
            now_ms: now,
            queues: inner.queue_policy.clone(),
        };
        match inner.writer.write(claim).await {
            Ok(Ok(OpOutcome::Claimed { epoch })) => {
                if record.owner.as_ref().is_some_and(|o| *o != inner.node_id) {
                    inner.metrics.lease_taken_over();
                }
                self.fence = Some(Fence {
                    node: inner.node_id.clone(),
                    epoch,
                });
            }
            Ok(Err(OpRejected::Owned { .. })) => return Err(Exit::NotMine),
            // Not admitted (yet): the run waits, unclaimed, until the poller finds a slot
            // (or a node serving its queue takes it).
            Ok(Err(
                OpRejected::NotServed { .. }
                | OpRejected::QueueFull { .. }
                | OpRejected::QueueRate { .. },
            )) => return Err(Exit::NotMine),
            // Ended (or gone) since it was read: nothing to run.
            Ok(Err(OpRejected::RunFinished { .. } | OpRejected::RunNotFound { .. })) => {
                return Err(Exit::Done)
            }
            Ok(other) => return Err(Exit::Failed(format!("claim answered {other:?}"))),
            Err(e) => return Err(Exit::from(e)),
        }
        Ok(())
    }

    /// Rebuild the run by replaying `journal`; a journal the code disagrees with blocks it.
    pub(super) async fn rebuild(
        &mut self,
        workflow: &dyn ErasedWorkflow,
        journal: &[Event],
    ) -> Result<Option<(RunMachine, Progress)>, Exit> {
        let replay = {
            let _span = info_span!("replay", entries = journal.len()).entered();
            RunMachine::replay(&self.run_id, workflow, self.inner.env.clone(), journal)
        };
        match replay {
            Ok(x) => Ok(Some(x)),
            Err(e) => {
                warn!(run_id = %self.run_id, error = %e, "replay failed");
                Err(self.block(e.to_info()).await)
            }
        }
    }

    /// Build a run this node just created, claimed and marked running in one commit (see
    /// `start.rs`): its journal is the `RunStarted` entry that commit wrote, so nothing is read.
    async fn load_seeded(
        &mut self,
        seed: Seed,
    ) -> Result<Option<(StdArc<dyn ErasedWorkflow>, Vec<Event>)>, Exit> {
        let EventBody::RunStarted { workflow, .. } = &seed.started.body else {
            return Err(Exit::Failed(
                "a run's seed does not start with RunStarted".into(),
            ));
        };
        let Some(workflow) = self.inner.registry.get(workflow) else {
            // `start_run` checked it; only a seed of another engine could get here.
            return Err(Exit::Failed(format!(
                "workflow {workflow:?} is not registered"
            )));
        };
        self.fence = Some(seed.fence);
        self.status_sent = Some(RunStatus::Running);
        self.wake_sent = Some(None);
        Ok(Some((workflow, vec![seed.started])))
    }

    pub(super) async fn block(&self, error: tether_core::ErrorInfo) -> Exit {
        let op = WriteOp::MarkBlocked {
            run_id: self.run_id.clone(),
            error,
            fence: self.fence.clone(),
            at_ms: self.inner.now_ms(),
        };
        match self.inner.writer.write(op).await {
            Ok(Err(OpRejected::Fenced { .. })) => Exit::NotMine,
            Ok(_) => Exit::Blocked,
            Err(e) => Exit::from(e),
        }
    }
}
