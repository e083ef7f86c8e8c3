//! A soak (#17 point 8): mixed load — payloads resumed into `collect` streams, `steps` runs,
//! `enrich` runs (a spawned hook thread each), `webhook_echo` runs called over HTTP and
//! `timeout_approval` runs whose timer fires — against the real `tether` binary, `kill -9`ed
//! and restarted on the same database every `TETHER_SOAK_KILL_SECS` (default: a third of the
//! run, at most 60 s), with a short `--retention`. Every second it samples the server's RSS,
//! its open files (`/proc/<pid>/fd`) and the database: the file and the WAL apart, and, read
//! with a read-only connection of its own, `page_count`, `freelist_count` and the rows and
//! pages of every table (`soak_support`).
//!
//! It checks that every payload was delivered exactly once, in order, that every run ended as
//! it should, that runs ended long ago were deleted, and, loosely, that RSS, open files and
//! the database's size stay flat: the last third's maximum is within [`FLAT_FACTOR`] of the
//! first third's (no timing assertion). After the load it waits for retention to delete every
//! run and checks that no table keeps a row of theirs. `TETHER_SOAK_SECS` sets the duration
//! (default 60, the CI version; `scripts/soak.sh` runs 20 minutes); `TETHER_SOAK_CSV` names a
//! file for the samples.

mod common;
mod faults_support;
mod soak_support;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{of_type, Server, PATIENCE};
use faults_support::{addr, free_port, payload, retryable};
use serde_json::{json, Value};
use soak_support::{rows, sample_db, Sample};
use tether_client::{Client, ClientError, RunInfo};

/// Ended runs are deleted this long after they end.
const RETENTION_SECS: u64 = 10;
/// How much the last third's maximum may exceed the first third's.
const FLAT_FACTOR: f64 = 3.0;
/// Payloads per `collect` stream.
const PAYLOADS: u64 = 5;
/// Concurrent load lanes.
const LANES: usize = 4;

fn env_secs(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// Retry `f` while it fails in a way worth retrying (the server is down or restarting).
async fn retry<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if retryable(&e) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{what}: {e:?}"),
        }
    }
}

/// Start a run idempotently (a retry after a kill answers with the same run).
async fn start(client: &Client, workflow: &str, input: Value, id: &str) -> String {
    retry(&format!("start {id}"), || {
        client.start_run_idempotent(workflow, &input, Some(id), None)
    })
    .await
}

/// Wait for the run to end, across restarts.
async fn ended(client: &Client, run_id: &str) -> RunInfo {
    let run = retry(&format!("wait for {run_id}"), || {
        client.wait_for_run(run_id, PATIENCE)
    })
    .await;
    assert!(run.is_terminal(), "run {run_id} did not end: {run:?}");
    run
}

async fn events(client: &Client, run_id: &str) -> Vec<Value> {
    retry(&format!("events of {run_id}"), || client.events(run_id)).await
}

