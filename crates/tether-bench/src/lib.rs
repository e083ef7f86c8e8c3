//! Tether's benchmark harness: the workloads other engines are measured with, run against a
//! fresh store, one JSON line of figures per run. The `tether` binary's `bench` command is
//! [`BenchArgs`] handed to [`run`]; BENCHMARKS.md says how each workload measures. Timings are
//! measured here, never asserted in tests.
//!
//! Every line names the workload, the backend, the mode, the commit the harness was built from,
//! the file system under the database file and the resident memory (current and peak), next
//! to the workload's own figures, among them an accepted and a completed rate. With `--nodes
//! N` (PostgreSQL, over HTTP) the workload runs against N child `tether serve` processes on one
//! schema, and the line adds the CPU time they, the database and the bench spent.

mod child;
mod driver;
mod error;
pub mod host;
mod nodes;
pub mod stats;
mod store;
mod workloads;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde_json::{json, Map, Value};
use tether::{Ctx, HookOptions, Registry, WorkflowError};

use driver::Driver;
pub use error::BenchError;
use nodes::{NodeOptions, Nodes};
use store::FreshStore;

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
    /// Where the SQLite file goes (in a new temp dir inside it, removed afterwards). Default:
    /// the system's temp dir, which is often tmpfs (memory: no real fsync), so pass a
    /// directory on the disk you mean to measure. The line's `fs` says which file system it
    /// was.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Drive the engine in-process, or through the HTTP API with a real HTTP client. Default:
    /// `inproc`; `stream` always runs over HTTP against a child `tether serve` (it kills and
    /// restarts that process).
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
    /// Size of the workload (runs, payloads or steps; each workload has its own default).
    #[arg(long)]
    pub n: Option<usize>,
    /// Concurrent senders / starters.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Most runs the engine keeps live (`EngineConfig::max_live_runs`; default the engine's,
    /// 10,000). A smaller cache makes `resume-throughput` at a small `--n` resume evicted
    /// runs (cache misses), e.g. to profile that path under callgrind.
    #[arg(long, value_name = "N")]
    pub max_live_runs: Option<usize>,
    /// Run `resume-throughput` or `steps` against N child `tether serve` processes (each its
    /// own node id) sharing the fresh PostgreSQL schema, requests spread over them (a run may
    /// be resumed and awaited through a node that did not start it), and report the CPU time
    /// each node, every `postgres` process on this host and the bench spent in the timed
    /// phase. PostgreSQL and `--mode http` only. Each node keeps its own connection pool
    /// (`TETHER_DB_POOL_SIZE`, default 16, plus one `LISTEN` connection): mind the server's
    /// `max_connections`.
    #[arg(long, value_name = "N")]
    pub nodes: Option<usize>,
    /// With `--nodes`: count the notifications the nodes' commits send, on a `LISTEN`
    /// connection of the bench's own (one more listener for the database to serve while it
    /// runs, so leave it off when measuring CPU).
    #[arg(long, requires = "nodes")]
    pub count_notifies: bool,
    /// With `--nodes`: send each run's resume and wait to the node that started it (as a
    /// router that knows which node holds a run would), instead of spreading them over the
    /// nodes: measures what cross-node resumes cost.
    #[arg(long, requires = "nodes")]
    pub affinity: bool,
}

/// The workloads (same names as in DESIGN §6 and BENCHMARKS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// One run at a time waits on a hook; time from resume to the run's output being observed.
    ResumeLatency,
    /// `n` runs waiting (default 1,000); all resumed by `concurrency` senders while every
    /// run's result is awaited at once.
    ResumeThroughput,
    /// One run receives `n` payloads (default 10,000) on one hook, from a child `tether serve`
    /// killed with SIGKILL half way and started again on the same database.
    Stream,
    /// Runs of 10 sequential no-op steps (`n` runs, default 200).
    Steps,
    /// `n` runs (default 100,000) each waiting on a hook: memory, and resuming a random one.
    Suspended,
}

impl Workload {
    /// The workload's name on the command line and in the JSON line.
    pub fn name(self) -> &'static str {
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
    /// Requests to an HTTP server (in this process; for `stream`, a child process), through
    /// `tether-client`.
    Http,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Inproc => "inproc",
            Mode::Http => "http",
        }
    }
}

