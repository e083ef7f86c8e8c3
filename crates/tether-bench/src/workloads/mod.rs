//! The workloads. Each returns its figures as a JSON object, among them `accepted_per_s` (what
//! the engine acknowledged: starts, resumes or payloads, per second) and `completed_per_s`
//! (runs, or payloads, known finished per second).

pub(crate) mod latency;
pub(crate) mod steps;
pub(crate) mod stream;
pub(crate) mod suspended;
pub(crate) mod throughput;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use tether::EngineConfig;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::driver::Driver;

/// Most waits for a run's result held open at once (over HTTP: long-polls, one connection
/// each). With more runs than this, the rest queue for a free slot.
pub(crate) const HELD_WAITS: usize = 1000;

/// How long the waits opened before a timed phase get to reach the engine or server (not
/// timed itself).
pub(crate) const SETTLE: std::time::Duration = std::time::Duration::from_millis(200);

/// The engine configuration every in-process workload runs with (`max_live_runs`: the
/// bench's `--max-live-runs`, else the engine's default).
pub(crate) fn config(max_live_runs: Option<usize>) -> EngineConfig {
    let mut config = EngineConfig::default();
    if let Some(n) = max_live_runs {
        config.max_live_runs = n.max(1);
    }
    config
}

/// Start `n` runs waiting on hooks `{prefix}-{i}` with `c` concurrent starters; their ids, by
/// `i`.
async fn start_waiting(
    d: &Arc<Driver>,
    prefix: &str,
    n: usize,
    c: usize,
) -> Result<Vec<String>, String> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..c {
        let d = d.clone();
        let next = next.clone();
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            let mut runs = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, String>(runs);
                }
                let run = d
                    .start_run("bench_wait", json!(format!("{prefix}-{i}")))
                    .await?;
                runs.push((i, run));
            }
        }));
    }
    let mut all = vec![String::new(); n];
    for t in tasks {
        for (i, run) in t.await.map_err(|e| e.to_string())?? {
            all[i] = run;
        }
    }
    Ok(all)
}

/// Waits for the results of many runs, all at once (at most [`HELD_WAITS`] held), started
/// before the work that finishes the runs is sent.
struct Completions {
    tasks: JoinSet<Result<Instant, String>>,
}

impl Completions {
    /// Open a wait for each of `runs`.
    fn watch(d: &Arc<Driver>, runs: &[String]) -> Completions {
        let slots = Arc::new(Semaphore::new(HELD_WAITS));
        let mut tasks = JoinSet::new();
        for run in runs {
            let d = d.clone();
            let run = run.clone();
            let slots = slots.clone();
            tasks.spawn(async move {
                let _slot = slots
                    .acquire_owned()
                    .await
                    .map_err(|e| format!("wait slots closed: {e}"))?;
                d.output(&run).await?;
                Ok(Instant::now())
            });
        }
        Completions { tasks }
    }

    /// Wait until every run has ended; the instant the last end was observed.
    async fn last(mut self) -> Result<Option<Instant>, String> {
        let mut last: Option<Instant> = None;
        while let Some(done) = self.tasks.join_next().await {
            let at = done.map_err(|e| format!("a wait task failed: {e}"))??;
            last = Some(last.map_or(at, |l| l.max(at)));
        }
        Ok(last)
    }
}
