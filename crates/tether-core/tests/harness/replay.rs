//! Rebuilding a machine from a journal outside a [`Sim`](super::Sim): [`Replayed`] and the
//! [`replay`] family.

use std::sync::Arc;

use tether_core::{ErasedWorkflow, Event, EventBody, Progress, ReplayError, RunMachine, StepTask};

use super::{SimEnv, RUN_ID, START_MS};

/// A machine rebuilt by replay, with what it asked for right away.
#[derive(Debug)]
pub struct Replayed {
    /// The machine, positioned after the last replayed entry.
    pub machine: RunMachine,
    /// Where the run stands.
    pub progress: Progress,
    /// Records it wants appended (commands issued past the end of the replayed journal).
    pub outbox: Vec<EventBody>,
    /// Steps it wants run (issued, with no result in the replayed journal).
    pub step_tasks: Vec<StepTask>,
    /// Its environment.
    pub env: Arc<SimEnv>,
}

/// Replay `journal` with `workflow` on a worker whose clock reads the last entry's commit time.
pub fn replay(
    workflow: &Arc<dyn ErasedWorkflow>,
    journal: &[Event],
) -> Result<Replayed, ReplayError> {
    let at_ms = journal.last().map_or(START_MS, |e| e.at_ms);
    replay_with_env(workflow, journal, SimEnv::new(at_ms))
}

/// [`replay`] for run `run_id` (a hook thread's id is part of what it computes).
pub fn replay_run(
    run_id: &str,
    workflow: &Arc<dyn ErasedWorkflow>,
    journal: &[Event],
) -> Result<Replayed, ReplayError> {
    let at_ms = journal.last().map_or(START_MS, |e| e.at_ms);
    replay_run_with_env(run_id, workflow, journal, SimEnv::new(at_ms))
}

/// Replay `journal` with `workflow` in the given environment.
pub fn replay_with_env(
    workflow: &Arc<dyn ErasedWorkflow>,
    journal: &[Event],
    env: Arc<SimEnv>,
) -> Result<Replayed, ReplayError> {
    replay_run_with_env(RUN_ID, workflow, journal, env)
}

/// [`replay_with_env`] for run `run_id`.
pub fn replay_run_with_env(
    run_id: &str,
    workflow: &Arc<dyn ErasedWorkflow>,
    journal: &[Event],
    env: Arc<SimEnv>,
) -> Result<Replayed, ReplayError> {
    let (mut machine, progress) =
        RunMachine::replay(run_id, workflow.as_ref(), env.clone(), journal)?;
    let outbox = machine.take_outbox();
    let step_tasks = machine.take_step_tasks();
    Ok(Replayed {
        machine,
        progress,
        outbox,
        step_tasks,
        env,
    })
}
