//! Helpers for the tests that run the real `tether` binary: start it on a free port, talk to
//! it with `tether_client`, kill it (SIGKILL) or let it be killed on drop. Several of them can
//! share one PostgreSQL schema (see [`PgSchema`]).
#![allow(dead_code)]

use std::ffi::OsStr;
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
        .env_remove("TETHER_API_TOKEN")
        .env_remove("TETHER_PUBLIC_URL")
        .env_remove("TETHER_NODE_ID")
        .env_remove("TETHER_LEASE_MS")
        .env_remove("TETHER_POLL_INTERVAL_MS")
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

/// A `tether dev` spawned but not known to be listening yet (see [`Starting::ready`]); killed
/// when dropped.
pub struct Starting {
    child: Option<Child>,
    first_line: mpsc::Receiver<String>,
}

impl Starting {
    /// Wait for the "listening" line; panics if the process exits or stays silent.
    pub fn ready(mut self) -> Server {
        let line = match self.first_line.recv_timeout(PATIENCE) {
            Ok(line) => line,
            Err(e) => {
                let mut child = self.child.take().expect("not ready yet");
                let _ = child.kill();
                let status = child.wait();
                panic!("tether printed no listening line ({e}); exit: {status:?}");
            }
        };
        let child = self.child.take().expect("not ready yet");
        let url = line
            .strip_prefix("tether listening on ")
            .unwrap_or_default()
            .to_string();
        let client = client(&url);
        let server = Server { child, url, client };
        assert!(
            server.url.starts_with("http://127.0.0.1:"),
            "unexpected first line: {line:?}"
        );
        server
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Server {
    /// Start `tether dev` on a free port with the database file `db`, and wait for its
    /// "listening" line.
    pub fn start(db: &Path) -> Server {
        Server::start_with(db, &[])
    }

    /// [`Server::start`] with any database (a path or a URL) and extra arguments of
    /// `tether dev`.
    pub fn start_with(db: impl AsRef<OsStr>, extra: &[&str]) -> Server {
        Server::spawn(db, extra).ready()
    }

    /// Spawn `tether dev` on a free port without waiting for it to listen.
    pub fn spawn(db: impl AsRef<OsStr>, extra: &[&str]) -> Starting {
        Server::spawn_env(db, extra, &[])
    }

    /// [`Server::spawn`] with extra environment variables (`extra` may name `--addr`, which
    /// then wins over the free port).
    pub fn spawn_env(db: impl AsRef<OsStr>, extra: &[&str], env: &[(&str, &str)]) -> Starting {
        let addr: &[&str] = if extra.contains(&"--addr") {
            &[]
        } else {
            &["--addr", "127.0.0.1:0"]
        };
        let mut child = tether()
            .arg("dev")
            .args(addr)
            .arg("--db")
            .arg(db)
            .args(extra)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn tether");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, first_line) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep draining so the child never blocks on a full pipe.
            for _ in lines {}
        });
        Starting {
            child: Some(child),
            first_line,
        }
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
        self.wait_exit_within(PATIENCE)
            .expect("tether did not exit")
    }

    /// Wait at most `within` for the process to exit on its own; `None` if it did not.
    pub fn wait_exit_within(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
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

/// The PostgreSQL server of the cluster tests, from `TETHER_TEST_POSTGRES` (e.g.
/// `postgres://postgres@127.0.0.1:5432/test`). Panics, saying what to set, when there is none:
/// the tests calling it are ignored then, except under CI (the rule: `tether-test-env`).
pub fn postgres_url() -> String {
    tether_test_env::postgres_url()
}

/// A fresh PostgreSQL schema (`t_` and 16 random hex digits) for the nodes of one test,
/// dropped (best effort) when this is dropped. Declare it before the servers that use it, so
/// that they are killed first.
#[derive(Debug)]
pub struct PgSchema {
    /// The server.
    pub url: String,
    /// The schema.
    pub name: String,
}

impl PgSchema {
    /// A new schema name on `url` (the first node started in it creates it).
    pub fn new(url: &str) -> PgSchema {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("random bytes");
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        PgSchema {
            url: url.to_string(),
            name: format!("t_{hex}"),
        }
    }

    /// Start a node (`tether dev`) on this schema with extra arguments.
    pub fn node(&self, extra: &[&str]) -> Server {
        self.spawn_node(extra).ready()
    }

    /// Spawn a node on this schema without waiting for it to listen.
    pub fn spawn_node(&self, extra: &[&str]) -> Starting {
        let mut args = vec!["--pg-schema", self.name.as_str()];
        args.extend_from_slice(extra);
        Server::spawn(&self.url, &args)
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        // On a thread with a runtime of its own (this may run inside the test's runtime), and
        // bounded: a schema that cannot be dropped is left behind, never a hung test.
        let url = self.url.clone();
        let name = self.name.clone();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
                .and_then(|rt| {
                    rt.block_on(tether_store_postgres::PostgresStore::drop_schema(
                        &url, &name,
                    ))
                    .map_err(|e| e.to_string())
                });
            let _ = tx.send(result);
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("cannot drop test schema {}: {e}", self.name),
            Err(_) => eprintln!("dropping test schema {} timed out; left behind", self.name),
        }
    }
}

/// What a finished `tether` client command printed, and its exit code.
#[derive(Debug)]
pub struct CliRun {
    /// The exit code (`-1` if killed by a signal).
    pub code: i32,
    /// Everything printed on stdout.
    pub stdout: String,
    /// Everything printed on stderr.
    pub stderr: String,
}

/// Run `tether ARGS --server URL` (plus `--api-token TOKEN` when given) to completion, with
/// no `TETHER_SERVER`, `TETHER_API_TOKEN` or `TETHER_PUBLIC_URL` from the environment.
pub fn cli(url: &str, token: Option<&str>, args: &[&str]) -> CliRun {
    let mut cmd = tether();
    cmd.env_remove("TETHER_SERVER")
        .env_remove("TETHER_API_TOKEN")
        .env_remove("TETHER_PUBLIC_URL")
        .args(args)
        .args(["--server", url])
        .stdin(Stdio::null());
    if let Some(t) = token {
        cmd.args(["--api-token", t]);
    }
    let out = cmd.output().expect("run tether");
    CliRun {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// [`cli`], asserting it succeeded; returns its stdout.
pub fn cli_ok(url: &str, token: Option<&str>, args: &[&str]) -> String {
    let run = cli(url, token, args);
    assert_eq!(run.code, 0, "tether {args:?} failed: {run:?}");
    run.stdout
}
