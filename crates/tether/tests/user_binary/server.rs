//! A `serve` process of the user's binary: started on a free port, stopped with SIGTERM or
//! killed with SIGKILL (and killed when dropped).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long anything here may take (the machine is small and shared).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The binary with none of Tether's environment variables inherited.
pub fn command(binary: &Path) -> Command {
    let mut cmd = Command::new(binary);
    for var in [
        "TETHER_DB",
        "TETHER_ADDR",
        "TETHER_DB_POOL_SIZE",
        "TETHER_PG_SCHEMA",
        "TETHER_API_TOKEN",
        "TETHER_PUBLIC_URL",
        "TETHER_NODE_ID",
        "TETHER_LEASE_MS",
        "TETHER_POLL_INTERVAL_MS",
        "TETHER_SERVER",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("RUST_LOG", "warn").stdin(Stdio::null());
    cmd
}

/// A running `serve`.
pub struct Serve {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Serve {
    /// `BINARY serve --addr 127.0.0.1:0 ARGS`, once it says it listens.
    pub fn start(binary: &Path, args: &[&str]) -> Serve {
        let mut child = command(binary)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = match rx.recv_timeout(PATIENCE) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                panic!("serve printed no line ({e}): {:?}", child.wait());
            }
        };
        let url = line
            .strip_prefix("tether listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Serve {
            child: Some(child),
            url,
        }
    }

    /// SIGTERM, and wait for a clean exit.
    pub fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let status = child.wait().expect("wait for serve");
            assert!(status.success(), "serve did not stop cleanly: {status}");
        }
    }

    /// SIGKILL.
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The PostgreSQL to test against; panics saying what to set when there is none (the test
/// needing it is ignored then, except under CI: the rule is in `tether-test-env`).
pub fn postgres_url() -> String {
    tether_test_env::postgres_url()
}

/// Drop the test's schema.
pub async fn drop_schema(url: &str, schema: &str) {
    if let Err(e) = tether::postgres::PostgresStore::drop_schema(url, schema).await {
        eprintln!("could not drop schema {schema}: {e}");
    }
}
