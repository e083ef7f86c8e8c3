//! Slow and idle clients must not hold the server (issue #17): unfinished headers and idle
//! connections are closed, an unfinished body is answered `408 request_timeout`, many idle
//! sockets do not stop `/healthz` from answering, and past `max_connections` a new connection
//! is closed at once. Real sockets on 127.0.0.1; short configured timeouts; every wait is
//! bounded by [`PATIENCE`] (a generous bound, never the measure of a timeout).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tether_core::Registry;
use tether_engine::{Engine, EngineConfig};
use tether_server::{router, serve_with, ServeLimits, ServerOptions};
use tether_store_sqlite::SqliteStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// The longest any wait here may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(10);

/// Idle sockets opened by `healthz_answers_among_many_idle_sockets` (env
/// `TETHER_TEST_IDLE_SOCKETS`; capped by this process's file-descriptor limit, as each one
/// takes two descriptors here: the client's end and the server's).
const DEFAULT_IDLE_SOCKETS: usize = 10_000;

/// A server on 127.0.0.1 that stops when dropped.
struct TestServer {
    addr: String,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    async fn start(options: ServerOptions, limits: ServeLimits) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.db");
        let store = SqliteStore::open(&path.display().to_string())
            .await
            .expect("open store");
        let mut registry = Registry::new();
        tether_examples::register(&mut registry);
        let engine = Engine::start(Arc::new(store), registry, EngineConfig::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(serve_with(
            listener,
            router(engine, options),
            async move {
                let _ = stopped.await;
            },
            limits,
        ));
        TestServer {
            addr,
            stop: Some(stop),
            done,
            _dir: dir,
        }
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(&self.addr).await.expect("connect")
    }

    /// `GET /healthz` on a fresh connection: the status line's code, or `None` if the
    /// connection was closed without an answer.
    async fn healthz(&self) -> Option<u16> {
        let mut s = self.connect().await;
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
            .await
            .ok()?;
        let bytes = read_to_eof(&mut s).await;
        status_of(&bytes)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.done.abort();
    }
}

/// Everything the server sends until it closes the connection (a reset counts as closed);
/// panics after [`PATIENCE`].
async fn read_to_eof(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return out,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "the server kept the connection open for {PATIENCE:?}; got so far: {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
}

/// The status code of an HTTP/1.1 answer.
fn status_of(bytes: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(bytes.get(..12)?).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.parse().ok()
}

