//! The server under attack and the raw HTTP/1.1 client of `tests/hostile.rs`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;
use tether_core::{Ctx, HookOptions, Registry, WebhookOptions, WorkflowError};
use tether_engine::{Engine, EngineConfig};
use tether_server::{router, serve, ServerOptions};
use tether_store_sqlite::SqliteStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The token of a hook that takes any JSON payload, forever.
pub const SINK_TOKEN: &str = "sink";

/// The classic.
pub const SQL_ISH: &str = "' OR 1=1--";

/// Takes payloads on [`SINK_TOKEN`] until the end of time.
async fn sink(ctx: Ctx, _: Value) -> Result<(), WorkflowError> {
    let mut hook = ctx
        .create_hook::<Value>(HookOptions::new().token(SINK_TOKEN))
        .await?;
    loop {
        hook.recv().await?;
    }
}

/// A webhook taking any request, forever.
async fn sink_webhook(ctx: Ctx, _: Value) -> Result<(), WorkflowError> {
    let mut webhook = ctx.create_webhook(WebhookOptions::default()).await?;
    loop {
        webhook.recv().await?;
    }
}

/// A server on a real socket, with one `approval` run waiting on its hook (the run that must
/// stay untouched) and one `sink` run.
pub struct Server {
    pub addr: String,
    pub engine: Engine,
    /// The engine's payload limit.
    pub limit: usize,
    _dir: TempDir,
}

/// What the watched run looks like.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    pub run_id: String,
    pub token: String,
    status: String,
    error: Option<String>,
    journal: Vec<String>,
    hooks: Vec<String>,
}

impl Server {
    pub async fn start() -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.db");
        let store = SqliteStore::open(&path.display().to_string())
            .await
            .expect("open store");
        let mut registry = Registry::new();
        tether_examples::register(&mut registry);
        registry.workflow("sink", sink);
        registry.workflow("sink_webhook", sink_webhook);
        let limit = 256 * 1024;
        let config = EngineConfig {
            max_payload_bytes: limit,
            ..EngineConfig::default()
        };
        let engine = Engine::start(Arc::new(store), registry, config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let app = router(engine.clone(), ServerOptions::default());
        tokio::spawn(serve(listener, app, std::future::pending()));
        let s = Server {
            addr,
            engine,
            limit,
            _dir: dir,
        };
        let sink = s
            .engine
            .start_run("sink", Value::Null)
            .await
            .expect("start sink");
        s.first_hook(&sink).await;
        s
    }

