//! Check a stored run against the current code without touching it: `tether replay RUN_ID`.
//!
//! [`check_run`] reads the run, its journal and its active hooks (reads only: no claim, no
//! write), replays the journal through [`RunMachine`] with the workflow the registry has under
//! the run's name, and reports whether the code reproduces what the journal recorded. A hook
//! thread of the run is checked the same way, with its own journal. Steps the replay would
//! run and records it would append are dropped: nothing is executed, nothing is stored.

use std::fmt;
use std::sync::Arc;

use tether_core::{
    redact_token, Event, EventBody, Progress, Registry, ReplayError, RunMachine, RunStatus,
};
use tether_store::{RunRecord, Store, StoreError};

use crate::system_env::SystemEnvironment;

/// Why a run could not be checked at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// No run has this id.
    #[error("run not found: {run_id}")]
    RunNotFound {
        /// The id asked for.
        run_id: String,
    },
    /// The run's workflow is not in the registry the check uses.
    #[error("workflow {workflow:?} of run {run_id} is not registered here (known: {known})")]
    WorkflowNotRegistered {
        /// The run (or hook thread).
        run_id: String,
        /// Its workflow.
        workflow: String,
        /// The registered names.
        known: String,
    },
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How the current code fares against one stored journal.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// The code reproduces the journal. For a run still going: what it waits on.
    Reproduced {
        /// What the replayed run waits on (empty for an ended run).
        waiting_on: Vec<String>,
    },
    /// The code and the journal disagree; the error names the position.
    Diverged(ReplayError),
}

/// The result of checking one run (and its hook threads).
#[derive(Clone, Debug, PartialEq)]
pub struct RunCheck {
    /// The run.
    pub run_id: String,
    /// Its workflow.
    pub workflow: String,
    /// Its stored status.
    pub status: RunStatus,
    /// The error stored on it, if any (e.g. a non-determinism error that blocks it).
    pub stored_error: Option<String>,
    /// Journal entries replayed.
    pub entries: usize,
    /// What the replay found.
    pub verdict: Verdict,
    /// The run's hook threads, each checked against its own journal.
    pub threads: Vec<RunCheck>,
}

impl RunCheck {
    /// Whether the run and all its threads are reproduced by the current code.
    pub fn is_ok(&self) -> bool {
        matches!(self.verdict, Verdict::Reproduced { .. }) && self.threads.iter().all(Self::is_ok)
    }
}

impl fmt::Display for RunCheck {
    /// `ok: N events replayed, run is suspended, waiting on ...` or
    /// `run X (workflow): <non-determinism error>`; one line per thread after it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.verdict {
            Verdict::Reproduced { waiting_on } => {
                write!(
                    f,
                    "ok: {} events replayed, run is {}",
                    self.entries,
                    self.status.as_str()
                )?;
                if !waiting_on.is_empty() {
                    write!(f, ", waiting on {}", waiting_on.join(", "))?;
                }
            }
            Verdict::Diverged(e) => write!(
                f,
                "run {} ({}, {}): {e}",
                self.run_id,
                self.workflow,
                self.status.as_str()
            )?,
        }
        if let Some(err) = &self.stored_error {
            write!(f, " (stored error: {err})")?;
        }
        for t in &self.threads {
            write!(f, "\n  thread {}: {t}", t.run_id)?;
        }
        Ok(())
    }
}

/// Check run `run_id` (and its hook threads) in `store` against the workflows of `registry`.
/// Only reads the store.
pub async fn check_run(
    store: &dyn Store,
    registry: &Registry,
    run_id: &str,
) -> Result<RunCheck, CheckError> {
    let run = store
        .get_run(run_id)
        .await?
        .ok_or_else(|| CheckError::RunNotFound {
            run_id: run_id.to_string(),
        })?;
    let mut check = check_one(store, registry, &run).await?;
    for thread in store.list_threads(run_id).await? {
        if thread.run_id != run.run_id {
            check
                .threads
                .push(check_one(store, registry, &thread).await?);
        }
    }
    Ok(check)
}

async fn check_one(
    store: &dyn Store,
    registry: &Registry,
    run: &RunRecord,
) -> Result<RunCheck, CheckError> {
    let journal = store.load_journal(&run.run_id, 0).await?;
    let workflow_name = match journal.first().map(|e| &e.body) {
        Some(EventBody::RunStarted { workflow, .. }) => workflow.clone(),
        _ => run.workflow.clone(),
    };
    let Some(workflow) = registry.get(&workflow_name) else {
        return Err(CheckError::WorkflowNotRegistered {
            run_id: run.run_id.clone(),
            workflow: workflow_name,
            known: registry.workflow_names().join(", "),
        });
    };
    let env = Arc::new(SystemEnvironment::default());
    let verdict = match RunMachine::replay(&run.run_id, workflow.as_ref(), env, &journal) {
        Err(e) => Verdict::Diverged(e),
        Ok((mut machine, progress)) => {
            // Whatever the code would do next is not done: no step runs, nothing is appended.
            let _ = machine.take_step_tasks();
            let _ = machine.take_outbox();
            match ending(&journal, &progress) {
                Some(e) => Verdict::Diverged(e),
                None => Verdict::Reproduced {
                    waiting_on: waiting_on(store, run, &machine, &progress).await?,
                },
            }
        }
    };
    Ok(RunCheck {
        run_id: run.run_id.clone(),
        workflow: workflow_name,
        status: run.status,
        stored_error: run.error.as_ref().map(|e| e.to_string()),
        entries: journal.len(),
        verdict,
        threads: Vec::new(),
    })
}

/// A journal that ends the run must be ended the same way by the code.
fn ending(journal: &[Event], progress: &Progress) -> Option<ReplayError> {
    let last = journal.last().filter(|e| e.body.is_terminal())?;
    let code_end = match progress {
        Progress::Finished(body) => body.kind(),
        Progress::Waiting => "still running",
    };
    (code_end != last.body.kind()).then(|| ReplayError::Unexpected {
        seq: last.seq,
        message: format!(
            "the journal ends the run with {}, but the code now ends it with {code_end}",
            last.body.kind()
        ),
    })
}

/// What a replayed, unfinished run waits on: its active hooks (tokens shortened: they are
/// credentials), timers, steps and unfinished child runs.
async fn waiting_on(
    store: &dyn Store,
    run: &RunRecord,
    machine: &RunMachine,
    progress: &Progress,
) -> Result<Vec<String>, CheckError> {
    if matches!(progress, Progress::Finished(_)) || run.status.is_terminal() {
        return Ok(Vec::new());
    }
    let mut out: Vec<String> = store
        .list_hooks(&run.run_id)
        .await?
        .iter()
        .map(|h| format!("{} {}", h.kind, redact_token(&h.token)))
        .collect();
    for d in machine.pending_deadlines() {
        let what = match d.entry {
            EventBody::HookExpired { .. } => "hook expiry",
            _ => "timer",
        };
        out.push(format!(
            "{what} #{} due at {}",
            d.cmd,
            tether_core::time_fmt::rfc3339_s(d.at_ms)
        ));
    }
    match machine.steps_in_flight() {
        0 => {}
        1 => out.push("1 step".into()),
        n => out.push(format!("{n} steps")),
    }
    for child in store.list_children(&run.run_id).await? {
        if !child.status.is_terminal() {
            out.push(format!("child run {} ({})", child.run_id, child.workflow));
        }
    }
    Ok(out)
}
