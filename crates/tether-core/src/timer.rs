//! Durable timers: `ctx.sleep` and `ctx.sleep_until`. The deadline is journaled when the timer
//! starts, so a run that sleeps a day wakes at the right time after any number of restarts.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::WorkflowError;
use crate::event::CommandIndex;
use crate::state::Shared;

/// A durable sleep. Dropping it before it fires abandons the timer (it will not wake the run).
#[must_use = "a sleep does nothing unless awaited"]
pub struct Sleep {
    pub(crate) state: Shared,
    pub(crate) cmd: CommandIndex,
    pub(crate) done: bool,
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep").field("cmd", &self.cmd).finish()
    }
}

impl Future for Sleep {
    type Output = Result<(), WorkflowError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut st = this.state.lock();
        let cancelled = st.cancelled.clone();
        let Some(slot) = st.timers.get_mut(&this.cmd) else {
            return Poll::Pending;
        };
        if slot.fired {
            this.done = true;
            return Poll::Ready(Ok(()));
        }
        if let Some(reason) = cancelled {
            this.done = true;
            return Poll::Ready(Err(WorkflowError::Cancelled { reason }));
        }
        slot.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut st = self.state.lock();
        if let Some(slot) = st.timers.get_mut(&self.cmd) {
            if !slot.fired {
                slot.abandoned = true;
                slot.waker = None;
            }
        }
    }
}
