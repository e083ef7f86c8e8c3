//! Group commit: one task owns all writes of this process. It takes every write request that
//! is waiting (up to `max_batch`), commits them in one store transaction (one fsync), then
//! hands the committed entries to the live runs *in commit order* and answers the callers.
//!
//! Handing entries over before answering means that when a caller hears "committed", the run
//! it wrote to already has the entries in its inbox.

use std::sync::Weak;

use tether_store::{OpOutcome, OpResult, StoreError, WriteOp};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn, Instrument};

use crate::engine::Inner;

/// A write waiting for the next group commit.
pub(crate) struct WriteReq {
    pub op: WriteOp,
    pub reply: oneshot::Sender<Result<OpResult, StoreError>>,
}

pub(crate) async fn writer_loop(inner: Weak<Inner>, mut rx: mpsc::UnboundedReceiver<WriteReq>) {
    let mut batch: Vec<WriteReq> = Vec::new();
    loop {
        let Some(first) = rx.recv().await else {
            return;
        };
        let Some(engine) = inner.upgrade() else {
            return;
        };
        batch.push(first);
        while batch.len() < engine.config.max_batch {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let (ops, replies): (Vec<WriteOp>, Vec<_>) =
            batch.drain(..).map(|r| (r.op, r.reply)).unzip();
        let n = ops.len();
        let span = tracing::debug_span!("group_commit", ops = n);
        let result = engine.store.commit(ops).instrument(span).await;
        match result {
            Ok(results) => {
                debug!(ops = n, "group commit done");
                for (reply, mut res) in replies.into_iter().zip(results) {
                    if let Ok(outcome) = &mut res {
                        dispatch(&engine, outcome);
                    }
                    let _ = reply.send(Ok(res));
                }
            }
            Err(e) => {
                warn!(ops = n, error = %e, "group commit failed; nothing of the batch was kept");
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
        if engine.is_stopping() {
            return;
        }
    }
}

/// Hand the committed entries of one op to its run. The entries are moved out of the outcome:
/// callers only need the run id (the run itself gets its entries here, in commit order).
fn dispatch(engine: &Inner, outcome: &mut OpOutcome) {
    match outcome {
        OpOutcome::Appended { run_id, events } => {
            engine.deliver(run_id, std::mem::take(events));
        }
        OpOutcome::Resumed { run_id, event } => {
            if let Some(e) = event.take() {
                engine.deliver(run_id, vec![e]);
            }
        }
        OpOutcome::Updated | OpOutcome::Claimed { .. } | OpOutcome::Renewed { .. } => {}
    }
}
