//! One interface over the ways a workload reaches engines: direct calls on an engine in this
//! process (`inproc`), HTTP requests to a server running in this process (`http`, with
//! `tether-client`), or HTTP requests spread over N child `tether serve` processes
//! (`--nodes`, see [`crate::nodes`]). Each request names the run it is for (`slot`: its number
//! in the workload), which picks the node; in this process it is ignored.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tether::store::Store;
use tether::Client;
use tether::{Engine, EngineConfig};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::nodes::{Mark, Nodes, Role};
use crate::{registry, Mode, WAIT};

/// A running engine, reached in-process or over HTTP, or several child servers.
pub(crate) enum Driver {
    /// An engine in this process, with a server in front of it in `http` mode.
    Local { engine: Engine, http: Option<Http> },
    /// Child `tether serve` processes on one PostgreSQL schema.
    Nodes(Nodes),
}

pub(crate) struct Http {
    client: Client,
    stop: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
}

impl Driver {
    /// Start an engine with `config` on `store` (and a server, in `http` mode).
    pub(crate) async fn start(
        store: Arc<dyn Store>,
        mode: Mode,
        config: EngineConfig,
    ) -> Result<Driver, String> {
        let engine = Engine::start(store, registry(), config);
        let http = match mode {
            Mode::Inproc => None,
            Mode::Http => {
                // Every held wait is a socket at each end, both in this process.
                if let Err(e) = tether_server::raise_fd_limit() {
                    tracing::warn!(error = %e, "cannot raise the open-file limit");
                }
                let listener = listen().map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
                let addr = listener
                    .local_addr()
                    .map_err(|e| format!("local addr: {e}"))?;
                let (stop, stopping) = watch::channel(false);
                let options = tether::server::ServerOptions {
                    stopping: Some(stopping.clone()),
                    ..Default::default()
                };
                let router = tether::server::router(engine.clone(), options);
                let mut rx = stopping;
                let server = tokio::spawn(tether::server::serve(listener, router, async move {
                    let _ = rx.wait_for(|s| *s).await;
                }));
                let http = reqwest::Client::builder()
                    .pool_max_idle_per_host(IDLE_CONNECTIONS)
                    .build()
                    .map_err(|e| format!("http client: {e}"))?;
                Some(Http {
                    client: Client::with_http_client(format!("http://{addr}"), http),
                    stop,
                    server,
                })
            }
        };
        Ok(Driver::Local { engine, http })
    }

    /// Drive the child servers `nodes`.
    pub(crate) fn nodes(nodes: Nodes) -> Driver {
        Driver::Nodes(nodes)
    }

    /// The client of the server a request goes to: `None` in-process.
    fn client(&self, slot: usize, role: Role) -> Option<&Client> {
        match self {
            Driver::Local { http, .. } => http.as_ref().map(|h| &h.client),
            Driver::Nodes(nodes) => Some(nodes.client(slot, role)),
        }
    }

    /// Over HTTP, open connections for `waits` held waits and `senders` concurrent senders at
    /// once and leave them idle in the client's pool, so requests sent later (held waits,
    /// resumes) do not each open one inside the measured time. Against nodes, each node gets
    /// its share of the waits and room for every sender. Does nothing in-process.
    pub(crate) async fn warm_connections(
        &self,
        waits: usize,
        senders: usize,
    ) -> Result<(), String> {
        let h = match self {
            Driver::Local { http: Some(h), .. } => h,
            Driver::Local { http: None, .. } => return Ok(()),
            Driver::Nodes(nodes) => {
                return nodes.warm(waits.div_ceil(nodes.len()) + senders).await;
            }
        };
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..(waits + senders).min(IDLE_CONNECTIONS) {
            let client = h.client.clone();
            calls.spawn(async move { client.health().await.map(|_| ()) });
        }
        while let Some(done) = calls.join_next().await {
            done.map_err(|e| format!("a warm-up request failed: {e}"))?
                .map_err(|e| format!("warm-up GET /healthz: {e}"))?;
        }
        Ok(())
    }

    /// Start run `slot`, of `workflow`; its id once the start is durable.
    pub(crate) async fn start_run(
        &self,
        slot: usize,
        workflow: &str,
        input: Value,
    ) -> Result<String, String> {
        match (self, self.client(slot, Role::Start)) {
            (_, Some(client)) => client
                .start_run(workflow, &input)
                .await
                .map_err(|e| e.to_string()),
            (Driver::Local { engine, .. }, None) => engine
                .start_run(workflow, input)
                .await
                .map_err(|e| e.to_string()),
            (Driver::Nodes(_), None) => Err("no node to start a run on".into()),
        }
    }

    /// Start run `slot` waiting on one hook that its first payload (with `"done": true`)
    /// ends; its id and the hook's token. In this process's engine the bench's `bench_wait`
    /// with `token`; against child servers the bundled `collect` (the token is generated).
    pub(crate) async fn start_waiting(
        &self,
        slot: usize,
        token: String,
    ) -> Result<(String, String), String> {
        match self {
            Driver::Nodes(nodes) => nodes.start_waiting(slot).await,
            Driver::Local { .. } => {
                let run = self.start_run(slot, "bench_wait", json!(token)).await?;
                Ok((run, token))
            }
        }
    }

