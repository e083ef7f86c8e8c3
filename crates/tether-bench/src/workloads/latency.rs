//! `resume-latency`: one run at a time waits on its hook; the wait for its result is opened,
//! then it is resumed. Measures resume → accepted and resume → result observed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tether::store::Store;

use super::config;
use crate::driver::Driver;
use crate::stats::{per_s, percentile};
use crate::Mode;

/// Run `n` measured rounds (after 20 unmeasured ones).
pub(crate) async fn run(store: Arc<dyn Store>, mode: Mode, n: usize) -> Result<Value, String> {
    let d = Arc::new(Driver::start(store, mode, config(None)).await?);
    // Over HTTP: connections for the start, the held wait and the resume, opened untimed.
    d.warm_connections(1, 3).await?;
    let warmup = 20;
    let mut accepted = Vec::with_capacity(n);
    let mut completed = Vec::with_capacity(n);
    for i in 0..warmup + n {
        let token = format!("lat-{i}");
        let run = d.start_run(i, "bench_wait", json!(token)).await?;
        // The result is awaited before the resume is sent, as a client holding the request
        // open would.
        let waiter = {
            let d = d.clone();
            tokio::spawn(async move { d.output(i, &run).await.map(|_| Instant::now()) })
        };
        tokio::task::yield_now().await;
        let t0 = Instant::now();
        d.resume(i, &token, json!({ "i": i })).await?;
        let acked = t0.elapsed();
        let done = waiter
            .await
            .map_err(|e| format!("the wait task failed: {e}"))??;
        if i >= warmup {
            accepted.push(acked);
            completed.push(done.saturating_duration_since(t0));
        }
    }
    if let Ok(d) = Arc::try_unwrap(d) {
        d.shutdown().await;
    }
    let accepted_total: Duration = accepted.iter().sum();
    let completed_total: Duration = completed.iter().sum();
    Ok(json!({
        "n": n,
        "warmup": warmup,
        "p50_ms": percentile(&mut completed, 50.0),
        "p90_ms": percentile(&mut completed, 90.0),
        "p99_ms": percentile(&mut completed, 99.0),
        "accepted_p50_ms": percentile(&mut accepted, 50.0),
        "accepted_p99_ms": percentile(&mut accepted, 99.0),
        "accepted_per_s": per_s(n, accepted_total),
        "completed_per_s": per_s(n, completed_total),
    }))
}
