//! Group commit: one task owns all writes of this process. It takes every write request that
//! is waiting (up to `max_batch`), commits them in one store transaction (one fsync), then
//! hands the committed entries to the live runs *in commit order* and answers the callers.
//!
//! Handing entries over before answering means that when a caller hears "committed", the run
//! it wrote to already has the entries in its inbox.

use std::sync::Weak;

use tether_core::EventBody;
use tether_store::{OpOutcome, OpResult, StoreError, WriteOp};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn, Instrument};

use crate::engine::Inner;

/// Writes waiting for the next group commit. The ops of one request always land in the same
/// batch, so they commit together or not at all.
pub(crate) struct WriteReq {
    pub ops: Vec<WriteOp>,
    pub reply: oneshot::Sender<Result<Vec<OpResult>, StoreError>>,
    /// The caller's span: entries it committed reach their run's actor under it (tracing).
    pub span: tracing::Span,
    /// Counts the write as work in flight until its entries are handed over and its caller
    /// answered.
    pub ticket: crate::activity::Ticket,
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
        let mut n = first.ops.len();
        batch.push(first);
        while n < engine.config.max_batch {
            match rx.try_recv() {
                Ok(r) => {
                    n += r.ops.len();
                    batch.push(r);
                }
                Err(_) => break,
            }
        }
        let mut ops = Vec::with_capacity(n);
        let mut replies = Vec::with_capacity(batch.len());
        for req in batch.drain(..) {
            replies.push((req.reply, req.ops.len(), req.span, req.ticket));
            ops.extend(req.ops);
        }
        let span = tracing::debug_span!("group_commit", ops = n);
        tether_store::crash_point!("writer.before_append");
        let started = std::time::Instant::now();
        let result = engine.store.commit(ops).instrument(span).await;
        engine.metrics.commit_done(n, started.elapsed());
        match result {
            Ok(results) => {
                tether_store::crash_point!("writer.after_append");
                debug!(ops = n, "group commit done");
                let mut results = results.into_iter();
                for (reply, count, span, _ticket) in replies {
                    let _caller = span.enter();
                    let mut mine: Vec<OpResult> = results.by_ref().take(count).collect();
                    for outcome in mine.iter_mut().flatten() {
                        dispatch(&engine, outcome);
                    }
                    let _ = reply.send(Ok(mine));
                }
            }
            Err(e) => {
                warn!(ops = n, error = %e, "group commit failed; nothing of the batch was kept");
                for (reply, _, _, _ticket) in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
        if engine.is_stopping() {
            return;
        }
    }
}

/// Hand the committed entries of one op to its run, and wake the other runs they touched (a
/// hook thread just spawned, a run a signal was delivered to). The entries are moved out of
/// the outcome: callers only need the run id.
fn dispatch(engine: &Inner, outcome: &mut OpOutcome) {
    match outcome {
        OpOutcome::Appended { run_id, events } => {
            for e in events.iter() {
                match &e.body {
                    EventBody::HookSpawned { hook_id, .. } => {
                        engine.wake(hook_id);
                    }
                    EventBody::SignalSent {
                        delivered_to: Some(to),
                        ..
                    }
                    | EventBody::SignalReleased {
                        delivered_to: Some(to),
                        ..
                    } if to != run_id => engine.wake_or_poke(to),
                    _ => {}
                }
            }
            engine.hooks.lock().committed(run_id, events);
            engine.notify_changed(run_id, events.last().map_or(0, |e| e.seq));
            engine.deliver(run_id, std::mem::take(events));
        }
        OpOutcome::Resumed { run_id, event } => {
            if let Some(e) = event.take() {
                engine.notify_changed(run_id, e.seq);
                engine.deliver(run_id, vec![e]);
            }
        }
        OpOutcome::Updated | OpOutcome::Claimed { .. } | OpOutcome::Renewed { .. } => {}
    }
}
