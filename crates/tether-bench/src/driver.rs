//! One interface over the two ways a workload reaches an engine in this process: direct calls
//! (`inproc`) or HTTP requests to a server running in this process (`http`, with
//! `tether-client`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tether::store::Store;
use tether::Client;
use tether::{Engine, EngineConfig};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{registry, Mode, WAIT};

/// A running engine, reached in-process or over HTTP.
pub(crate) struct Driver {
    engine: Engine,
    http: Option<Http>,
}

struct Http {
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
        Ok(Driver { engine, http })
    }

    /// Over HTTP, open `k` connections to the server at once and leave them idle in the
    /// client's pool, so requests sent later (held waits, resumes) do not each open one
    /// inside the measured time. Does nothing in-process.
    pub(crate) async fn warm_connections(&self, k: usize) -> Result<(), String> {
        let Some(h) = &self.http else {
            return Ok(());
        };
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..k.min(IDLE_CONNECTIONS) {
            let client = h.client.clone();
            calls.spawn(async move { client.health().await.map(|_| ()) });
        }
        while let Some(done) = calls.join_next().await {
            done.map_err(|e| format!("a warm-up request failed: {e}"))?
                .map_err(|e| format!("warm-up GET /healthz: {e}"))?;
        }
        Ok(())
    }

    /// Start a run of `workflow`; its id once the start is durable.
    pub(crate) async fn start_run(&self, workflow: &str, input: Value) -> Result<String, String> {
        match &self.http {
            Some(h) => h
                .client
                .start_run(workflow, &input)
                .await
                .map_err(|e| e.to_string()),
            None => self
                .engine
                .start_run(workflow, input)
                .await
                .map_err(|e| e.to_string()),
        }
    }

    /// Deliver `payload` to the hook holding `token`; answers once it is durable.
    pub(crate) async fn resume(&self, token: &str, payload: Value) -> Result<String, String> {
        match &self.http {
            Some(h) => h
                .client
                .resume_hook(token, &payload, None)
                .await
                .map_err(|e| e.to_string()),
            None => self
                .engine
                .resume_hook(token, payload, None)
                .await
                .map_err(|e| e.to_string()),
        }
    }

    /// Wait for the run to end (over HTTP: a held long-poll); its output.
    pub(crate) async fn output(&self, run_id: &str) -> Result<Value, String> {
        let (status, output) = match &self.http {
            Some(h) => {
                let run = h
                    .client
                    .wait_for_run(run_id, WAIT)
                    .await
                    .map_err(|e| e.to_string())?;
                (run.status, run.output)
            }
            None => {
                let run = self
                    .engine
                    .wait_for_run(run_id, WAIT)
                    .await
                    .map_err(|e| e.to_string())?;
                (run.status.to_string(), run.output)
            }
        };
        match (status.as_str(), output) {
            ("completed", Some(v)) => Ok(v),
            (s, _) => Err(format!("run {run_id} ended {s}, not completed")),
        }
    }

    /// The engine's write counts as they are now.
    pub(crate) fn counts(&self) -> EngineCounts {
        let m = self.engine.metrics().snapshot();
        EngineCounts {
            commits: m.commits.count,
            committed_ops: m.committed_ops,
            cache_misses: m.live_run_cache_misses,
        }
    }

    /// Stop the server (if any) and the engine.
    pub(crate) async fn shutdown(self) {
        if let Some(h) = self.http {
            let _ = h.stop.send(true);
            let _ = tokio::time::timeout(Duration::from_secs(5), h.server).await;
        }
        self.engine.shutdown().await;
    }
}

/// Counters of the engine (from its metrics), to tell what a timed phase cost.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EngineCounts {
    /// Group commits (store transactions, one fsync each).
    pub commits: u64,
    /// Write ops those commits held.
    pub committed_ops: u64,
    /// Deliveries to a run that was not live (rebuilt from the store).
    pub cache_misses: u64,
}

impl EngineCounts {
    /// What happened between `before` and `self`.
    pub(crate) fn since(self, before: EngineCounts) -> EngineCounts {
        EngineCounts {
            commits: self.commits.saturating_sub(before.commits),
            committed_ops: self.committed_ops.saturating_sub(before.committed_ops),
            cache_misses: self.cache_misses.saturating_sub(before.cache_misses),
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
