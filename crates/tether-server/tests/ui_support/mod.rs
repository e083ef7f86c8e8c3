//! Shared by the web UI tests: a real server on a loopback port (SQLite in a temp dir, the
//! bundled examples), a small JSON client, and a reader of server-sent events.

#![allow(dead_code)] // each test file uses a part

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;
use tether_core::Registry;
use tether_engine::{Engine, EngineConfig};
use tether_server::{router, ServerOptions};
use tether_store_sqlite::SqliteStore;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a test waits for something that should happen at once, before failing.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A server listening on 127.0.0.1.
pub struct Server {
    pub addr: SocketAddr,
    pub engine: Engine,
    pub http: reqwest::Client,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    _dir: TempDir,
}

impl Server {
    /// Start a server with the bundled examples on a fresh SQLite file.
    pub async fn start(api_token: Option<&str>) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("ui.db");
        let store = SqliteStore::open(path.to_str().expect("utf-8 path"))
            .await
            .expect("open sqlite");
        let mut registry = Registry::new();
        tether_examples::register(&mut registry);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let config = EngineConfig {
            public_url: Some(format!("http://{addr}")),
            ..EngineConfig::default()
        };
        let engine = Engine::start(Arc::new(store), registry, config);
        let (stop, stop_rx) = watch::channel(false);
        let options = ServerOptions {
            stopping: Some(stop_rx.clone()),
            api_token: api_token.map(str::to_string),
            ..ServerOptions::default()
        };
        let app = router(engine.clone(), options);
        let mut shutdown = stop_rx;
        let task = tokio::spawn(tether_server::serve(listener, app, async move {
            let _ = shutdown.wait_for(|s| *s).await;
        }));
        Server {
            addr,
            engine,
            http: reqwest::Client::new(),
            stop,
            task: Some(task),
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POST JSON (or raw text), answering (status, JSON body).
    pub async fn post(&self, path: &str, body: &str) -> (u16, Value) {
        let resp = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let value = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, value)
    }

    pub async fn get_json(&self, path: &str) -> Value {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("JSON answer")
    }

    /// Start a run, answering its id.
    pub async fn start_run(&self, workflow: &str, input: Value) -> String {
        let body = serde_json::json!({ "workflow": workflow, "input": input }).to_string();
        let (status, v) = self.post("/v1/runs", &body).await;
        assert_eq!(status, 201, "start {workflow}: {v}");
        v["run_id"].as_str().expect("run_id").to_string()
    }

    /// The first active hook's token of a run.
    pub async fn first_token(&self, run_id: &str) -> String {
        let hooks = self.get_json(&format!("/v1/runs/{run_id}/hooks")).await;
        hooks[0]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("run {run_id} has no hook: {hooks}"))
            .to_string()
    }

    /// Say stop, and wait for the server to finish (it must not hang on open streams).
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            tokio::time::timeout(PATIENCE, task)
                .await
                .expect("the server stops although streams are open")
                .expect("server task")
                .expect("server");
        }
        self.engine.shutdown().await;
    }
}

/// One server-sent event.
#[derive(Debug)]
pub struct SseEvent {
    pub name: String,
    pub data: Value,
}

/// Reads server-sent events from a streaming response.
pub struct SseReader {
    resp: reqwest::Response,
    buf: String,
}

impl SseReader {
    pub fn new(resp: reqwest::Response) -> SseReader {
        SseReader {
            resp,
            buf: String::new(),
        }
    }

    /// The next event (comments and keep-alives skipped); `None` when the stream ends.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(cut) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..cut + 2).collect();
                let mut name = "message".to_string();
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.strip_prefix(' ').unwrap_or(v).to_string());
                    }
                }
                if data.is_empty() {
                    continue; // a comment (keep-alive)
                }
                let data = serde_json::from_str(&data.join("\n")).unwrap_or(Value::Null);
                return Some(SseEvent { name, data });
            }
            let chunk = self.resp.chunk().await.expect("read the stream")?;
            self.buf
                .push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
        }
    }

    /// The next event, failing the test if none comes in [`PATIENCE`].
    pub async fn expect_next(&mut self, what: &str) -> SseEvent {
        tokio::time::timeout(PATIENCE, self.next())
            .await
            .unwrap_or_else(|_| panic!("no event came: expected {what}"))
            .unwrap_or_else(|| panic!("the stream ended: expected {what}"))
    }

    /// Read events until a `change` names `run_id`.
    pub async fn expect_change_of(&mut self, run_id: &str) -> SseEvent {
        loop {
            let ev = self.expect_next(&format!("a change of {run_id}")).await;
            let names_it = ev.data["changes"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["run_id"] == run_id));
            if ev.name == "change" && names_it {
                return ev;
            }
        }
    }
}
