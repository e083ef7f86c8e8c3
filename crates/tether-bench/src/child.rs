//! A `tether serve` child process on the benchmark's store, reached over HTTP: the stream
//! workload kills it with SIGKILL and starts another on the same database, and measures both
//! from the outside.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tether::Client;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::host;

/// How long a child may take to print its "listening" line.
const STARTUP: Duration = Duration::from_secs(60);

/// The line `tether serve` prints on stdout once it listens (the same whatever the binary).
const LISTENING: &str = "tether listening on ";

/// How to start a server: the `tether` binary, its arguments, and where its log goes.
#[derive(Debug, Clone)]
pub(crate) struct ServeCommand {
    /// The `tether` binary (or any app binary with a `serve` command).
    pub(crate) program: PathBuf,
    /// Arguments after `serve` naming the store.
    pub(crate) store_args: Vec<OsString>,
    /// The child's stderr (its log) is appended here.
    pub(crate) log: PathBuf,
}

/// A running child server.
#[derive(Debug)]
pub(crate) struct ChildServer {
    child: Child,
    pid: u32,
    client: Client,
    log: PathBuf,
}

impl ChildServer {
    /// Start `tether serve` on a free loopback port and wait until it listens.
    pub(crate) async fn start(cmd: &ServeCommand) -> Result<ChildServer, String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&cmd.log)
            .map_err(|e| format!("cannot open the server log {}: {e}", cmd.log.display()))?;
        let mut child = Command::new(&cmd.program)
            .arg("serve")
            .args(["--addr", "127.0.0.1:0"])
            .args(&cmd.store_args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start {} serve: {e}; build the tether binary first \
                     (`cargo build --release -p tether-cli`)",
                    cmd.program.display()
                )
            })?;
        let pid = child
            .id()
            .ok_or("the server exited as soon as it started")?;
        let stdout = child
            .stdout
            .take()
            .ok_or("the server's stdout was not captured")?;
        let mut lines = BufReader::new(stdout).lines();
        let url = tokio::time::timeout(STARTUP, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix(LISTENING) {
                    return Some(url.trim().to_string());
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        let Some(url) = url else {
            let _ = child.start_kill();
            return Err(format!(
                "the server printed no listening line within {STARTUP:?}; its log: {}",
                tail(&cmd.log)
            ));
        };
        // Keep reading stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        Ok(ChildServer {
            child,
            pid,
            client: Client::with_http_client(url, http),
            log: cmd.log.clone(),
        })
    }

    /// The client of its HTTP API.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Its resident memory in MB: current and peak (since it started).
    pub(crate) fn rss_mb(&self) -> (Option<f64>, Option<f64>) {
        host::rss_mb(Some(self.pid))
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// One counter of its `/metrics` (e.g. `tether_live_run_cache_misses_total`).
    pub(crate) async fn metric(&self, name: &str) -> Result<Option<f64>, String> {
        Ok(metric_value(&self.metrics_text().await?, name))
    }

    /// Its whole `/metrics` text (OpenMetrics), to read several samples of one scrape with
    /// [`metric_value`].
    pub(crate) async fn metrics_text(&self) -> Result<String, String> {
        let url = format!("{}/metrics", self.client.base_url());
        reqwest::get(&url)
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| format!("GET {url}: {e}"))?
            .text()
            .await
            .map_err(|e| format!("GET {url}: {e}"))
    }

    /// Kill it with SIGKILL (no shutdown code runs) and wait until it is gone. Returns the
    /// instant the signal was sent.
    pub(crate) async fn kill9(mut self) -> Result<Instant, String> {
        let at = Instant::now();
        self.child
            .start_kill()
            .map_err(|e| format!("cannot kill the server (pid {}): {e}", self.pid))?;
        self.child
            .wait()
            .await
            .map_err(|e| format!("waiting for the killed server: {e}"))?;
        Ok(at)
    }

    /// The last lines of its log, for an error message.
    pub(crate) fn log_tail(&self) -> String {
        tail(&self.log)
    }
}

/// The value of the unlabelled sample `name` in OpenMetrics text.
pub(crate) fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The last 2,000 bytes of a log file, on one line.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let start = text.len().saturating_sub(2000);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    text[start..].replace('\n', " | ")
}

#[cfg(test)]
mod tests {
    use super::metric_value;

    #[test]
    fn reads_an_unlabelled_sample() {
        let text = "# HELP x y\ntether_live_run_cache_misses_total 3\ntether_live_runs 1\n";
        assert_eq!(
            metric_value(text, "tether_live_run_cache_misses_total"),
            Some(3.0)
        );
        assert_eq!(metric_value(text, "tether_live_runs"), Some(1.0));
        assert_eq!(metric_value(text, "tether_live"), None);
    }
}
