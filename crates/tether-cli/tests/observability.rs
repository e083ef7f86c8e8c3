//! `tether dev --log-format json` and `--otlp-endpoint`, with the real binary: log lines are
//! JSON objects, a resume's spans reach an OTLP/HTTP collector (a tiny one in this test), and
//! neither the logs nor the exported spans ever carry a full hook token.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use common::*;
use serde_json::{json, Value};

/// A `tether dev` whose stderr is captured; killed when dropped.
struct Dev {
    child: Child,
    url: String,
    stderr: mpsc::Receiver<String>,
}

impl Dev {
    fn start(db: &std::path::Path, extra: &[&str], env: &[(&str, &str)]) -> Dev {
        let mut child = tether()
            .args(["dev", "--addr", "127.0.0.1:0", "--db"])
            .arg(db)
            .args(extra)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tether");
        let stdout = child.stdout.take().expect("stdout is piped");
        let err_pipe = child.stderr.take().expect("stderr is piped");
        let (line_tx, line_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = line_tx.send(line);
            }
            for _ in lines {}
        });
        let (err_tx, stderr) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
                let _ = err_tx.send(line);
            }
        });
        let line = line_rx
            .recv_timeout(PATIENCE)
            .expect("tether printed no listening line");
        let url = line
            .strip_prefix("tether listening on ")
            .expect("listening line")
            .to_owned();
        Dev { child, url, stderr }
    }

    /// Stop with SIGTERM (a clean shutdown, which also sends the spans still buffered) and
    /// return every line written to stderr.
    fn stop(mut self) -> Vec<String> {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let deadline = Instant::now() + PATIENCE;
        while self.child.try_wait().expect("try_wait").is_none() {
            assert!(Instant::now() < deadline, "tether did not stop on SIGTERM");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // The reader thread ends with the pipe; gather what it read.
        let mut lines = Vec::new();
        while let Ok(line) = self.stderr.recv_timeout(PATIENCE) {
            lines.push(line);
        }
        lines
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start an approval run, resume it (plus one refused resume), wait for it to complete;
/// returns the hook's token.
async fn approve_once(url: &str) -> String {
    let c = client(url);
    let run_id = c
        .start_run("approval", &json!({"order_id": "o-obs"}))
        .await
        .expect("start");
    let token = hooks_of(&c, &run_id).await[0].token.clone();
    assert!(token.len() > 20, "expected a generated token: {token}");
    let bad = c.resume_hook(&token, &json!({"approved": 1}), None).await;
    assert_api_error(bad, 400, "invalid_payload");
    let decision = json!({"approved": true, "comment": "ok"});
    c.resume_hook(&token, &decision, None)
        .await
        .expect("resume");
    assert_eq!(finished(&c, &run_id).await.status, "completed");
    token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_show_only_a_token_prefix() {
    let (_dir, db) = temp_db();
    let dev = Dev::start(&db, &["--log-format", "json"], &[("RUST_LOG", "debug")]);
    let token = approve_once(&dev.url).await;
    let lines = dev.stop();

    assert!(lines.len() > 3, "too few log lines: {lines:?}");
    let prefix = format!("{}…", &token[..6]);
    let mut with_prefix = 0;
    for line in &lines {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        assert!(!line.contains(&token), "a full token was logged: {line}");
        // Not even a long part of it.
        assert!(
            !line.contains(&token[..12]),
            "too much of a token was logged: {line}"
        );
        if v["span"]["token"] == prefix.as_str() {
            with_prefix += 1;
        }
    }
    // The resume's log lines name its token by prefix (the accepted one and the refused one
    // happen in the request span).
    assert!(
        with_prefix >= 1,
        "no log line names the token {prefix}: {lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"message\":\"engine started\"")),
        "{lines:#?}"
    );
}

/// A minimal OTLP/HTTP collector: answers every request `200` and passes on each
/// `POST /v1/traces` body.
fn collector() -> (String, mpsc::Receiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind collector");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let tx = tx.clone();
            std::thread::spawn(move || serve_otlp(stream, &tx));
        }
    });
    (url, rx)
}

/// Serve one connection (HTTP/1.1, keep-alive, `Content-Length` bodies).
fn serve_otlp(stream: TcpStream, tx: &mpsc::Sender<Vec<u8>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if request_line.starts_with("POST /v1/traces ") {
            let _ = tx.send(body);
        }
        let answer =
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if out.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_spans_reach_the_otlp_collector() {
    let (_dir, db) = temp_db();
    let (endpoint, bodies) = collector();
    let dev = Dev::start(
        &db,
        &["--otlp-endpoint", &endpoint],
        &[("RUST_LOG", "info"), ("OTEL_BSP_SCHEDULE_DELAY", "100")],
    );
    let token = approve_once(&dev.url).await;

    // Spans are sent in batches; wait for the resume's (its names are plain strings in the
    // protobuf body), then stop the server cleanly.
    let mut seen: Vec<u8> = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while !(contains(&seen, b"resume_hook") && contains(&seen, b"apply_resume")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match bodies.recv_timeout(left) {
            Ok(body) => seen.extend(body),
            Err(e) => panic!("no resume span reached the collector ({e})"),
        }
    }
    dev.stop();
    while let Ok(body) = bodies.try_recv() {
        seen.extend(body);
    }
    for name in ["POST /v1/hooks/{token}", "journal_commit", "tether"] {
        assert!(contains(&seen, name.as_bytes()), "no {name:?} in the spans");
    }
    let prefix = format!("{}…", &token[..6]);
    assert!(
        contains(&seen, prefix.as_bytes()),
        "no redacted token in the spans"
    );
    assert!(
        !contains(&seen, token.as_bytes()),
        "a full token was exported"
    );
}
