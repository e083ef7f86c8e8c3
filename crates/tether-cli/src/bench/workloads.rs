//! The workloads. Each returns its figures as a JSON object.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use tether::EngineConfig;

use super::driver::Driver;
use super::stats::{mean, ms, percentile};
use super::{peak_rss_mb, rss_mb, Mode};
use crate::store::FreshStore;

fn config() -> EngineConfig {
    EngineConfig::default()
}

/// One run at a time: start it (it waits on its hook), resume it, wait for its output.
pub(crate) async fn resume_latency(
    fresh: &FreshStore,
    mode: Mode,
    n: usize,
) -> Result<Value, String> {
    let d = Driver::start(fresh, mode, config()).await?;
    let warmup = 20;
    let mut samples = Vec::with_capacity(n);
    for i in 0..warmup + n {
        let token = format!("lat-{i}");
        let run = d.start_run("bench_wait", json!(token)).await?;
        let t0 = Instant::now();
        d.resume(&token, json!({ "i": i })).await?;
        d.output(&run).await?;
        if i >= warmup {
            samples.push(t0.elapsed());
        }
    }
    d.shutdown().await;
    Ok(json!({
        "n": n,
        "warmup": warmup,
        "p50_ms": percentile(&mut samples, 50.0),
        "p90_ms": percentile(&mut samples, 90.0),
        "p99_ms": percentile(&mut samples, 99.0),
    }))
}

/// Start `n` runs waiting on hooks with `c` concurrent starters.
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

/// `n` runs waiting; `c` senders resume them all. `per_s`: resumes accepted per second;
/// `complete_per_s`: runs finished per second, from the first resume to the last output.
pub(crate) async fn resume_throughput(
    fresh: &FreshStore,
    mode: Mode,
    n: usize,
    c: usize,
) -> Result<Value, String> {
    let d = Arc::new(Driver::start(fresh, mode, config()).await?);
    let runs = start_waiting(&d, "tp", n, c).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..c {
        let d = d.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, String>(());
                }
                d.resume(&format!("tp-{i}"), json!({ "i": i })).await?;
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    let accepted = t0.elapsed();
    for run in &runs {
        d.output(run).await?;
    }
    let completed = t0.elapsed();
    if let Ok(d) = Arc::try_unwrap(d) {
        d.shutdown().await;
    }
    Ok(json!({
        "n": n,
        "per_s": (n as f64 / accepted.as_secs_f64()).round(),
        "complete_per_s": (n as f64 / completed.as_secs_f64()).round(),
        "rss_mb": peak_rss_mb(),
    }))
}

/// One run, `n` payloads on one hook, each sent once the previous was processed; a restart
/// half way. `first_ms`/`last_ms`: mean ms per payload over the first and last 1,000.
pub(crate) async fn stream(fresh: &FreshStore, mode: Mode, n: usize) -> Result<Value, String> {
    if mode == Mode::Http {
        return Err("the stream workload runs in-process only (--mode inproc)".into());
    }
    let window = 1000.min(n / 2).max(1);
    let half = n / 2;
    let mut d = Driver::start(fresh, mode, config()).await?;
    let run = d.start_run("bench_stream", json!(n)).await?;
    let mut samples = Vec::with_capacity(n);
    let mut restart_replay = None;
    // Journal: 1 run_started, 2 hook_created, then one hook_received per payload.
    for i in 0..n {
        if i == half && half > 0 {
            d.shutdown().await;
            let t = Instant::now();
            d = Driver::start(fresh, mode, config()).await?;
            d.resume("stream", json!({ "i": i })).await?;
            if !d
                .engine()
                .wait_applied(&run, 3 + i as u64, super::WAIT)
                .await
            {
                return Err("the run was not rebuilt after the restart".into());
            }
            restart_replay = Some(t.elapsed());
            continue;
        }
        let t = Instant::now();
        d.resume("stream", json!({ "i": i })).await?;
        if i + 1 == n {
            d.output(&run).await?; // the last payload ends the run
        } else if !d
            .engine()
            .wait_applied(&run, 3 + i as u64, super::WAIT)
            .await
        {
            return Err(format!("payload {i} was not processed in time"));
        }
        samples.push(t.elapsed());
    }
    d.shutdown().await;
    let first = mean(&samples[..window.min(samples.len())]);
    let last = mean(&samples[samples.len().saturating_sub(window)..]);
    Ok(json!({
        "n": n,
        "first_ms": first,
        "last_ms": last,
        "last_over_first": if first > 0.0 { (last / first * 100.0).round() / 100.0 } else { 0.0 },
        "restart_replay_ms": restart_replay.map(ms),
        "replayed_events": half + 2,
    }))
}

/// `n` runs of 10 sequential no-op steps, `c` at a time; steps per second.
pub(crate) async fn steps(
    fresh: &FreshStore,
    mode: Mode,
    n: usize,
    c: usize,
) -> Result<Value, String> {
    let d = Arc::new(Driver::start(fresh, mode, config()).await?);
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..c {
        let d = d.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let run = d.start_run("steps", json!({ "n": 10 })).await?;
                d.output(&run).await?;
            }
            Ok::<_, String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    let took = t0.elapsed();
    if let Ok(d) = Arc::try_unwrap(d) {
        d.shutdown().await;
    }
    Ok(json!({
        "n": n,
        "steps": n * 10,
        "per_s": ((n * 10) as f64 / took.as_secs_f64()).round(),
    }))
}

/// `n` runs waiting on hooks; memory with all waiting; p50 to resume a random one of them.
pub(crate) async fn suspended(
    fresh: &FreshStore,
    mode: Mode,
    n: usize,
    c: usize,
) -> Result<Value, String> {
    let d = Arc::new(Driver::start(fresh, mode, config()).await?);
    let base = rss_mb();
    let t0 = Instant::now();
    let runs = start_waiting(&d, "s", n, c).await?;
    let started = t0.elapsed();
    let rss = rss_mb();
    let mut samples = Vec::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..100.min(n) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let i = (x % n as u64) as usize;
        if runs[i].is_empty() {
            continue;
        }
        let t = Instant::now();
        match d.resume(&format!("s-{i}"), json!({})).await {
            Ok(_) => {}
            Err(e) if e.contains("not found") => continue, // drawn twice
            Err(e) => return Err(e),
        }
        d.output(&runs[i]).await?;
        samples.push(t.elapsed());
    }
    if let Ok(d) = Arc::try_unwrap(d) {
        d.shutdown().await;
    }
    Ok(json!({
        "n": n,
        "start_per_s": (n as f64 / started.as_secs_f64()).round(),
        "rss_mb": rss,
        "rss_before_mb": base,
        "p50_ms": percentile(&mut samples, 50.0),
        "resumed": samples.len(),
    }))
}