/// The JSON body of an answer (after the blank line).
fn json_body(bytes: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(bytes);
    let (_, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"))
}

fn limits(header_ms: u64, idle_ms: u64, max_connections: usize) -> ServeLimits {
    ServeLimits {
        header_timeout: Duration::from_millis(header_ms),
        idle_timeout: Duration::from_millis(idle_ms),
        max_connections,
    }
}

fn body_timeout(ms: u64) -> ServerOptions {
    ServerOptions {
        body_timeout: Duration::from_millis(ms),
        ..ServerOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_headers_are_cut_after_the_header_timeout() {
    let server = TestServer::start(ServerOptions::default(), limits(300, 60_000, 100)).await;
    for partial in [
        &b"GET /heal"[..],
        &b"GET /healthz HTTP/1.1\r\nhost: t\r\n"[..],
        &b""[..],
    ] {
        let mut s = server.connect().await;
        s.write_all(partial).await.expect("write");
        let started = Instant::now();
        let _ = read_to_eof(&mut s).await;
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "closed before the header timeout: {:?}",
            started.elapsed()
        );
    }
    assert_eq!(server.healthz().await, Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_body_is_answered_408() {
    let server = TestServer::start(body_timeout(300), limits(10_000, 60_000, 100)).await;
    // A declared length never reached, and a chunked body never ended.
    for head in [
        "POST /v1/runs HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"workflow\"",
        "POST /v1/hooks/abc HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n",
    ] {
        let mut s = server.connect().await;
        s.write_all(head.as_bytes()).await.expect("write");
        let started = Instant::now();
        let bytes = read_to_eof(&mut s).await;
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(
            status_of(&bytes),
            Some(408),
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        assert_eq!(json_body(&bytes)["error"]["code"], "request_timeout");
    }
    // A body that does arrive, slowly but within the timeout, is read as usual.
    let mut s = server.connect().await;
    let body = br#"{"workflow":"no_such_workflow","input":null}"#;
    s.write_all(
        format!(
            "POST /v1/runs HTTP/1.1\r\nhost: t\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.write_all(body).await.expect("write");
    let bytes = read_to_eof(&mut s).await;
    assert_eq!(json_body(&bytes)["error"]["code"], "workflow_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_close_but_streams_do_not() {
    let server = TestServer::start(body_timeout(300), limits(30_000, 300, 100)).await;
    // A kept-alive connection, idle after its answer, is closed after the idle timeout (well
    // before the 30 s header timeout).
    let mut s = server.connect().await;
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    let bytes = read_to_eof(&mut s).await;
    assert_eq!(status_of(&bytes), Some(200));
    assert!(started.elapsed() >= Duration::from_millis(200));

    // A server-sent event stream outlives both the idle and the body timeout.
    let mut s = server.connect().await;
    s.write_all(b"GET /v1/runs/stream HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .expect("write");
    let until = Instant::now() + Duration::from_millis(1_500);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < until {
        match tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                panic!("the stream was closed: {:?}", String::from_utf8_lossy(&got))
            }
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    assert_eq!(
        status_of(&got),
        Some(200),
        "{}",
        String::from_utf8_lossy(&got)
    );
}

/// How many idle sockets to open: [`DEFAULT_IDLE_SOCKETS`] or `TETHER_TEST_IDLE_SOCKETS`,
/// within this process's file-descriptor limit (raised to its hard limit first).
fn idle_socket_count() -> usize {
    let wanted = std::env::var("TETHER_TEST_IDLE_SOCKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_IDLE_SOCKETS);
    let limit = tether_server::raise_fd_limit()
        .expect("raise the fd limit")
        .unwrap_or(u64::MAX);
    // Two descriptors per socket (both ends live here), and room for everything else.
    let room = (limit.saturating_sub(512) / 2) as usize;
    if room < wanted {
        eprintln!("fd limit {limit}: opening {room} idle sockets instead of {wanted}");
    }
    wanted.min(room)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_among_many_idle_sockets() {
    let n = idle_socket_count();
    // Timeouts longer than the test: the idle sockets stay, and /healthz must still answer.
    let server = TestServer::start(ServerOptions::default(), limits(60_000, 60_000, n + 100)).await;
    let mut idle = Vec::with_capacity(n);
    let started = Instant::now();
    for i in 0..n {
        let mut s = server.connect().await;
        if i % 2 == 0 {
            // Half of them start a request and never finish it.
            s.write_all(b"GET /healthz HTTP/1.1\r\nhost:")
                .await
                .expect("write");
        }
        idle.push(s);
    }
    eprintln!("{n} idle sockets open in {:?}", started.elapsed());
    assert_eq!(server.healthz().await, Some(200));
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_connections_new_ones_are_closed_at_once() {
    let max = 50;
    let server = TestServer::start(ServerOptions::default(), limits(60_000, 60_000, max)).await;
    let mut idle = Vec::new();
    for _ in 0..max {
        idle.push(server.connect().await);
    }
    // The 51st (and any other) is accepted and closed without an answer.
    let mut extra = server.connect().await;
    let _ = extra
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
        .await;
    let bytes = read_to_eof(&mut extra).await;
    assert!(bytes.is_empty(), "{}", String::from_utf8_lossy(&bytes));

    // Once some of the idle ones are gone, a fresh connection is served again.
    idle.truncate(max - 10);
    let deadline = Instant::now() + PATIENCE;
    loop {
        if server.healthz().await == Some(200) {
            break;
        }
        assert!(Instant::now() < deadline, "/healthz never answered again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_closes_idle_connections() {
    let mut server = TestServer::start(ServerOptions::default(), limits(60_000, 60_000, 100)).await;
    let mut kept = server.connect().await;
    kept.write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(PATIENCE, kept.read(&mut buf))
        .await
        .expect("an answer")
        .expect("read");
    assert_eq!(status_of(&buf[..n]), Some(200));
    let mut partial = {
        let mut s = server.connect().await;
        s.write_all(b"GET /he").await.expect("write");
        s
    };
    let _ = server.stop.take().expect("running").send(());
    let done = tokio::time::timeout(PATIENCE, &mut server.done)
        .await
        .expect("serve_with returned after the shutdown signal");
    done.expect("join").expect("serve_with");
    let _ = read_to_eof(&mut kept).await;
    let _ = read_to_eof(&mut partial).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_half_closes_after_its_request_gets_the_answer() {
    let server = TestServer::start(ServerOptions::default(), limits(60_000, 60_000, 100)).await;
    // A request with a body, then the client shuts its sending side (as `nc -N` does).
    let body = br#"{"workflow":"approval","input":{"order_id":"half-closed"}}"#;
    let head = format!(
        "POST /v1/runs HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n",
        body.len()
    );
    let mut s = server.connect().await;
    s.write_all(head.as_bytes()).await.expect("write head");
    s.write_all(body).await.expect("write body");
    s.shutdown().await.expect("half-close");
    let bytes = read_to_eof(&mut s).await;
    assert_eq!(
        status_of(&bytes),
        Some(201),
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    assert!(json_body(&bytes)["run_id"].is_string());
}
