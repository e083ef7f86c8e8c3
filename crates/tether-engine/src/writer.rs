//! Group commit: one task owns all writes of this process. It takes every write request that
//! is waiting (up to `max_batch`), commits them in one store transaction (one fsync), then
//! hands the committed entries to the live runs *in commit order* and answers the callers.
//!
//! Handing entries over before answering means that when a caller hears "committed", the run
//! it wrote to already has the entries in its inbox.
//!
//! [`Writer`] is the handle every other part of the engine writes through.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tether_core::{EventBody, RESPOND_WITH_STEP};
use tether_store::{OpOutcome, OpResult, StoreError, WriteOp};
use tokio::sync::{mpsc, oneshot, Notify};
use tracing::{debug, warn, Instrument};

use crate::activity::Activity;
use crate::engine::Inner;
use crate::group_pause::PausePolicy;

/// The handle to the group-commit writer: queues writes for the next commit.
pub(crate) struct Writer {
    tx: mpsc::UnboundedSender<WriteReq>,
    /// Counts each queued write as work in flight (see `activity.rs`).
    activity: Arc<Activity>,
    /// Tells the writer to commit its deferred writes now.
    flush: Arc<Notify>,
}

/// What the writer task reads: the queued writes, and the nudge to commit deferred ones now.
pub(crate) struct WriterQueue {
    rx: mpsc::UnboundedReceiver<WriteReq>,
    flush: Arc<Notify>,
}

impl Writer {
    /// A handle, and the queue its `writer_loop` reads.
    pub(crate) fn new(activity: Arc<Activity>) -> (Writer, WriterQueue) {
        let (tx, rx) = mpsc::unbounded_channel();
        let flush = Arc::new(Notify::new());
        let queue = WriterQueue {
            rx,
            flush: flush.clone(),
        };
        (
            Writer {
                tx,
                activity,
                flush,
            },
            queue,
        )
    }

    /// Commit the deferred writes now rather than wait for another write
    /// ([`crate::Engine::settle`] does not wait for them to come due).
    pub(crate) fn flush_deferred(&self) {
        self.flush.notify_one();
    }

    /// Queue one write for the next group commit and wait for it to commit.
    pub(crate) async fn write(&self, op: WriteOp) -> Result<OpResult, StoreError> {
        let mut results = self.write_all(vec![op]).await?;
        results
            .pop()
            .ok_or_else(|| StoreError::Corrupt("the store answered no result".into()))
    }

    /// Queue writes that must commit together (same transaction) and wait for them.
    pub(crate) async fn write_all(&self, ops: Vec<WriteOp>) -> Result<Vec<OpResult>, StoreError> {
        let (reply, rx) = oneshot::channel();
        let stopped = || StoreError::Unavailable("the engine is shutting down".into());
        self.tx
            .send(WriteReq {
                ops,
                reply,
                span: tracing::Span::current(),
                ticket: self.activity.ticket(),
                deferred: false,
            })
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Queue a write for the next group commit without waiting for it (best effort).
    pub(crate) fn write_detached(&self, op: WriteOp) {
        self.send_detached(op, false);
    }

    /// Queue a write that need not commit soon (a checkpoint) without waiting for it: it rides
    /// along with the next group commit that other writes start, or commits on its own after
    /// [`DEFERRED_FOR`] (best effort).
    pub(crate) fn write_deferred(&self, op: WriteOp) {
        self.send_detached(op, true);
    }

    fn send_detached(&self, op: WriteOp, deferred: bool) {
        let (reply, _) = oneshot::channel();
        let _ = self.tx.send(WriteReq {
            ops: vec![op],
            reply,
            span: tracing::Span::none(),
            ticket: self.activity.ticket(),
            deferred,
        });
    }
}

/// How long a deferred write waits for another write to ride along with. A run's checkpoint
/// committed on its own is a transaction (and a flush) of its own, in the way of the resume
/// that usually follows within a millisecond; riding along with that resume it costs one row
/// of a statement the batch writes anyway. Until it commits, a crash only costs a spurious
/// rebuild of the run.
pub(crate) const DEFERRED_FOR: Duration = Duration::from_millis(20);

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
    /// Whether the write may wait for another to start a group commit ([`Writer::write_deferred`]).
    pub deferred: bool,
}

/// What the writer's wait for work ended with.
enum Next {
    /// A write to commit now.
    Now(WriteReq),
    /// The deferred writes are due (or every handle is gone): commit them alone.
    Due,
}

