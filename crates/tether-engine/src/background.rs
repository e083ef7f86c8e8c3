//! The engine's background tasks: the poller that revives runs with work, the lease
//! heartbeat, and the listener for other nodes' commits.

use std::sync::Weak;

use tether_store::WriteOp;

use crate::engine::Inner;

/// Every `poll_interval`: make live the runs that have work but no actor (recovery after a
/// restart, due timers of evicted runs, runs whose write failed).
pub(crate) async fn poll_loop(inner: Weak<Inner>) {
    loop {
        let Some(engine) = inner.upgrade() else {
            return;
        };
        if engine.lifecycle.is_stopping() {
            return;
        }
        let interval = engine.config.poll_interval;
        {
            let _busy = engine.activity.ticket();
            if let Err(e) = engine.wake_due_runs().await {
                tracing::warn!(error = %e, "could not look for runs with work");
            }
        }
        drop(engine);
        tokio::time::sleep(interval).await;
    }
}

/// Every third of the lease: extend the leases of every run this node holds. With a manual
/// clock, also at once whenever the clock is moved (leases are judged by that clock, so a
/// jump would otherwise leave them ended until the next beat).
pub(crate) async fn heartbeat_loop(inner: Weak<Inner>) {
    let mut moves = match inner.upgrade() {
        Some(engine) => engine.clock().moves(),
        None => return,
    };
    loop {
        let Some(engine) = inner.upgrade() else {
            return;
        };
        if engine.lifecycle.is_stopping() {
            return;
        }
        let lease = engine.config.lease;
        let op = WriteOp::RenewLeases {
            node: engine.node_id.clone(),
            lease_until_ms: engine.now_ms() + lease.as_millis() as u64,
        };
        if let Err(e) = engine.writer.write(op).await {
            tracing::warn!(error = %e, "could not renew this node's leases");
        }
        drop(engine);
        match moves.as_mut() {
            None => tokio::time::sleep(lease / 3).await,
            Some(rx) => {
                tokio::select! {
                    _ = tokio::time::sleep(lease / 3) => {}
                    moved = rx.changed() => if moved.is_err() {
                        moves = None;
                    },
                }
            }
        }
    }
}

/// Entries committed by any process sharing the store: tell the live run to read them, and
/// the callers waiting for the run to end to look at it again.
pub(crate) async fn listen_loop(
    inner: Weak<Inner>,
    mut changes: futures::stream::BoxStream<'static, tether_store::RunChanged>,
) {
    use futures::StreamExt;
    while let Some(change) = changes.next().await {
        let Some(engine) = inner.upgrade() else {
            return;
        };
        if change.local {
            // This node's writer already handed these entries to the run and its waiters; a
            // poke would only make the run read its journal for nothing.
            continue;
        }
        engine.poke(&change.run_id, change.last_seq);
        engine.changes.notify(&change.run_id, change.last_seq);
        // It may have ended on another node: whoever waits for it here looks again.
        engine.waiters.wake(&change.run_id);
    }
}
