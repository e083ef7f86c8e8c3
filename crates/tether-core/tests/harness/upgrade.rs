//! Deploying new code under a waiting run: [`Sim::redeploy`] rebuilds the machine from the
//! journal with another workflow function, as an engine restarted with new code does.

use std::sync::Arc;

use tether_core::{ErasedWorkflow, Progress, ReplayError, RunMachine};

use super::Sim;

impl Sim {
    /// Replace the run's code with `workflow` and rebuild its machine from the whole journal
    /// (a restart with the new code). Later deliveries go to the new machine.
    pub fn redeploy(&mut self, workflow: &Arc<dyn ErasedWorkflow>) -> Result<(), ReplayError> {
        let (mut machine, progress) = RunMachine::replay(
            &self.run_id,
            workflow.as_ref(),
            self.env.clone(),
            &self.journal,
        )?;
        self.queued_steps = machine.take_step_tasks();
        self.workflow = workflow.clone();
        self.machine = machine;
        self.progress = progress;
        Ok(())
    }

    /// For a journal written by two versions of the code: the current code replays it all to
    /// the recorded end, and every prefix from `from` entries on to the state the live run had.
    pub fn check_replays_from(&self, from: usize) {
        self.check_full_replay();
        for n in from..self.journal.len() {
            let r = self.replay_prefix(n).unwrap_or_else(|e| {
                panic!("replaying the first {n} entries failed: {e}\n{self:?}")
            });
            let live: &Progress = &self.snapshots[n - 1].progress;
            assert_eq!(&r.progress, live, "after replaying {n} entries\n{self:?}");
        }
    }
}