/// Wait for a write that starts a group commit, keeping deferred ones in `deferred` until
/// then, until the first of them is [`DEFERRED_FOR`] old or until [`Writer::flush_deferred`];
/// `None` once every handle is gone and nothing is deferred.
async fn next_commit(
    queue: &mut WriterQueue,
    deferred: &mut Vec<WriteReq>,
    max_batch: usize,
) -> Option<Next> {
    let WriterQueue { rx, flush } = queue;
    let mut due: Option<tokio::time::Instant> = None;
    loop {
        let got = match due {
            None if deferred.is_empty() => rx.recv().await,
            _ => {
                let due = *due.get_or_insert_with(|| tokio::time::Instant::now() + DEFERRED_FOR);
                tokio::select! {
                    biased;
                    r = rx.recv() => r,
                    () = flush.notified() => return Some(Next::Due),
                    () = tokio::time::sleep_until(due) => return Some(Next::Due),
                }
            }
        };
        match got {
            Some(req) if req.deferred && deferred.len() < max_batch => deferred.push(req),
            Some(req) => return Some(Next::Now(req)),
            None if deferred.is_empty() => return None,
            None => return Some(Next::Due),
        }
    }
}

pub(crate) async fn writer_loop(inner: Weak<Inner>, mut queue: WriterQueue) {
    let mut batch: Vec<WriteReq> = Vec::new();
    let mut deferred: Vec<WriteReq> = Vec::new();
    let mut pause = PausePolicy::default();
    let mut max_batch = usize::MAX;
    loop {
        let Some(next) = next_commit(&mut queue, &mut deferred, max_batch).await else {
            return;
        };
        let Some(engine) = inner.upgrade() else {
            return;
        };
        max_batch = engine.config.max_batch;
        let paused = pause.choose(std::time::Instant::now());
        if paused {
            // Let the runs the last commit woke write first, to join this batch
            // (`group_pause.rs` says when this pays).
            tokio::task::yield_now().await;
        }
        // Deferred writes were queued first: they go first.
        let mut n: usize = deferred.iter().map(|r| r.ops.len()).sum();
        batch.append(&mut deferred);
        if let Next::Now(first) = next {
            n += first.ops.len();
            batch.push(first);
        }
        while n < max_batch {
            match queue.rx.try_recv() {
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
        pause.done(n, std::time::Instant::now());
        if engine.lifecycle.is_stopping() {
            return;
        }
    }
}

/// Hand the committed entries of one op to its run, wake the other runs they touched (a hook
/// thread or a child run just started, a run a signal was delivered to, the children a cancel
/// request reached), and hand a manual webhook response
/// to its request if it waits on this node (`responses.rs`). The entries are moved out of the
/// outcome: callers only need the run id (and a resume's `seq`: its `HookReceived` stays in
/// the outcome with its payload moved out, `null`).
fn dispatch(engine: &Inner, outcome: &mut OpOutcome) {
    match outcome {
        OpOutcome::Appended { run_id, events } => {
            for e in events.iter() {
                match &e.body {
                    EventBody::HookSpawned { hook_id, .. } => {
                        engine.wake(hook_id);
                    }
                    EventBody::ChildStarted { child_run_id, .. } => {
                        engine.wake(child_run_id);
                    }
                    // The store passed the request on to the run's attached children.
                    EventBody::CancelRequested { .. } => engine.poke_children(run_id),
                    EventBody::SignalSent {
                        delivered_to: Some(to),
                        ..
                    }
                    | EventBody::SignalReleased {
                        delivered_to: Some(to),
                        ..
                    } if to != run_id => engine.wake_or_poke(to),
                    EventBody::StepCompleted { name, output, .. } if name == RESPOND_WITH_STEP => {
                        engine.responses.committed(output);
                    }
                    _ => {}
                }
            }
            engine.hooks.committed(run_id, events);
            engine
                .changes
                .notify(run_id, events.last().map_or(0, |e| e.seq));
            engine.deliver(run_id, std::mem::take(events));
        }
        OpOutcome::Resumed {
            run_id,
            event,
            lease_holder,
            claimed,
        } => {
            if let Some(e) = event.as_mut() {
                engine.changes.notify(run_id, e.seq);
                // The run gets the entry; the outcome keeps its `seq` for the caller, without
                // a copy of the payload.
                let body = match &mut e.body {
                    EventBody::HookReceived { hook_cmd, payload } => EventBody::HookReceived {
                        hook_cmd: *hook_cmd,
                        payload: payload.take(),
                    },
                    other => other.clone(),
                };
                let delivered = tether_core::Event {
                    seq: e.seq,
                    at_ms: e.at_ms,
                    body,
                };
                if let Some(claimed) = claimed {
                    // The resume claimed the run for this node: its actor starts with that
                    // claim instead of writing one.
                    if claimed.took_over {
                        engine.metrics.lease_taken_over();
                    }
                    let fence = tether_store::Fence {
                        node: engine.node_id.clone(),
                        epoch: claimed.epoch,
                    };
                    engine.deliver_claimed(run_id, vec![delivered], fence);
                } else if lease_holder
                    .as_deref()
                    .is_some_and(|holder| holder != engine.node_id)
                {
                    // Another node has the run: it learns of the entry from the store.
                    engine.deliver_if_live(run_id, vec![delivered]);
                } else {
                    engine.deliver(run_id, vec![delivered]);
                }
            }
        }
        OpOutcome::Updated
        | OpOutcome::Kept
        | OpOutcome::SignalRepeated { .. }
        | OpOutcome::Claimed { .. }
        | OpOutcome::Renewed { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(activity: &Arc<Activity>, deferred: bool) -> WriteReq {
        let (reply, _) = oneshot::channel();
        WriteReq {
            ops: Vec::new(),
            reply,
            span: tracing::Span::none(),
            ticket: activity.ticket(),
            deferred,
        }
    }

    /// A writer handle and its queue, with `deferred` writes queued.
    fn queued(deferred: usize) -> (Arc<Activity>, Writer, WriterQueue) {
        let activity = Arc::new(Activity::default());
        let (writer, queue) = Writer::new(activity.clone());
        for _ in 0..deferred {
            writer.tx.send(req(&activity, true)).unwrap();
        }
        (activity, writer, queue)
    }

    #[tokio::test(start_paused = true)]
    async fn a_deferred_write_waits_for_one_that_starts_a_commit() {
        let (activity, writer, mut queue) = queued(2);
        writer.tx.send(req(&activity, false)).unwrap();
        let next = next_commit(&mut queue, &mut Vec::new(), 64).await;
        assert!(
            matches!(next, Some(Next::Now(ref r)) if !r.deferred),
            "the first write that is not deferred starts the commit"
        );
        let mut deferred = Vec::new();
        let (activity, writer, mut queue) = queued(2);
        let start = tokio::time::Instant::now();
        {
            let waiting = next_commit(&mut queue, &mut deferred, 64);
            tokio::pin!(waiting);
            assert!(
                tokio::time::timeout(DEFERRED_FOR / 2, &mut waiting)
                    .await
                    .is_err(),
                "deferred writes alone wait"
            );
            writer.tx.send(req(&activity, false)).unwrap();
            assert!(matches!(waiting.await, Some(Next::Now(_))));
        }
        assert_eq!(deferred.len(), 2, "the deferred ones go with it");
        assert!(start.elapsed() < DEFERRED_FOR);
        assert!(!activity.is_idle(), "a deferred write is work in flight");
    }

    #[tokio::test(start_paused = true)]
    async fn deferred_writes_commit_alone_when_nothing_else_comes() {
        let (activity, writer, mut queue) = queued(1);
        let mut deferred = Vec::new();
        let start = tokio::time::Instant::now();
        let next = next_commit(&mut queue, &mut deferred, 64).await;
        assert!(matches!(next, Some(Next::Due)));
        assert_eq!(start.elapsed(), DEFERRED_FOR, "(the clock is the test's)");
        assert_eq!(deferred.len(), 1);

        // Every handle gone: what is deferred goes at once, then the loop ends.
        deferred.clear();
        writer.tx.send(req(&activity, true)).unwrap();
        drop(writer);
        let start = tokio::time::Instant::now();
        assert!(matches!(
            next_commit(&mut queue, &mut deferred, 64).await,
            Some(Next::Due)
        ));
        assert_eq!(start.elapsed(), Duration::ZERO);
        deferred.clear();
        assert!(next_commit(&mut queue, &mut deferred, 64).await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_flush_commits_deferred_writes_at_once() {
        let (_activity, writer, mut queue) = queued(1);
        writer.flush_deferred();
        let mut deferred = Vec::new();
        let start = tokio::time::Instant::now();
        let next = next_commit(&mut queue, &mut deferred, 64).await;
        assert!(matches!(next, Some(Next::Due)));
        assert_eq!(start.elapsed(), Duration::ZERO, "(the clock is the test's)");
        assert_eq!(deferred.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_batch_of_deferred_writes_does_not_wait() {
        let (_activity, _writer, mut queue) = queued(3);
        let mut deferred = Vec::new();
        let next = next_commit(&mut queue, &mut deferred, 2).await;
        assert!(
            matches!(next, Some(Next::Now(ref r)) if r.deferred),
            "past max_batch the next deferred write starts the commit"
        );
        assert_eq!(deferred.len(), 2);
    }
}
