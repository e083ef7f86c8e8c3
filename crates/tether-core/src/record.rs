//! The future of a command answered by its own committed record: shared-state access, a
//! spawn, a signal sent. The store fills in the record's outputs (the value read, the new
//! count) inside the transaction that journals it, so replay reads exactly what was seen.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::WorkflowError;
use crate::event::{CommandIndex, EventBody};
use crate::state::Shared;

/// Resolves to the committed record of command `cmd`.
pub(crate) struct RecordFuture {
    pub(crate) state: Shared,
    pub(crate) cmd: CommandIndex,
}

impl Future for RecordFuture {
    type Output = Result<EventBody, WorkflowError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut st = this.state.lock();
        let cancelled = st.cancelled.clone();
        let Some(slot) = st.records.get_mut(&this.cmd) else {
            return Poll::Pending;
        };
        if let Some(record) = &slot.record {
            return Poll::Ready(Ok(record.clone()));
        }
        if let Some(reason) = cancelled {
            return Poll::Ready(Err(WorkflowError::Cancelled { reason }));
        }
        slot.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}
