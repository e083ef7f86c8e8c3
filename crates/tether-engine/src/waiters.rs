//! Callers waiting for news of a run: [`crate::Engine::wait_for_run`] (for its end) and a
//! manual webhook's request (for the reply, see `responses.rs`). A waiter is a one-shot woken
//! when the run ends on this node or its journal grows on another one; the woken caller reads
//! the store again and, if it must go on waiting, adds itself again.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tether_store::{Ending, RunRecord};
use tokio::sync::oneshot;

/// How a run ended, as this node's commit of its ending wrote it: a woken caller that read the
/// run before brings its copy up to date with it instead of reading the run again.
#[derive(Debug)]
pub(crate) struct Ended {
    /// The status, output and error written.
    pub(crate) ending: Ending,
    /// The journal's last entry.
    pub(crate) last_seq: u64,
    /// The commit time (the run's `updated_at`).
    pub(crate) at_ms: u64,
}

impl Ended {
    /// `run` as the store has it after this ending (what `finish_run` writes in both backends:
    /// the ending's columns, `wake_at` and the lease cleared).
    pub(crate) fn apply_to(&self, mut run: RunRecord) -> RunRecord {
        run.status = self.ending.status;
        run.output = self.ending.output.clone();
        run.error = self.ending.error.clone();
        run.last_seq = self.last_seq;
        run.updated_at_ms = self.at_ms;
        run.wake_at_ms = None;
        run.owner = None;
        run
    }
}

/// What a waiter is woken with: the run's ending when this node committed it, else nothing
/// (read the run again).
pub(crate) type Wake = Option<Arc<Ended>>;

/// The callers waiting on each run, by run id.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    by_run: Mutex<HashMap<String, Vec<oneshot::Sender<Wake>>>>,
}

impl Waiters {
    /// A waiter woken when `run_id` ends or its journal grows (see [`Waiters::wake`]).
    pub(crate) fn add(&self, run_id: &str) -> oneshot::Receiver<Wake> {
        let (tx, rx) = oneshot::channel();
        let mut waiters = self.by_run.lock();
        let list = waiters.entry(run_id.to_string()).or_default();
        list.retain(|w| !w.is_closed()); // waiters that timed out before
        list.push(tx);
        rx
    }

    /// Forget the closed waiters of `run_id`, and its entry if nobody else waits.
    pub(crate) fn drop_closed(&self, run_id: &str) {
        let mut waiters = self.by_run.lock();
        if let Some(list) = waiters.get_mut(run_id) {
            list.retain(|w| !w.is_closed());
            if list.is_empty() {
                waiters.remove(run_id);
            }
        }
    }

    /// Wake everyone waiting on the run: they read it again, and wait on if they must.
    pub(crate) fn wake(&self, run_id: &str) {
        self.wake_with(run_id, || None);
    }

    /// The run ended in this node's commit: wake everyone waiting on it with the ending
    /// (`ended` is only called when someone waits: most endings have no waiter here; `None`
    /// makes them read the run).
    pub(crate) fn ended(&self, run_id: &str, ended: impl FnOnce() -> Option<Ended>) {
        self.wake_with(run_id, || ended().map(Arc::new));
    }

    fn wake_with(&self, run_id: &str, wake: impl FnOnce() -> Wake) {
        let Some(ws) = self.by_run.lock().remove(run_id) else {
            return;
        };
        let wake = wake();
        for w in ws {
            let _ = w.send(wake.clone());
        }
    }
}