/// A `collect` stream: every payload sent with its key until answered, then exactly those
/// payloads, in order, each journaled once.
async fn collect_stream(client: &Client, id: &str, delivered: &AtomicU64) {
    let run_id = start(client, "collect", json!({}), id).await;
    let token = loop {
        let hooks = retry("hooks", || client.hooks(&run_id)).await;
        if let Some(h) = hooks.first() {
            break h.token.clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for k in 1..=PAYLOADS {
        let key = format!("p-{k}");
        let body = payload(k, PAYLOADS);
        let answered = retry(&format!("payload {k} of {run_id}"), || {
            client.resume_hook(&token, &body, Some(&key))
        })
        .await;
        assert_eq!(answered, run_id);
        delivered.fetch_add(1, Ordering::SeqCst);
    }
    let run = ended(client, &run_id).await;
    let expected: Vec<Value> = (1..=PAYLOADS).map(|k| payload(k, PAYLOADS)).collect();
    assert_eq!(
        run.output,
        Some(json!({ "payloads": expected })),
        "{run_id}"
    );
    let n = of_type(&events(client, &run_id).await, "hook_received").len() as u64;
    assert_eq!(n, PAYLOADS, "run {run_id}: each payload journaled once");
}

/// A `webhook_echo` run called once over HTTP (a retry after a kill may find the hook gone
/// because the first call got through: the journal says how many arrived).
async fn webhook(client: &Client, base: &str, id: &str) {
    let run_id = start(client, "webhook_echo", json!({"mode": "static"}), id).await;
    let token = loop {
        let hooks = retry("hooks", || client.hooks(&run_id)).await;
        if let Some(h) = hooks.first() {
            break h.token.clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let http = reqwest::Client::new();
    let url = format!("{base}/.well-known/workflow/v1/webhook/{token}");
    let deadline = Instant::now() + PATIENCE;
    let mut tried = false;
    loop {
        match http.post(&url).json(&json!({"id": id})).send().await {
            Ok(r) if r.status().as_u16() == 202 => break,
            Ok(r) if r.status().as_u16() == 404 && tried => break,
            Ok(r) if r.status().is_server_error() => {}
            Ok(r) => panic!("webhook of {run_id}: {}", r.status()),
            Err(_) => {}
        }
        tried = true;
        assert!(
            Instant::now() < deadline,
            "webhook of {run_id} never answered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let run = ended(client, &run_id).await;
    assert_eq!(run.status, "completed", "{run:?}");
    let n = of_type(&events(client, &run_id).await, "hook_received").len();
    assert_eq!(n, 1, "webhook of {run_id} delivered exactly once");
}

/// One load lane: waves of one stream and one other workflow, in turn, until `stop`.
async fn lane(lane: usize, client: Client, base: String, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let mut wave = 0u64;
    while !stop.load(Ordering::SeqCst) {
        wave += 1;
        let id = format!("soak-{lane}-{wave}");
        collect_stream(&client, &format!("{id}-c"), &tally.payloads).await;
        let other = format!("{id}-x");
        match wave % 4 {
            0 => {
                let r = start(&client, "steps", json!({"n": 20}), &other).await;
                let run = ended(&client, &r).await;
                assert_eq!(run.output, Some(json!({"steps": 20})), "{run:?}");
            }
            1 => {
                let r = start(&client, "enrich", json!({"name": other}), &other).await;
                let run = ended(&client, &r).await;
                assert_eq!(run.status, "completed", "{run:?}");
            }
            2 => webhook(&client, &base, &other).await,
            _ => {
                let input = json!({"timeout_ms": 300});
                let r = start(&client, "timeout_approval", input, &other).await;
                let run = ended(&client, &r).await;
                assert_eq!(run.output, Some(json!({"timed_out": true})), "{run:?}");
            }
        }
        tally.runs.fetch_add(2, Ordering::SeqCst);
        if wave == 1 {
            tally.first.lock().expect("lock").push(format!("{id}-c"));
        }
    }
}

#[derive(Default)]
struct Tally {
    payloads: AtomicU64,
    runs: AtomicU64,
    first: Mutex<Vec<String>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_load_with_kills_stays_flat_and_delivers_once() {
    let secs = env_secs("TETHER_SOAK_SECS", 60);
    let kill_every = env_secs("TETHER_SOAK_KILL_SECS", (secs / 3).clamp(1, 60));
    let (_dir, db) = common::temp_db();
    let listen = addr(free_port());
    let retention = format!("{RETENTION_SECS}s");
    let args = ["--addr", listen.as_str(), "--retention", retention.as_str()];
    let mut server = Server::start_with(&db, &args);
    let base = server.url.clone();
    let client = server.client.clone();
    let pid = Arc::new(AtomicU32::new(server.pid()));

    let began = Instant::now();
    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (pid, samples, stop, db) = (pid.clone(), samples.clone(), stop.clone(), db.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let p = pid.load(Ordering::SeqCst);
                if let (Some(rss_kib), Some(fds)) = (rss_kib(p), fds(p)) {
                    let t = began.elapsed().as_secs_f64();
                    let (main_bytes, wal_bytes, inside) = sample_db(&db);
                    let s = Sample {
                        t,
                        rss_kib,
                        fds,
                        main_bytes,
                        wal_bytes,
                        inside,
                    };
                    samples.lock().expect("lock").push(s);
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };
    let tally = Arc::new(Tally::default());
    let mut lanes = tokio::task::JoinSet::new();
    for l in 0..LANES {
        lanes.spawn(lane(
            l,
            client.clone(),
            base.clone(),
            stop.clone(),
            tally.clone(),
        ));
    }
    let mut kills = 0u32;
    let mut next_kill = began + Duration::from_secs(kill_every);
    while began.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if Instant::now() >= next_kill && began.elapsed() < Duration::from_secs(secs) {
            server.kill();
            kills += 1;
            server = Server::start_with(&db, &args);
            pid.store(server.pid(), Ordering::SeqCst);
            next_kill = Instant::now() + Duration::from_secs(kill_every);
        }
    }
    stop.store(true, Ordering::SeqCst);
    while let Some(r) = lanes.join_next().await {
        r.expect("a load lane failed");
    }
    sampler.join().expect("sampler");
    let samples = samples.lock().expect("lock").clone();

    // Runs of the first wave ended more than the retention ago: deleted.
    let mut deleted = 0;
    if secs > 3 * RETENTION_SECS {
        let first = tally.first.lock().expect("lock").clone();
        for id in &first {
            match client.get_run(id).await {
                Err(ClientError::Api { status: 404, .. }) => deleted += 1,
                other => panic!("run {id} ended long ago and should be deleted: {other:?}"),
            }
        }
    }

    if let Ok(path) = std::env::var("TETHER_SOAK_CSV") {
        std::fs::write(&path, soak_support::csv(&samples)).expect("write the samples");
    }
    soak_support::describe("at the end of the load", samples.last().expect("a sample"));
    let drained = drain(&db).await;
    soak_support::describe("drained", &drained);
    let thirds = soak_support::report(&samples);
    println!(
        "soak: {secs} s, {kills} kill -9, {} payloads delivered exactly once, {} runs checked, \
         {deleted} first-wave runs deleted by retention, {} samples",
        tally.payloads.load(Ordering::SeqCst),
        tally.runs.load(Ordering::SeqCst),
        samples.len()
    );
    assert!(samples.len() >= 6, "too few samples: {}", samples.len());
    for name in ["rss_kib", "open_fds", "db_bytes"] {
        let (first, last) = thirds[name];
        assert!(
            last as f64 <= first as f64 * FLAT_FACTOR,
            "{name} grew: last third max {last} > {FLAT_FACTOR} x first third max {first}"
        );
    }
    // Once every run has been deleted, nothing of theirs may be left in any table.
    let inside = drained.inside.expect("the drained database was read");
    for (table, n) in &inside.rows {
        if table != "schema_migrations" {
            assert_eq!(*n, 0, "{table} keeps {n} rows after every run was deleted");
        }
    }
}

/// After the load: wait (the server still running) until retention has deleted every run,
/// and return the sample that saw none.
async fn drain(db: &std::path::Path) -> Sample {
    let began = Instant::now();
    let deadline = began + Duration::from_secs(RETENTION_SECS) + PATIENCE;
    loop {
        let (main_bytes, wal_bytes, inside) = sample_db(db);
        let s = Sample {
            t: began.elapsed().as_secs_f64(),
            main_bytes,
            wal_bytes,
            inside,
            ..Sample::default()
        };
        if rows(&s, "runs") == Some(0) {
            println!("soak: every run deleted {:.1} s after the load", s.t);
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "runs still in the database {:.0} s after the load: {:?}",
            s.t,
            rows(&s, "runs")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
