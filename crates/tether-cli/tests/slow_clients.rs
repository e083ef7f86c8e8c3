//! The connection limits of `tether serve` with the real binary (issue #17): the flags reach
//! the server (`--header-timeout-ms`, `--body-timeout-ms`, `--max-connections`), and the
//! server raises its open-file soft limit to the hard limit at start.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The longest any wait here may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// A `tether dev` killed when dropped.
struct Tether {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Tether {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `tether dev` on a free port with `extra` arguments, under a soft open-file limit of
/// 256 (set by the shell that `exec`s it), and wait for its listening line.
fn start(extra: &[&str]) -> Tether {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("t.db");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -Sn 256 && exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_tether"))
        .args(["dev", "--addr", "127.0.0.1:0", "--db"])
        .arg(&db)
        .args(extra)
        .env_remove("TETHER_ADDR")
        .env_remove("TETHER_DB")
        .env_remove("TETHER_API_TOKEN")
        .env_remove("TETHER_HEADER_TIMEOUT_MS")
        .env_remove("TETHER_BODY_TIMEOUT_MS")
        .env_remove("TETHER_IDLE_TIMEOUT_MS")
        .env_remove("TETHER_MAX_CONNECTIONS")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn tether");
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        for _ in lines {}
    });
    let line = match rx.recv_timeout(PATIENCE) {
        Ok(line) => line,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tether printed no listening line: {e}");
        }
    };
    let addr = line
        .strip_prefix("tether listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    Tether {
        child,
        addr,
        _dir: dir,
    }
}

impl Tether {
    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(&self.addr).expect("connect");
        s.set_read_timeout(Some(PATIENCE)).expect("timeout");
        s
    }

    /// `GET /healthz` on a fresh connection: its status, `None` if closed without one.
    fn healthz(&self) -> Option<u16> {
        let mut s = self.connect();
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
            .ok()?;
        status_of(&read_to_eof(&mut s))
    }
}

/// Everything read until the server closes (a reset counts); panics after [`PATIENCE`].
fn read_to_eof(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("the server kept the connection open for {PATIENCE:?}")
            }
            Err(_) => return out,
        }
    }
}

fn status_of(bytes: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(bytes.get(..12)?).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.parse().ok()
}

#[test]
fn serve_flags_limit_slow_clients() {
    let server = start(&[
        "--header-timeout-ms",
        "300",
        "--body-timeout-ms",
        "300",
        "--idle-timeout-ms",
        "60000",
        "--max-connections",
        "5",
    ]);
    assert_eq!(server.healthz(), Some(200));

    // Unfinished headers: closed after the header timeout.
    let mut s = server.connect();
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost:")
        .expect("write");
    let started = Instant::now();
    read_to_eof(&mut s);
    assert!(started.elapsed() >= Duration::from_millis(200));

    // An unfinished body: 408 request_timeout.
    let mut s = server.connect();
    s.write_all(b"POST /v1/runs HTTP/1.1\r\nhost: t\r\ncontent-length: 50\r\n\r\n{")
        .expect("write");
    let bytes = read_to_eof(&mut s);
    assert_eq!(
        status_of(&bytes),
        Some(408),
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    assert!(String::from_utf8_lossy(&bytes).contains("\"request_timeout\""));

    // Five connections held open by server-sent event streams (silent sockets would be cut
    // by the 300 ms header timeout; no timeout cuts a stream).
    let mut held = Vec::new();
    for _ in 0..5 {
        let mut s = server.connect();
        s.write_all(b"GET /v1/runs/stream HTTP/1.1\r\nhost: t\r\n\r\n")
            .expect("write");
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).expect("the stream's head");
        assert_eq!(status_of(&buf[..n]), Some(200));
        held.push(s);
    }
    // The sixth is closed without an answer.
    assert_eq!(server.healthz(), None);
    // With one stream gone, a fresh connection is served again.
    held.pop();
    let deadline = Instant::now() + PATIENCE;
    while server.healthz() != Some(200) {
        assert!(Instant::now() < deadline, "/healthz never answered again");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(held);
}

#[cfg(target_os = "linux")]
#[test]
fn the_server_raises_its_open_file_limit() {
    let server = start(&[]);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.child.id()))
        .expect("read /proc/PID/limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    // "Max open files  <soft>  <hard>  files"
    let (soft, hard) = (fields[3], fields[4]);
    assert_eq!(soft, hard, "{line}");
    assert_ne!(soft, "256", "{line}");
}
