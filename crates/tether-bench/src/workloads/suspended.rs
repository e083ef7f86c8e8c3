//! `suspended`: `n` runs waiting on hooks; memory with all of them waiting, then 100 random
//! ones resumed one at a time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tether::store::Store;

use tether::EngineConfig;

use super::start_waiting;
use crate::driver::Driver;
use crate::host;
use crate::stats::{per_s, percentile};
use crate::store::FreshStore;
use crate::Mode;

/// `rss_mb`/`peak_rss_mb`: this process with all `n` waiting; `p50_ms`: resume → result of a
/// random one. `accepted_per_s`: runs started (and waiting) per second; `completed_per_s`:
/// random resumes completed per second, one at a time.
pub(crate) async fn run(
    fresh: &FreshStore,
    store: Arc<dyn Store>,
    mode: Mode,
    config: EngineConfig,
    n: usize,
    c: usize,
) -> Result<Value, String> {
    let d = Arc::new(Driver::start(store, mode, config).await?);
    let (base, _) = host::rss_mb(None);
    let t0 = Instant::now();
    let runs = start_waiting(&d, "s", n, c).await?;
    fresh.analyze().await?;
    let started = t0.elapsed();
    let (rss, peak) = host::rss_mb(None);
    let mut samples = Vec::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..100.min(n) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let i = (x % n as u64) as usize;
        let (run, token) = &runs[i];
        if run.is_empty() {
            continue;
        }
        let t = Instant::now();
        match d.resume(i, token, json!({})).await {
            Ok(_) => {}
            Err(e) if e.contains("not found") => continue, // drawn twice
            Err(e) => return Err(e),
        }
        d.output(i, run).await?;
        samples.push(t.elapsed());
    }
    if let Ok(d) = Arc::try_unwrap(d) {
        d.shutdown().await;
    }
    let resumed: Duration = samples.iter().sum();
    Ok(json!({
        "n": n,
        "start_per_s": per_s(n, started),
        "accepted_per_s": per_s(n, started),
        "completed_per_s": per_s(samples.len(), resumed),
        "rss_mb": rss,
        "peak_rss_mb": peak,
        "rss_before_mb": base,
        "p50_ms": percentile(&mut samples, 50.0),
        "resumed": samples.len(),
    }))
}
