//! `steps`: `n` runs of 10 sequential no-op steps, `c` at a time; each starter starts a run and
//! waits for its result.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use crate::driver::Driver;
use crate::stats::{per_s, writer_busy};

/// `per_s`: steps per second. `accepted_per_s`: runs started (acknowledged) per second, to the
/// last start; `completed_per_s`: runs finished per second. `commits`, `ops_per_commit` and
/// `writer_busy` (the share of the phase the writer spent in commits) as for
/// `resume-throughput`. Against `--nodes`, with the phase's CPU times (see
/// [`Driver::phase_figures`]).
pub(crate) async fn run(d: Driver, n: usize, c: usize) -> Result<Value, String> {
    let d = Arc::new(d);
    d.warm_connections(0, c).await?;
    let before = d.counts().await?;
    let mark = d.mark();
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..c {
        let d = d.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut last_start = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, String>(last_start);
                }
                let run = d.start_run(i, "steps", json!({ "n": 10 })).await?;
                last_start = Some(Instant::now());
                d.output(i, &run).await?;
            }
        }));
    }
    let mut last_start: Option<Instant> = None;
    for t in tasks {
        if let Some(at) = t.await.map_err(|e| e.to_string())?? {
            last_start = Some(last_start.map_or(at, |l| l.max(at)));
        }
    }
    let took = t0.elapsed();
    let phase = d.phase_figures(mark, n).await;
    let counts = d.counts().await?.since(before);
    let started = last_start.map_or(took, |at| at.saturating_duration_since(t0));
    if let Ok(d) = Arc::try_unwrap(d) {
        d.shutdown().await;
    }
    let mut figures = json!({
        "n": n,
        "steps": n * 10,
        "per_s": per_s(n * 10, took),
        "accepted_per_s": per_s(n, started),
        "completed_per_s": per_s(n, took),
        "commits": counts.commits,
        "ops_per_commit": counts.committed_ops as f64 / counts.commits.max(1) as f64,
        "writer_busy": writer_busy(counts.commit_s, took),
    });
    if let Value::Object(f) = &mut figures {
        f.extend(phase);
    }
    Ok(figures)
}
