//! In-process notifications of journal growth ([`Engine::subscribe_changes`]), for watchers
//! such as the web UI's live updates. Fired by the group-commit writer after each commit, and
//! by the listener of other nodes' commits (PostgreSQL), so a watcher hears every run change
//! that this process can know of.

use tether_store::RunChanged;
use tokio::sync::broadcast;

use crate::engine::Engine;

/// How many notifications a slow watcher may fall behind before it misses some (it is then
/// told it lagged, and should read what it watches again).
pub(crate) const CHANGES_CAPACITY: usize = 1024;

/// The engine's change notifications: a broadcast of "run X changed".
pub(crate) struct Changes {
    tx: broadcast::Sender<RunChanged>,
}

impl Default for Changes {
    fn default() -> Self {
        Changes {
            tx: broadcast::channel(CHANGES_CAPACITY).0,
        }
    }
}

impl Changes {
    /// Tell the watchers that `run_id` changed (`last_seq`: its last journal entry, or 0 when
    /// only its status changed). Costs nothing when nobody watches.
    #[inline]
    pub(crate) fn notify(&self, run_id: &str, last_seq: u64) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        let _ = self.tx.send(RunChanged {
            local: true,
            run_id: run_id.to_string(),
            last_seq,
        });
    }
}

impl Engine {
    /// Notifications of runs whose journal or status changed, from now on: one per committed
    /// write (a run's appended entries, an accepted payload), including commits by other nodes
    /// sharing the store when the backend reports them. `last_seq` is the run's last journal
    /// entry, or 0 when only its status changed. A receiver that falls more than a thousand
    /// notifications behind gets `RecvError::Lagged` and should read what it watches again.
    pub fn subscribe_changes(&self) -> broadcast::Receiver<RunChanged> {
        self.inner.changes.tx.subscribe()
    }
}
