//! Callers waiting for news of a run: [`crate::Engine::wait_for_run`] (for its end) and a
//! manual webhook's request (for the reply, see `responses.rs`). A waiter is a one-shot woken
//! when the run ends on this node or its journal grows on another one; the woken caller reads
//! the store again and, if it must go on waiting, adds itself again.

use std::collections::HashMap;

use parking_lot::Mutex;
use tokio::sync::oneshot;

/// The callers waiting on each run, by run id.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    by_run: Mutex<HashMap<String, Vec<oneshot::Sender<()>>>>,
}

impl Waiters {
    /// A waiter woken when `run_id` ends or its journal grows (see [`Waiters::wake`]).
    pub(crate) fn add(&self, run_id: &str) -> oneshot::Receiver<()> {
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
        if let Some(ws) = self.by_run.lock().remove(run_id) {
            for w in ws {
                let _ = w.send(());
            }
        }
    }
}
