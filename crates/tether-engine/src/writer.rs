//! Group commit: one task owns all writes of this process. It takes every write request that
//! is waiting (up to `max_batch`), commits them in one store transaction (one fsync), then
//! hands the committed entries to the live runs *in commit order* and answers the callers.
//!
//! Handing entries over before answering means that when a caller hears "committed", the run
//! it wrote to already has the entries in its inbox.

use std::sync::Weak;

use tether_store::{OpOutcome, OpResult, StoreError, WriteOp};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

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
        let ops: Vec<WriteOp> = batch.iter().map(|r| r.op.clone()).collect();
        let n = ops.len();
        let span = tracing::debug_span!("group_commit", ops = n);
        let result = {
            let _g = span.enter();
            engine.store.commit(ops).await
        };
        match result {
            Ok(results) => {
                debug!(ops = n, "group commit done");
                for (req, res) in batch.drain(..).zip(results) {
                    if let Ok(outcome) = &res {
                        dispatch(&engine, outcome);
                    }
                    let _ = req.reply.send(Ok(res));
                }
            }
            Err(e) => {
                warn!(ops = n, error = %e, "group commit failed; nothing of the batch was kept");
                for req in batch.drain(..) {
                    let _ = req.reply.send(Err(e.clone()));
                }
            }
        }
        if engine.is_stopping() {
            return;
        }
    }
}

fn dispatch(engine: &Inner, outcome: &OpOutcome) {
    match outcome {
        OpOutcome::Appended { run_id, events } => engine.deliver(run_id, events.clone()),
        OpOutcome::Resumed {
            run_id,
            event: Some(e),
        } => engine.deliver(run_id, vec![e.clone()]),
        _ => {}
    }
}