/// Run the benchmark `args` describe; its JSON line of figures. `tether_bin` is the binary
/// whose `serve` command the stream workload starts as a child (the `tether` binary itself:
/// `std::env::current_exe()`).
pub async fn run(args: &BenchArgs, tether_bin: &Path) -> Result<Value, BenchError> {
    let mode = mode_of(args)?;
    let nodes = nodes_of(args, mode)?;
    let fresh = FreshStore::prepare(&args.db, args.dir.as_deref()).map_err(BenchError::Store)?;
    let fs = fresh.dir().and_then(host::fs_type);
    let dir = fresh.dir().map(|d| d.display().to_string());
    let figures = run_on(args, mode, nodes, &fresh, tether_bin).await;
    let backend = fresh.backend();
    fresh.cleanup().await;
    let figures = figures?;
    let (rss, peak) = host::rss_mb(None);
    let mut line = Map::new();
    line.insert("workload".into(), json!(args.workload.name()));
    line.insert("db".into(), json!(backend));
    line.insert("mode".into(), json!(mode.name()));
    line.insert("concurrency".into(), json!(args.concurrency));
    line.insert("commit".into(), json!(host::commit()));
    line.insert("fs".into(), json!(fs));
    line.insert("dir".into(), json!(dir));
    if let Value::Object(figures) = figures {
        line.extend(figures);
    }
    // This process's memory, unless the workload measured its own at a better moment.
    line.entry("rss_mb").or_insert(json!(rss));
    line.entry("peak_rss_mb").or_insert(json!(peak));
    Ok(Value::Object(line))
}

/// The mode to run in: `--mode`, or the workload's own default.
fn mode_of(args: &BenchArgs) -> Result<Mode, BenchError> {
    match (args.workload, args.mode) {
        (Workload::Stream, Some(Mode::Inproc)) => Err(BenchError::Usage(
            "the stream workload kills a real `tether serve` process half way, so it runs over \
             HTTP only: drop --mode inproc (or pass --mode http)"
                .into(),
        )),
        (Workload::Stream, _) => Ok(Mode::Http),
        (_, mode) => Ok(mode.unwrap_or(Mode::Inproc)),
    }
}

/// `--nodes`, checked against the other arguments: `Some(N)` when the workload runs against
/// child servers.
fn nodes_of(args: &BenchArgs, mode: Mode) -> Result<Option<usize>, BenchError> {
    let Some(n) = args.nodes else {
        return Ok(None);
    };
    let refuse = |why: &str| Err(BenchError::Usage(format!("--nodes {n}: {why}")));
    if !(1..=nodes::MAX_NODES).contains(&n) {
        return refuse(&format!("pass 1 to {} nodes", nodes::MAX_NODES));
    }
    if !matches!(args.workload, Workload::ResumeThroughput | Workload::Steps) {
        return refuse(&format!(
            "only resume-throughput and steps run against several nodes, not {}",
            args.workload.name()
        ));
    }
    let lower = args.db.to_ascii_lowercase();
    if !(lower.starts_with("postgres://") || lower.starts_with("postgresql://")) {
        return refuse(
            "nodes share one PostgreSQL database (SQLite has one process): pass --db postgres://...",
        );
    }
    if mode != Mode::Http {
        return refuse(
            "the nodes are child `tether serve` processes, reached over HTTP: pass --mode http",
        );
    }
    Ok(Some(n))
}

async fn run_on(
    args: &BenchArgs,
    mode: Mode,
    nodes: Option<usize>,
    fresh: &FreshStore,
    tether_bin: &Path,
) -> Result<Value, BenchError> {
    let c = args.concurrency.max(1);
    let open = || async { fresh.open().await.map_err(BenchError::Store) };
    // The engine the workload drives: in this process, or `--nodes` child servers.
    let driver = |config| async move {
        let driver = match nodes {
            Some(count) => {
                let options = NodeOptions {
                    count,
                    max_live_runs: args.max_live_runs,
                    count_notifies: args.count_notifies,
                    affinity: args.affinity,
                };
                Nodes::start(fresh, tether_bin, &options)
                    .await
                    .map(Driver::nodes)
            }
            None => Driver::start(open().await?, mode, config).await,
        };
        driver.map_err(BenchError::Failed)
    };
    let figures = match args.workload {
        Workload::ResumeLatency => {
            workloads::latency::run(open().await?, mode, args.n.unwrap_or(200)).await
        }
        Workload::ResumeThroughput => {
            let config = workloads::config(args.max_live_runs);
            workloads::throughput::run(fresh, driver(config).await?, args.n.unwrap_or(1000), c)
                .await
        }
        Workload::Stream => {
            workloads::stream::run(fresh, tether_bin, args.n.unwrap_or(10_000)).await
        }
        Workload::Steps => {
            let config = workloads::config(None);
            workloads::steps::run(driver(config).await?, args.n.unwrap_or(200), c).await
        }
        Workload::Suspended => {
            let config = workloads::config(args.max_live_runs);
            workloads::suspended::run(
                fresh,
                open().await?,
                mode,
                config,
                args.n.unwrap_or(100_000),
                c,
            )
            .await
        }
    };
    figures.map_err(BenchError::Failed)
}

