//! `stream`: one run of the bundled `collect` workflow receives `n` payloads on one hook, sent
//! over HTTP to a child `tether serve`, each once the previous one was acknowledged (durably
//! journaled). Half way the child is killed with SIGKILL (no shutdown code runs, its leases
//! are not released) and a new one is started on the same database; the restart and what the
//! new process found in the journal are measured from the outside.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tether::Client;

use crate::child::{ChildServer, ServeCommand};
use crate::stats::{mean, ms, per_s};
use crate::store::FreshStore;
use crate::WAIT;

/// What the restart half way took and found.
struct Restart {
    /// SIGKILL sent → the new process listens.
    to_listening: Duration,
    /// SIGKILL sent → the new process acknowledged the next payload.
    to_accepted: Duration,
    /// Entries in the run's journal as the new process reads it, once it took that payload.
    journal_after: usize,
    /// Peak resident memory of the killed process, MB.
    peak_rss_before_mb: Option<f64>,
}

/// Run the workload against a child `tether_bin serve` on `fresh`.
pub(crate) async fn run(fresh: &FreshStore, tether_bin: &Path, n: usize) -> Result<Value, String> {
    if n < 2 {
        return Err("the stream workload needs --n 2 or more (it restarts half way)".into());
    }
    let logs = tempfile::Builder::new()
        .prefix("tether-bench-log-")
        .tempdir()
        .map_err(|e| format!("cannot make a temp dir for the server log: {e}"))?;
    let cmd = ServeCommand {
        program: tether_bin.to_path_buf(),
        store_args: fresh.serve_args(),
        log: logs.path().join("serve.log"),
    };
    let window = 1000.min(n / 2).max(1);
    let half = n / 2;
    let mut server = ChildServer::start(&cmd).await?;
    let run = server
        .client()
        .start_run("collect", &json!({}))
        .await
        .map_err(|e| {
            format!(
                "cannot start the collect run: {e}; the server binary must serve the bundled \
                 examples (the tether binary does)"
            )
        })?;
    let token = hook_token(server.client(), &run).await?;
    let mut samples = Vec::with_capacity(n);
    let mut restart = None;
    let t_first = Instant::now();
    for i in 0..n {
        let payload = if i + 1 == n {
            json!({ "i": i, "done": true })
        } else {
            json!({ "i": i })
        };
        if i == half {
            let (_, peak_rss_before_mb) = server.rss_mb();
            let killed_at = server.kill9().await?;
            server = ChildServer::start(&cmd).await?;
            let to_listening = killed_at.elapsed();
            send(&server, &token, &payload, i).await?;
            let to_accepted = killed_at.elapsed();
            let journal_after = server
                .client()
                .events(&run)
                .await
                .map_err(|e| format!("cannot read the journal after the restart: {e}"))?
                .len();
            restart = Some(Restart {
                to_listening,
                to_accepted,
                journal_after,
                peak_rss_before_mb,
            });
            continue;
        }
        let t = Instant::now();
        send(&server, &token, &payload, i).await?;
        samples.push(t.elapsed());
    }
    let ended = server
        .client()
        .wait_for_run(&run, WAIT)
        .await
        .map_err(|e| format!("waiting for the run's output: {e}"))?;
    let took = t_first.elapsed();
    let received = match (ended.status.as_str(), &ended.output) {
        ("completed", Some(out)) => out["payloads"].as_array().map_or(0, Vec::len),
        (status, _) => {
            return Err(format!(
                "the run ended {status}, not completed; server log: {}",
                server.log_tail()
            ))
        }
    };
    let misses = server.metric("tether_live_run_cache_misses_total").await?;
    let (rss, peak) = server.rss_mb();
    let _ = server.kill9().await; // the data is thrown away
    let Some(restart) = restart else {
        return Err("the restart half way did not happen".into());
    };
    // The journal as the new process read it: `run_started`, `hook_created`, the payloads
    // acknowledged before the kill, and the one just sent.
    let replayed = restart.journal_after.saturating_sub(1);
    if replayed < half + 2 || received != n {
        return Err(format!(
            "payloads were lost: {half} acknowledged before the kill, {replayed} journal \
             entries found after it (expected {}), {received} of {n} received by the run",
            half + 2
        ));
    }
    let first = mean(&samples[..window.min(samples.len())]);
    let last = mean(&samples[samples.len().saturating_sub(window)..]);
    let sent: Duration = samples.iter().sum();
    Ok(json!({
        "n": n,
        "first_ms": first,
        "last_ms": last,
        "last_over_first": if first > 0.0 { (last / first * 100.0).round() / 100.0 } else { 0.0 },
        "accepted_per_s": per_s(samples.len(), sent),
        "completed_per_s": per_s(n, took),
        "acknowledged_before_kill": half,
        "kill_to_listening_ms": ms(restart.to_listening),
        "kill_to_accepted_ms": ms(restart.to_accepted),
        "replayed_events": replayed,
        "cache_misses_after_restart": misses,
        "received": received,
        "server_rss_mb": rss,
        "server_peak_rss_mb": peak,
        "server_peak_rss_before_kill_mb": restart.peak_rss_before_mb,
    }))
}

/// The token of the hook the `collect` run created.
async fn hook_token(client: &Client, run: &str) -> Result<String, String> {
    let hooks = client
        .hooks(run)
        .await
        .map_err(|e| format!("cannot list the run's hooks: {e}"))?;
    hooks
        .into_iter()
        .next()
        .map(|h| h.token)
        .ok_or_else(|| format!("the collect run {run} has no hook"))
}

/// Send payload `i`; answers once the server acknowledged it (durably journaled).
async fn send(server: &ChildServer, token: &str, payload: &Value, i: usize) -> Result<(), String> {
    server
        .client()
        .resume_hook(token, payload, None)
        .await
        .map(|_| ())
        .map_err(|e| {
            format!(
                "payload {i} refused: {e}; server log: {}",
                server.log_tail()
            )
        })
}
