//! Task queues: which node may claim a run (routing) and when a run's first claim may *admit*
//! it to its queue (limits), decided once here for every backend.
//!
//! A run is *admitted* by its first claim (or by a [`crate::WriteOp::CreateRun`] with a claim)
//! and stays counted until it ends: while it runs, waits for a timer, a hook or a signal,
//! and across evictions, restarts and lease take-overs (a claim of an admitted run is never
//! refused for a limit). A queue's concurrency limit counts its admitted, unfinished runs; its
//! rate limit counts the admissions in the last period. Both are counted by the backend in the
//! claim's transaction, under a lock of the queue ([`QueueBackend::queue_load`]), so two nodes
//! admitting at once cannot both take the last slot.

use crate::{OpRejected, QueueLimit, QueuePolicy, StoreError};

/// A run's queue columns, as the claim reads them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunQueue {
    /// The run's queue.
    pub queue: String,
    /// When it was admitted, `None` while it waits.
    pub admitted_at: Option<u64>,
}

/// How busy a queue is, counted in the claim's transaction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueLoad {
    /// Admitted runs that have not ended.
    pub running: u64,
    /// Runs admitted at or after the `since_ms` asked for.
    pub admitted_since: u64,
}

/// The row primitives of admission a backend's transaction implements.
#[allow(async_fn_in_trait)] // generic use only: the caller's concrete future keeps its `Send`
pub trait QueueBackend {
    /// The queue columns of `run_id` (locked by the op already); `None` if there is no such
    /// run.
    async fn run_queue(&mut self, run_id: &str) -> Result<Option<RunQueue>, StoreError>;

    /// Lock `queue` for admissions until the transaction ends (a backend shared by several
    /// processes must: another process's admission to it waits), then count its admitted
    /// unfinished runs and, with `since_ms`, its admissions at or after it.
    async fn queue_load(
        &mut self,
        queue: &str,
        since_ms: Option<u64>,
    ) -> Result<QueueLoad, StoreError>;
}

/// Whether `node_queues` lets the claim of `run_id` at `now_ms` go ahead: `Ok(Some(now_ms))`
/// when the claim admits the run (to be written as its admission time), `Ok(None)` when it
/// was admitted before, or the refusal (`NotServed`, `QueueFull`, `QueueRate`).
pub async fn admit<B: QueueBackend>(
    b: &mut B,
    policy: &QueuePolicy,
    run_id: &str,
    run: &RunQueue,
    now_ms: u64,
) -> Result<Result<Option<u64>, OpRejected>, StoreError> {
    if !policy.serves(&run.queue) {
        return Ok(Err(OpRejected::NotServed {
            run_id: run_id.to_owned(),
            queue: run.queue.clone(),
        }));
    }
    if run.admitted_at.is_some() {
        return Ok(Ok(None));
    }
    let Some(limit) = policy.limit(&run.queue) else {
        return Ok(Ok(Some(now_ms)));
    };
    let since = limit.rate.map(|r| rate_window_start(now_ms, r.per_ms));
    let load = b.queue_load(&run.queue, since).await?;
    Ok(decide(limit, load, run_id, &run.queue).map(|()| Some(now_ms)))
}

/// The first millisecond of the rate period that ends at `now_ms` (inclusive).
pub fn rate_window_start(now_ms: u64, per_ms: u64) -> u64 {
    now_ms.saturating_sub(per_ms.max(1) - 1)
}

/// The limit decision on a counted load: concurrency first, then rate.
pub fn decide(
    limit: &QueueLimit,
    load: QueueLoad,
    run_id: &str,
    queue: &str,
) -> Result<(), OpRejected> {
    if let Some(max) = limit.concurrency {
        if load.running >= max {
            return Err(OpRejected::QueueFull {
                run_id: run_id.to_owned(),
                queue: queue.to_owned(),
                limit: max,
            });
        }
    }
    if let Some(rate) = limit.rate {
        if load.admitted_since >= rate.count {
            return Err(OpRejected::QueueRate {
                run_id: run_id.to_owned(),
                queue: queue.to_owned(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::QueueRate;

    fn load(running: u64, admitted_since: u64) -> QueueLoad {
        QueueLoad {
            running,
            admitted_since,
        }
    }

    #[test]
    fn concurrency_counts_running_and_rate_counts_the_period() {
        let limit = QueueLimit {
            concurrency: Some(2),
            rate: Some(QueueRate {
                count: 3,
                per_ms: 1000,
            }),
        };
        assert_eq!(decide(&limit, load(1, 2), "r", "q"), Ok(()));
        assert!(matches!(
            decide(&limit, load(2, 0), "r", "q"),
            Err(OpRejected::QueueFull { limit: 2, .. })
        ));
        assert!(matches!(
            decide(&limit, load(0, 3), "r", "q"),
            Err(OpRejected::QueueRate { .. })
        ));
        assert_eq!(rate_window_start(5000, 1000), 4001);
        assert_eq!(rate_window_start(10, 1000), 0);
    }
}