/// Waits for one payload on a hook with the token it is given; returns the payload.
async fn bench_wait(ctx: Ctx, token: String) -> Result<Value, WorkflowError> {
    let hook = ctx
        .create_hook::<Value>(HookOptions::new().token(token))
        .await?;
    hook.await
}

/// The bundled examples plus the benchmark's own workflow.
fn registry() -> Registry {
    let mut r = Registry::new();
    tether_examples::register(&mut r);
    r.workflow("bench_wait", bench_wait);
    r
}

/// How long a workload waits for one run to end before giving up.
const WAIT: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn parse(args: &[&str]) -> BenchArgs {
        let argv = std::iter::once("bench").chain(args.iter().copied());
        match Cli::try_parse_from(argv) {
            Ok(cli) => cli.bench,
            Err(e) => panic!("{args:?}: {e}"),
        }
    }

    #[test]
    fn stream_defaults_to_http_and_refuses_inproc() {
        assert_eq!(mode_of(&parse(&["stream"])).ok(), Some(Mode::Http));
        let err = mode_of(&parse(&["stream", "--mode", "inproc"])).err();
        assert!(matches!(err, Some(BenchError::Usage(m)) if m.contains("--mode inproc")));
        assert_eq!(mode_of(&parse(&["steps"])).ok(), Some(Mode::Inproc));
        assert_eq!(
            mode_of(&parse(&["resume-throughput", "--mode", "http"])).ok(),
            Some(Mode::Http)
        );
    }

    #[test]
    fn nodes_need_postgres_http_and_a_workload_that_spreads() {
        let pg = "postgres://u@127.0.0.1/db";
        let ok = parse(&[
            "resume-throughput",
            "--db",
            pg,
            "--mode",
            "http",
            "--nodes",
            "2",
        ]);
        assert_eq!(nodes_of(&ok, Mode::Http).ok(), Some(Some(2)));
        let steps = parse(&["steps", "--db", pg, "--mode", "http", "--nodes", "1"]);
        assert_eq!(nodes_of(&steps, Mode::Http).ok(), Some(Some(1)));
        let none = parse(&["resume-throughput", "--db", pg, "--mode", "http"]);
        assert_eq!(nodes_of(&none, Mode::Http).ok(), Some(None));
        let refused = |args: &[&str], why: &str| {
            let args = parse(args);
            let mode = mode_of(&args).ok().unwrap_or(Mode::Inproc);
            let err = nodes_of(&args, mode).err();
            assert!(
                matches!(&err, Some(BenchError::Usage(m)) if m.contains(why)),
                "{err:?} does not say {why:?}"
            );
        };
        refused(
            &["resume-throughput", "--nodes", "2", "--mode", "http"],
            "--db postgres://",
        );
        refused(
            &["resume-throughput", "--db", pg, "--nodes", "2"],
            "pass --mode http",
        );
        refused(
            &[
                "resume-latency",
                "--db",
                pg,
                "--mode",
                "http",
                "--nodes",
                "2",
            ],
            "not resume-latency",
        );
        refused(
            &["steps", "--db", pg, "--mode", "http", "--nodes", "0"],
            "pass 1 to 64",
        );
        for flag in ["--count-notifies", "--affinity"] {
            let cli = Cli::try_parse_from(["bench", "steps", flag]);
            assert!(cli.is_err(), "{flag} without --nodes");
        }
    }

    #[test]
    fn dir_is_taken() {
        let args = parse(&["suspended", "--dir", "/var/tmp", "--n", "10"]);
        assert_eq!(args.dir.as_deref(), Some(Path::new("/var/tmp")));
        assert_eq!(args.n, Some(10));
    }
}
