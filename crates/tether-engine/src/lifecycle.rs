//! The engine's lifecycle: whether it is draining (no new live runs) or stopping (no new
//! work at all), and its background tasks, ended by [`crate::Engine::halt`].

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use tokio::task::JoinHandle;

/// Where the engine stands between start and stop, and the tasks it stops.
#[derive(Debug, Default)]
pub(crate) struct Lifecycle {
    /// Set last on shutdown: requests are refused, background loops end.
    stopping: AtomicBool,
    /// Set first on shutdown: no new live runs from then on.
    draining: AtomicBool,
    /// The writer, poller, heartbeat and listener tasks.
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Lifecycle {
    /// Whether the engine is stopping.
    #[inline]
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Whether the engine takes no new live runs.
    #[inline]
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// No new live runs from now on.
    pub(crate) fn drain(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Stop: no new live runs, no new work.
    pub(crate) fn stop(&self) {
        self.draining.store(true, Ordering::Release);
        self.stopping.store(true, Ordering::Release);
    }

    /// Keep `task` to end it on stop.
    pub(crate) fn keep(&self, task: JoinHandle<()>) {
        self.tasks.lock().push(task);
    }

    /// The kept tasks, handed over to be ended.
    pub(crate) fn take_tasks(&self) -> Vec<JoinHandle<()>> {
        self.tasks.lock().drain(..).collect()
    }
}
