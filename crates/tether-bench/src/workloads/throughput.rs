//! `resume-throughput`: `n` runs waiting; a wait for every run's result is opened (over HTTP:
//! held long-polls), then `c` senders resume them all.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use super::{start_waiting, Completions, HELD_WAITS, SETTLE};
use crate::driver::Driver;
use crate::host;
use crate::stats::{per_s, writer_busy};
use crate::store::FreshStore;

/// `per_s`/`accepted_per_s`: resumes acknowledged per second, first resume sent to last
/// acknowledged. `complete_per_s`/`completed_per_s`: runs whose end was observed per second,
/// first resume sent to last end observed. `commits`, `committed_ops` and `cache_misses`: the
/// engine's group commits, the write ops they held and its live-run cache misses from the
/// first resume sent to the last end observed (`commits_per_resume` = `commits` / `n`);
/// `writer_busy`: the share of that time the writer spent in commits (it commits one batch at
/// a time: near 1.0, the writer is what limits the rate; summed over nodes, it may pass 1); against
/// `--nodes`, summed over the nodes, with the phase's CPU times (see [`Driver::phase_figures`]).
pub(crate) async fn run(
    fresh: &FreshStore,
    d: Driver,
    n: usize,
    c: usize,
) -> Result<Value, String> {
    let d = Arc::new(d);
    let runs = start_waiting(&d, "tp", n, c).await?;
    fresh.analyze().await?;
    // One connection per held wait and per sender, opened before anything is timed.
    d.warm_connections(n.min(HELD_WAITS), c).await?;
    let completions = Completions::watch(&d, &runs);
    // Let the waits reach the engine (or the server) before the first resume.
    tokio::time::sleep(SETTLE).await;
    let before = d.counts().await?;
    let mark = d.mark();
    let runs = Arc::new(runs);
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..c {
        let d = d.clone();
        let next = next.clone();
        let runs = runs.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, String>(());
                }
                // `done` ends the child servers' `collect` runs; `bench_wait` ends anyway.
                d.resume(i, &runs[i].1, json!({ "i": i, "done": true }))
                    .await?;
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    let accepted = t0.elapsed();
    let completed = completions
        .last()
        .await?
        .map_or(accepted, |at| at.saturating_duration_since(t0));
    // Measured before the counters are scraped (which costs the nodes some CPU).
    let phase = d.phase_figures(mark, n).await;
    let counts = d.counts().await?.since(before);
    let (rss, peak) = host::rss_mb(None);
    let nodes = matches!(*d, Driver::Nodes(_));
    if let Ok(d) = Arc::try_unwrap(d) {
        d.shutdown().await;
    }
    let mut figures = json!({
        "n": n,
        "per_s": per_s(n, accepted),
        "complete_per_s": per_s(n, completed),
        "accepted_per_s": per_s(n, accepted),
        "completed_per_s": per_s(n, completed),
        "held_waits": n.min(HELD_WAITS),
        "commits": counts.commits,
        "commits_per_resume": counts.commits as f64 / n.max(1) as f64,
        "writer_busy": writer_busy(counts.commit_s, completed),
        "committed_ops": counts.committed_ops,
        "ops_per_resume": counts.committed_ops as f64 / n.max(1) as f64,
        "cache_misses": counts.cache_misses,
        "rss_mb": rss,
        "peak_rss_mb": peak,
    });
    if let Value::Object(f) = &mut figures {
        if nodes {
            f.insert("lease_takeovers".into(), json!(counts.lease_takeovers));
        }
        f.extend(phase);
    }
    Ok(figures)
}
