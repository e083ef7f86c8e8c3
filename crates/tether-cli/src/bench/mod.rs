//! `tether bench`: the workloads other engines are measured with, run against a fresh store,
//! one JSON line of figures per run. Timings are measured here, never asserted in tests.

mod driver;
mod stats;
mod workloads;

use std::time::Duration;

use clap::{Args, ValueEnum};
use serde_json::{json, Value};
use tether::cli::CommandError;
use tether::{Ctx, HookOptions, Registry, WorkflowError};

use crate::store::{open_fresh, FreshStore};

/// Arguments of `tether bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The workload to run.
    #[arg(value_enum)]
    pub workload: Workload,
    /// Store to run against: `sqlite` (a fresh file in a temp dir, the default) or a
    /// `postgres://` URL (a fresh schema in that database, dropped afterwards).
    #[arg(long, default_value = "sqlite")]
    pub db: String,
    /// Drive the engine in-process, or through the HTTP API with a real HTTP client.
    #[arg(long, value_enum, default_value_t = Mode::Inproc)]
    pub mode: Mode,
    /// Size of the workload (runs, payloads or steps; each workload has its own default).
    #[arg(long)]
    pub n: Option<usize>,
    /// Concurrent senders / starters.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
}

/// The workloads (same names as in DESIGN §6 and BENCHMARKS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// One run at a time waits on a hook; time from resume to the run's output being observed.
    ResumeLatency,
    /// `n` runs waiting (default 1,000); all resumed by `concurrency` senders.
    ResumeThroughput,
    /// One run receives `n` payloads (default 10,000) on one hook, with a restart half way.
    Stream,
    /// Runs of 10 sequential no-op steps (`n` runs, default 200).
    Steps,
    /// `n` runs (default 100,000) each waiting on a hook: memory, and resuming a random one.
    Suspended,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::ResumeLatency => "resume-latency",
            Workload::ResumeThroughput => "resume-throughput",
            Workload::Stream => "stream",
            Workload::Steps => "steps",
            Workload::Suspended => "suspended",
        }
    }
}

/// How the workload reaches the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Calls on the engine in this process.
    Inproc,
    /// Requests to an HTTP server in this process, through `tether-client`.
    Http,
}

/// Run the benchmark and print its JSON line.
pub async fn run(args: BenchArgs) -> Result<(), CommandError> {
    let fresh = open_fresh(&args.db)
        .await
        .map_err(|e| CommandError::Failed(format!("cannot open a fresh store: {e}")))?;
    let figures = run_on(&args, &fresh).await;
    let backend = fresh.backend();
    fresh.cleanup().await;
    let figures = figures.map_err(|e| CommandError::Failed(format!("benchmark failed: {e}")))?;
    let mut line = json!({
        "workload": args.workload.name(),
        "db": backend,
        "mode": match args.mode { Mode::Inproc => "inproc", Mode::Http => "http" },
        "concurrency": args.concurrency,
    });
    if let (Value::Object(line), Value::Object(figures)) = (&mut line, figures) {
        line.extend(figures);
    }
    println!("{line}");
    Ok(())
}

async fn run_on(args: &BenchArgs, fresh: &FreshStore) -> Result<Value, String> {
    let c = args.concurrency.max(1);
    match args.workload {
        Workload::ResumeLatency => {
            workloads::resume_latency(fresh, args.mode, args.n.unwrap_or(200)).await
        }
        Workload::ResumeThroughput => {
            workloads::resume_throughput(fresh, args.mode, args.n.unwrap_or(1000), c).await
        }
        Workload::Stream => workloads::stream(fresh, args.mode, args.n.unwrap_or(10_000)).await,
        Workload::Steps => workloads::steps(fresh, args.mode, args.n.unwrap_or(200), c).await,
        Workload::Suspended => {
            workloads::suspended(fresh, args.mode, args.n.unwrap_or(100_000), c).await
        }
    }
}

/// Waits for one payload on a hook with the token it is given; returns the payload.
async fn bench_wait(ctx: Ctx, token: String) -> Result<Value, WorkflowError> {
    let hook = ctx
        .create_hook::<Value>(HookOptions::new().token(token))
        .await?;
    hook.await
}

/// Receives `n` payloads on the hook `stream`; returns how many.
async fn bench_stream(ctx: Ctx, n: u64) -> Result<u64, WorkflowError> {
    let mut hook = ctx
        .create_hook::<Value>(HookOptions::new().token("stream"))
        .await?;
    for _ in 0..n {
        hook.recv().await?;
    }
    Ok(n)
}

/// The bundled examples plus the benchmark's own workflows.
fn registry() -> Registry {
    let mut r = Registry::new();
    tether_examples::register(&mut r);
    r.workflow("bench_wait", bench_wait)
        .workflow("bench_stream", bench_stream);
    r
}

/// Peak resident memory of this process, in MB (Linux `VmHWM`).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kb / 1024.0 * 10.0).round() / 10.0)
}

/// Current resident memory of this process, in MB (Linux `VmRSS`).
fn rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kb / 1024.0 * 10.0).round() / 10.0)
}

const WAIT: Duration = Duration::from_secs(60);