    /// The token of the run's first hook, once it has one.
    async fn first_hook(&self, run_id: &str) -> String {
        for _ in 0..3_000 {
            let hooks = self.engine.hooks(run_id).await.expect("hooks");
            if let Some(h) = hooks.first() {
                return h.token.clone();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("run {run_id} created no hook");
    }

    /// Start the watched `approval` run and describe it.
    pub async fn snapshot(&self) -> Snapshot {
        let run_id = self
            .engine
            .start_run("approval", serde_json::json!({"order_id": "o-1"}))
            .await
            .expect("start approval");
        let token = self.first_hook(&run_id).await;
        self.describe(&run_id, &token).await
    }

    async fn describe(&self, run_id: &str, token: &str) -> Snapshot {
        let run = self.engine.get_run(run_id).await.expect("run");
        let journal = self.engine.events(run_id).await.expect("events");
        let hooks = self.engine.hooks(run_id).await.expect("hooks");
        Snapshot {
            run_id: run_id.to_string(),
            token: token.to_string(),
            status: run.status.as_str().to_string(),
            error: run.error.map(|e| e.message),
            journal: journal
                .iter()
                .map(|e| serde_json::to_string(e).expect("event json"))
                .collect(),
            hooks: hooks.iter().map(|h| h.token.clone()).collect(),
        }
    }

    /// The watched run is exactly as it was: status, journal, hooks.
    pub async fn assert_untouched(&self, before: &Snapshot) {
        let now = self.describe(&before.run_id, &before.token).await;
        assert_eq!(&now, before, "the watched run changed");
        assert_eq!(now.status, "suspended");
        assert_eq!(now.journal.len(), 2, "run_started, hook_created");
    }

    /// The path of a fresh webhook that takes any request.
    pub async fn webhook_path(&self) -> String {
        let run = self
            .engine
            .start_run("sink_webhook", Value::Null)
            .await
            .expect("start webhook");
        let token = self.first_hook(&run).await;
        format!("{}{token}", tether_core::WEBHOOK_PATH)
    }
}

/// Percent-encode every byte outside `[A-Za-z0-9_.~-]`.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"_.~-".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A request with a `Content-Length` body (`connection: close`).
pub fn req(method: &str, target: &str, headers: &[(&str, &[u8])], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "{method} {target} HTTP/1.1\r\nhost: test\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    )
    .into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// `GET target`.
pub fn get_req(target: &str) -> Vec<u8> {
    req("GET", target, &[], b"")
}

/// `POST target` with `body`.
pub fn post_req(target: &str, body: &[u8]) -> Vec<u8> {
    req("POST", target, &[], body)
}

/// `POST target` with `body` in 16 KiB chunks.
pub fn chunked_req(target: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "POST {target} HTTP/1.1\r\nhost: test\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for chunk in body.chunks(16 * 1024) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// An answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body)
            .chars()
            .take(300)
            .collect()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `error.code` of a JSON error body ("" if there is none).
    pub fn code(&self) -> String {
        serde_json::from_slice::<Value>(&self.body)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Whether this is `{"error": {"code": "...", "message": "..."}}` as `application/json`.
    fn is_json_error(&self) -> bool {
        let json_type = self
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json"));
        let Ok(v) = serde_json::from_slice::<Value>(&self.body) else {
            return false;
        };
        json_type
            && v["error"]["code"].as_str().is_some_and(|c| !c.is_empty())
            && v["error"]["message"].as_str().is_some()
    }
}

/// What an answer must be.
#[derive(Clone, Copy, Debug)]
pub enum Want {
    /// A 4xx with a JSON error body.
    ClientError,
    /// Anything but a 5xx; an error must be a JSON error.
    NoServerError,
}

/// Check `r` against `want`; `what` names the case.
pub fn expect(r: &Resp, want: Want, what: &str) {
    assert!(
        r.status < 500,
        "{what}: a server error {}: {}",
        r.status,
        r.text()
    );
    match want {
        Want::ClientError => assert!(
            (400..500).contains(&r.status),
            "{what}: expected a 4xx, got {}: {}",
            r.status,
            r.text()
        ),
        Want::NoServerError => {}
    }
    if r.status >= 400 {
        assert!(
            r.is_json_error(),
            "{what}: {} without a JSON error body: {:?} {}",
            r.status,
            r.headers,
            r.text()
        );
    }
}

/// Send `raw` on a new connection and read the answer (writing and reading at once, so an
/// early answer to an oversized request is read).
pub async fn send(addr: &str, raw: &[u8]) -> Resp {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let raw = raw.to_vec();
    let writer = tokio::spawn(async move {
        // The server may answer and close before reading everything: not an error here.
        let _ = wr.write_all(&raw).await;
        let _ = wr.flush().await;
        wr
    });
    let mut buf = Vec::new();
    let read = async {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            if let Some(resp) = parse(&buf, false) {
                return resp;
            }
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    return parse(&buf, true).unwrap_or_else(|| {
                        panic!("no HTTP answer: {:?}", String::from_utf8_lossy(&buf))
                    })
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    // A guard against a hang, not a timing assertion.
    let resp = tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the server did not answer");
    drop(writer.await);
    resp
}

/// A complete response in `buf`, if there is one (`eof`: the connection is closed).
fn parse(buf: &[u8], eof: bool) -> Option<Resp> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &buf[end + 4..];
    let find = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let body = if find("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        dechunk(rest)?
    } else if let Some(len) = find("content-length").and_then(|l| l.parse::<usize>().ok()) {
        if rest.len() < len {
            return None;
        }
        rest[..len].to_vec()
    } else if eof {
        rest.to_vec()
    } else {
        return None;
    };
    Some(Resp {
        status,
        headers,
        body,
    })
}

/// The body of a complete chunked encoding, if complete.
fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if rest.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}
