//! Helpers for the tests that run the real `tether` binary: start it on a free port, talk to
//! it with `tether_client`, kill it (SIGKILL) or let it be killed on drop.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tether_client::{Client, ClientError, HookInfo, RunInfo};

/// How long anything in these tests may take (the machine is small and shared).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A running `tether dev`, killed when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// A client of it.
    pub client: Client,
}

/// The `tether` binary with the environment these tests want.
pub fn tether() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tether"));
    cmd.env_remove("TETHER_DB")
        .env_remove("TETHER_ADDR")
        .env_remove("TETHER_DB_POOL_SIZE")
        .env_remove("TETHER_PG_SCHEMA")
        .env(
            "RUST_LOG",
            std::env::var("TETHER_TEST_LOG").unwrap_or_else(|_| "warn".into()),
        );
    cmd
}

/// A client with a request timeout longer than the longest long-poll.
pub fn client(url: &str) -> Client {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()
        .expect("build reqwest client");
    Client::with_http_client(url, http)
}

impl Server {
    /// Start `tether dev` on a free port with the database file `db`, and wait for its
    /// "listening" line.
    pub fn start(db: &Path) -> Server {
        let mut child = tether()
            .args(["dev", "--addr", "127.0.0.1:0", "--db"])
            .arg(db)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn tether");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep draining so the child never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(PATIENCE) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                let status = child.wait();
                panic!("tether printed no listening line ({e}); exit: {status:?}");
            }
        };
        let url = line
            .strip_prefix("tether listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        let client = client(&url);
        Server { child, url, client }
    }

    /// SIGKILL the process and reap it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait (at most [`PATIENCE`]) for the process to exit on its own.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "tether did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A temporary directory and the database path inside it.
pub fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db");
    (dir, db)
}

/// Poll until the run has at least one active hook; return them.
pub async fn hooks_of(client: &Client, run_id: &str) -> Vec<HookInfo> {
    poll(&format!("a hook of run {run_id}"), || async {
        let hooks = client.hooks(run_id).await.expect("list hooks");
        (!hooks.is_empty()).then_some(hooks)
    })
    .await
}

/// Poll until `token` is held by run `run_id`.
pub async fn hook_held_by(client: &Client, token: &str, run_id: &str) -> HookInfo {
    poll(&format!("token {token} held by {run_id}"), || async {
        match client.get_hook(token).await {
            Ok(h) if h.run_id.as_deref() == Some(run_id) => Some(h),
            Ok(_) => None,
            Err(e) if e.code() == Some("hook_not_found") => None,
            Err(e) => panic!("get_hook {token}: {e:?}"),
        }
    })
    .await
}

/// Call `f` every few ms until it gives `Some`, for at most [`PATIENCE`].
pub async fn poll<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Wait for the run to end and return it.
pub async fn finished(client: &Client, run_id: &str) -> RunInfo {
    let run = client
        .wait_for_run(run_id, PATIENCE)
        .await
        .expect("wait for run");
    assert!(run.is_terminal(), "run {run_id} did not end: {run:?}");
    run
}

/// The journal entries of `kind`.
pub fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

/// Assert `r` is an API error with `code`.
pub fn assert_api_error<T: std::fmt::Debug>(r: Result<T, ClientError>, status: u16, code: &str) {
    match r {
        Err(ClientError::Api {
            status: s, code: c, ..
        }) if s == status && c == code => {}
        other => panic!("expected {status} {code}, got {other:?}"),
    }
}
