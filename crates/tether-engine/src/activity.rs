//! Counting the work in flight, for [`crate::Engine::settle`].
//!
//! Every unit of work holds a [`Ticket`] while it is queued or running: a write waiting for
//! the group commit, a message in a live run's inbox, a live run between two waits (loading,
//! replaying, applying, writing), a step attempt, a poll. Work hands its ticket on to the work
//! it causes, or takes the next ticket before dropping its own (the writer delivers committed
//! entries, with their tickets, before it drops the write's), so the count never touches zero
//! while something is still going. A ticket is one atomic increment and one decrement.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// The engine's count of work in flight.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    busy: AtomicUsize,
    /// Notified each time the count falls to zero.
    idle: Notify,
}

impl Activity {
    /// Count one more unit of work until the ticket is dropped.
    #[inline]
    pub(crate) fn ticket(self: &Arc<Self>) -> Ticket {
        self.busy.fetch_add(1, Ordering::SeqCst);
        Ticket(self.clone())
    }

    /// Whether nothing is counted now.
    pub(crate) fn is_idle(&self) -> bool {
        self.busy.load(Ordering::SeqCst) == 0
    }

    /// Notified when the count falls to zero.
    pub(crate) fn idle_notify(&self) -> &Notify {
        &self.idle
    }
}

/// One unit of work in flight; counted until dropped.
pub(crate) struct Ticket(Arc<Activity>);

impl Drop for Ticket {
    #[inline]
    fn drop(&mut self) {
        if self.0.busy.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ticket")
    }
}