    /// Deliver `payload` to the hook holding `token` (of run `slot`); answers once it is
    /// durable.
    pub(crate) async fn resume(
        &self,
        slot: usize,
        token: &str,
        payload: Value,
    ) -> Result<String, String> {
        match (self, self.client(slot, Role::Resume)) {
            (_, Some(client)) => client
                .resume_hook(token, &payload, None)
                .await
                .map_err(|e| e.to_string()),
            (Driver::Local { engine, .. }, None) => engine
                .resume_hook(token, payload, None)
                .await
                .map_err(|e| e.to_string()),
            (Driver::Nodes(_), None) => Err("no node to resume on".into()),
        }
    }

    /// Wait for run `slot` (`run_id`) to end (over HTTP: a held long-poll); its output.
    pub(crate) async fn output(&self, slot: usize, run_id: &str) -> Result<Value, String> {
        let (status, output) = match (self, self.client(slot, Role::Wait)) {
            (_, Some(client)) => {
                let run = client
                    .wait_for_run(run_id, WAIT)
                    .await
                    .map_err(|e| e.to_string())?;
                (run.status, run.output)
            }
            (Driver::Local { engine, .. }, None) => {
                let run = engine
                    .wait_for_run(run_id, WAIT)
                    .await
                    .map_err(|e| e.to_string())?;
                (run.status.to_string(), run.output)
            }
            (Driver::Nodes(_), None) => return Err("no node to wait on".into()),
        };
        match (status.as_str(), output) {
            ("completed", Some(v)) => Ok(v),
            (s, _) => Err(format!("run {run_id} ended {s}, not completed")),
        }
    }

    /// The engine's write counts as they are now (against nodes: summed over their
    /// `/metrics`).
    pub(crate) async fn counts(&self) -> Result<EngineCounts, String> {
        match self {
            Driver::Local { engine, .. } => {
                let m = engine.metrics().snapshot();
                Ok(EngineCounts {
                    commits: m.commits.count,
                    commit_s: m.commits.sum,
                    committed_ops: m.committed_ops,
                    cache_misses: m.live_run_cache_misses,
                    lease_takeovers: m.lease_takeovers,
                })
            }
            Driver::Nodes(nodes) => {
                let c = nodes.counters().await?;
                Ok(EngineCounts {
                    commits: c.commits,
                    commit_s: c.commit_s,
                    committed_ops: c.committed_ops,
                    cache_misses: c.cache_misses,
                    lease_takeovers: c.lease_takeovers,
                })
            }
        }
    }

    /// Against nodes, CPU times and counts now, for [`Driver::phase_figures`]; `None` in this
    /// process (nothing measured from outside).
    pub(crate) fn mark(&self) -> Option<Mark> {
        match self {
            Driver::Local { .. } => None,
            Driver::Nodes(nodes) => Some(nodes.mark()),
        }
    }

    /// Against nodes, what the phase since `start` cost (see [`Mark::figures`]) for `runs`
    /// completed runs, with `nodes`, the resumes and waits sent so far to a node that did not
    /// start their run (`cross_node_resumes`, `cross_node_waits`) and each node's resident
    /// memory; empty in this process.
    pub(crate) async fn phase_figures(
        &self,
        start: Option<Mark>,
        runs: usize,
    ) -> serde_json::Map<String, Value> {
        match (self, start) {
            (Driver::Nodes(nodes), Some(start)) => {
                let mut f = start.figures(&nodes.end_mark().await, runs);
                let (resumes, waits) = nodes.cross_node();
                f.insert("nodes".into(), json!(nodes.len()));
                f.insert("cross_node_resumes".into(), json!(resumes));
                f.insert("cross_node_waits".into(), json!(waits));
                f.insert("node_rss_mb".into(), json!(nodes.rss_mb()));
                f
            }
            _ => serde_json::Map::new(),
        }
    }

    /// Stop the server (if any) and the engine, or the child servers.
    pub(crate) async fn shutdown(self) {
        match self {
            Driver::Local { engine, http } => {
                if let Some(h) = http {
                    let _ = h.stop.send(true);
                    let _ = tokio::time::timeout(Duration::from_secs(5), h.server).await;
                }
                engine.shutdown().await;
            }
            Driver::Nodes(nodes) => nodes.shutdown().await,
        }
    }
}

/// Counters of the engine (from its metrics), to tell what a timed phase cost.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EngineCounts {
    /// Group commits (store transactions, one fsync each).
    pub commits: u64,
    /// Seconds those commits took, summed (the writer commits one batch at a time, so this
    /// over the phase's duration is how busy it was).
    pub commit_s: f64,
    /// Write ops those commits held.
    pub committed_ops: u64,
    /// Deliveries to a run that was not live (rebuilt from the store).
    pub cache_misses: u64,
    /// Runs claimed from another node's lease.
    pub lease_takeovers: u64,
}

impl EngineCounts {
    /// What happened between `before` and `self`.
    pub(crate) fn since(self, before: EngineCounts) -> EngineCounts {
        EngineCounts {
            commits: self.commits.saturating_sub(before.commits),
            commit_s: (self.commit_s - before.commit_s).max(0.0),
            committed_ops: self.committed_ops.saturating_sub(before.committed_ops),
            cache_misses: self.cache_misses.saturating_sub(before.cache_misses),
            lease_takeovers: self.lease_takeovers.saturating_sub(before.lease_takeovers),
        }
    }
}

/// Most idle connections the HTTP client keeps (above the 1,000 held waits plus senders).
const IDLE_CONNECTIONS: usize = 2048;

/// A listener on a free loopback port with a deep accept queue: a burst of a thousand
/// connects must not overflow it (a dropped SYN is retried after a second, which would be
/// measured as the engine's time). The kernel caps the depth at `net.core.somaxconn`.
fn listen() -> std::io::Result<tokio::net::TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))?;
    socket.listen(4096)
}
