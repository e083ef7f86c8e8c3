//! [`Patch`]: the future `ctx.patched(change_id)` returns. The decision is taken when the
//! method is called (like every `ctx` command); a `true` that wrote a new marker resolves once
//! the marker is committed, so no code of the new branch runs (and no step of it starts)
//! before the journal says the run took it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::state::Shared;

/// Whether the run takes the new branch of a change; see [`crate::Ctx::patched`].
#[must_use = "a patch decision does nothing unless awaited"]
pub struct Patch {
    pub(crate) state: Shared,
    pub(crate) change_id: String,
    pub(crate) answer: bool,
}

impl fmt::Debug for Patch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Patch")
            .field("change_id", &self.change_id)
            .field("answer", &self.answer)
            .finish()
    }
}

impl Future for Patch {
    type Output = bool;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        let this = self.get_mut();
        if !this.answer {
            return Poll::Ready(false);
        }
        let mut st = this.state.lock();
        match st.patches_uncommitted.get_mut(&this.change_id) {
            Some(waker) => {
                *waker = Some(cx.waker().clone());
                Poll::Pending
            }
            None => Poll::Ready(true),
        }
    }
}
