//! The options of `serve` and the checks clap cannot make.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use tether_engine::EngineConfig;

use crate::telemetry::{LogFormat, TelemetryOptions};

use super::window::{parse_window, Window};
use crate::error::CommandError;
use crate::store::{backend_of, Backend, OpenOptions};

/// Connections kept to PostgreSQL by default.
#[cfg(feature = "postgres")]
const DEFAULT_POOL_SIZE: usize = tether_store_postgres::DEFAULT_POOL_SIZE;
#[cfg(not(feature = "postgres"))]
const DEFAULT_POOL_SIZE: usize = 16;

/// Options of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Database: `sqlite://path/to/file.db`, `sqlite:path` or a plain file path (embedded,
    /// one process), or `postgres://user[:password]@host[:port]/database` (also
    /// `postgresql://`; several processes may share it).
    #[arg(
        long,
        env = "TETHER_DB",
        hide_env_values = true,
        default_value = "sqlite://tether.db"
    )]
    pub(super) db: String,
    /// PostgreSQL only: most connections this process keeps open to the database.
    #[arg(
        long,
        env = "TETHER_DB_POOL_SIZE",
        default_value_t = DEFAULT_POOL_SIZE
    )]
    pub(super) db_pool_size: usize,
    /// PostgreSQL only: keep Tether's tables in this schema (created if missing) instead of the
    /// connection's default one. Lower-case letters, digits and `_`.
    #[arg(long, env = "TETHER_PG_SCHEMA", value_name = "SCHEMA")]
    pub(super) pg_schema: Option<String>,
    /// Address to listen on (port 0 picks a free port; the line printed says which).
    #[arg(long, env = "TETHER_ADDR", default_value = "127.0.0.1:8080")]
    pub(super) addr: String,
    /// Largest accepted hook payload or run input, in bytes of JSON.
    #[arg(long, default_value_t = 1_048_576)]
    pub(super) max_payload_bytes: usize,
    /// Most runs kept live in memory; past it, idle runs are evicted (and replayed when needed).
    #[arg(long, default_value_t = 10_000)]
    pub(super) max_live_runs: usize,
    /// This process's id among the nodes sharing the database (run leases are held in its
    /// name; no two live processes may share one). Default: `local` on SQLite, a new random
    /// id at each start on PostgreSQL.
    #[arg(long, env = "TETHER_NODE_ID", value_name = "ID")]
    pub(super) node_id: Option<String>,
    /// How long this node's claim on a run lasts without a heartbeat, in milliseconds
    /// (heartbeats go out every third of it). After a node dies, others take its runs over
    /// once this has passed.
    #[arg(
        long,
        env = "TETHER_LEASE_MS",
        value_name = "N",
        default_value_t = 10_000
    )]
    pub(super) lease_ms: u64,
    /// How often this node looks for runs with work and no live owner (due timers, runs of
    /// dead nodes), in milliseconds.
    #[arg(
        long,
        env = "TETHER_POLL_INTERVAL_MS",
        value_name = "N",
        default_value_t = 200
    )]
    pub(super) poll_interval_ms: u64,
    /// The base URL clients reach this server on, used to build webhook URLs. Default:
    /// `http://` and the address actually listened on.
    #[arg(long, env = "TETHER_PUBLIC_URL", value_name = "URL")]
    pub(super) public_url: Option<String>,
    /// The task queues this node runs, comma-separated (default: all). Runs of other queues
    /// started or resumed here are stored and run by a node that serves them; the queue of a
    /// run started without one is `default`.
    #[arg(
        long,
        env = "TETHER_QUEUES",
        value_name = "QUEUE,..",
        value_delimiter = ',',
        value_parser = super::queues::parse_queue
    )]
    pub(super) queues: Option<Vec<String>>,
    /// `QUEUE=N`: at most N runs of the queue admitted and not ended at once, cluster-wide
    /// (repeat for more queues; give every node the same limits).
    #[arg(long, value_name = "QUEUE=N", value_parser = super::queues::parse_limit)]
    pub(super) queue_limit: Vec<(String, u64)>,
    /// `QUEUE=N/PERIOD`: at most N runs of the queue admitted per period (`s`, `m`, `h` or
    /// `<n>ms`), cluster-wide, e.g. `emails=5/s`.
    #[arg(long, value_name = "QUEUE=N/PERIOD", value_parser = super::queues::parse_rate)]
    pub(super) queue_rate: Vec<(String, tether_engine::QueueRate)>,
    /// Log lines on stderr as `text` or `json` (one object per line, with the fields of the
    /// spans they happen in). `RUST_LOG` filters them (default `info`).
    #[arg(
        long,
        env = "TETHER_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    pub(super) log_format: LogFormat,
    /// Export spans (HTTP requests, resumes, commits, runs) to this OpenTelemetry collector
    /// over OTLP/HTTP with protobuf, e.g. `http://127.0.0.1:4318` (`/v1/traces` is appended
    /// unless the URL ends with it).
    #[arg(long, env = "TETHER_OTLP_ENDPOINT", value_name = "URL")]
    pub(super) otlp_endpoint: Option<String>,
    /// How long a client may take to send a request's line and headers, in milliseconds
    /// (from the connection's start, or the end of the previous answer); then the connection
    /// is closed.
    #[arg(
        long,
        env = "TETHER_HEADER_TIMEOUT_MS",
        value_name = "N",
        default_value_t = 10_000
    )]
    pub(super) header_timeout_ms: u64,
    /// How long a request's body may take to arrive after its headers, in milliseconds; an
    /// unfinished body is answered `408 request_timeout`.
    #[arg(
        long,
        env = "TETHER_BODY_TIMEOUT_MS",
        value_name = "N",
        default_value_t = 30_000
    )]
    pub(super) body_timeout_ms: u64,
    /// How long a connection with no request in flight stays open, in milliseconds (a
    /// server-sent event stream in progress is a request in flight).
    #[arg(
        long,
        env = "TETHER_IDLE_TIMEOUT_MS",
        value_name = "N",
        default_value_t = 60_000
    )]
    pub(super) idle_timeout_ms: u64,
    /// Most connections open at once; past it, new ones are accepted and closed at once.
    #[arg(
        long,
        env = "TETHER_MAX_CONNECTIONS",
        value_name = "N",
        default_value_t = 10_000
    )]
    pub(super) max_connections: usize,
    /// Delete ended runs (with their journals, hooks, keys and hook threads) this long after
    /// they ended, e.g. `7d`, `12h` (units ms, s, m, h, d). Off by default: runs are kept for
    /// ever. In a cluster one node at a time deletes, in batches.
    #[arg(long, env = "TETHER_RETENTION", value_name = "DURATION", default_value = "off", value_parser = parse_window)]
    pub(super) retention: Window,
    /// How long an `Idempotency-Key` is remembered; a retry after it is a new request
    /// (`off`: as long as its run is kept).
    #[arg(long, env = "TETHER_IDEMPOTENCY_WINDOW", value_name = "DURATION", default_value = "24h", value_parser = parse_window)]
    pub(super) idempotency_window: Window,
    /// A key that signs resume links, `KID=SECRET` (secret of 32 bytes or more, e.g.
    /// `openssl rand -base64 32`). Repeat it, or separate keys with commas in
    /// `TETHER_LINK_KEYS`: the first signs, all verify (to rotate, put the new key first and
    /// drop the old one once its links have expired). Every node needs the same keys. Without
    /// one, a random key is made at start: links stop working at restart and on other nodes.
    #[arg(
        long = "link-key",
        env = "TETHER_LINK_KEYS",
        hide_env_values = true,
        value_name = "KID=SECRET",
        value_delimiter = ','
    )]
    pub(super) link_keys: Vec<LinkKeySpec>,
}

/// One `--link-key` as given (`Debug` shows its id only).
#[derive(Clone)]
pub(crate) struct LinkKeySpec(String);

impl std::fmt::Debug for LinkKeySpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kid = self.0.split_once('=').map_or("?", |(kid, _)| kid);
        write!(f, "LinkKeySpec({kid}=<redacted>)")
    }
}

impl std::str::FromStr for LinkKeySpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        // Checked as a whole by `ServeArgs::link_keys`, which names the flag.
        Ok(LinkKeySpec(s.to_owned()))
    }
}

impl ServeArgs {
    /// Check what clap cannot: the database scheme, sizes and durations of at least 1, a
    /// node id that is not blank. Returns the backend `--db` names.
    pub(super) fn check(&self, api_token: Option<&str>) -> Result<Backend, CommandError> {
        let backend = backend_of(&self.db)?;
        let at_least_one = [
            ("--max-payload-bytes", self.max_payload_bytes as u64),
            ("--max-live-runs", self.max_live_runs as u64),
            ("--db-pool-size", self.db_pool_size as u64),
            ("--lease-ms", self.lease_ms),
            ("--poll-interval-ms", self.poll_interval_ms),
            ("--header-timeout-ms", self.header_timeout_ms),
            ("--body-timeout-ms", self.body_timeout_ms),
            ("--idle-timeout-ms", self.idle_timeout_ms),
            ("--max-connections", self.max_connections as u64),
        ];
        for (flag, value) in at_least_one {
            if value == 0 {
                return Err(CommandError::Usage(format!("{flag} must be at least 1")));
            }
        }
        if let Some(token) = api_token {
            if token.trim().is_empty() || token.chars().any(char::is_control) {
                return Err(CommandError::Usage(
                    "--api-token must not be blank or contain control characters".into(),
                ));
            }
        }
        if let Some(url) = &self.public_url {
            let lower = url.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                return Err(CommandError::Usage(format!(
                    "--public-url must start with http:// or https://, not {url:?}"
                )));
            }
        }
        self.link_keys()?;
        if let Some(id) = &self.node_id {
            if id.trim().is_empty() || id.chars().any(char::is_control) {
                return Err(CommandError::Usage(
                    "--node-id must not be blank or contain control characters".into(),
                ));
            }
        }
        Ok(backend)
    }

    /// The keys resume links are signed with: the configured ones, else one generated now.
    pub(super) fn link_keys(&self) -> Result<tether_server::LinkKeys, CommandError> {
        if self.link_keys.is_empty() {
            return Ok(tether_server::LinkKeys::generate());
        }
        tether_server::LinkKeys::parse(self.link_keys.iter().map(|k| k.0.as_str()))
            .map_err(|e| CommandError::Usage(format!("--link-key (TETHER_LINK_KEYS): {e}")))
    }

    /// How the store is opened.
    pub(super) fn open_options(&self) -> OpenOptions {
        OpenOptions {
            db: self.db.clone(),
            pool_size: self.db_pool_size,
            pg_schema: self.pg_schema.clone(),
            read_only: false,
        }
    }

    /// How logs and traces are set up (read before the server starts).
    pub fn telemetry(&self) -> TelemetryOptions {
        TelemetryOptions {
            log_format: self.log_format,
            otlp_endpoint: self.otlp_endpoint.clone(),
        }
    }

    /// The limits on connections these options give.
    pub(super) fn serve_limits(&self) -> tether_server::ServeLimits {
        tether_server::ServeLimits {
            header_timeout: Duration::from_millis(self.header_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            max_connections: self.max_connections,
        }
    }

    /// How long a request's body may take to arrive.
    pub(super) fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }

    /// The engine settings these options give, for a server listening on `local`.
    pub(super) fn engine_config(&self, local: SocketAddr) -> EngineConfig {
        let public_url = match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{local}"),
        };
        EngineConfig {
            public_url: Some(public_url),
            max_live_runs: self.max_live_runs,
            max_payload_bytes: self.max_payload_bytes,
            node_id: self.node_id.clone(),
            lease: Duration::from_millis(self.lease_ms),
            poll_interval: Duration::from_millis(self.poll_interval_ms),
            retention: self.retention.0,
            idempotency_window: self.idempotency_window.0,
            queues: self.queues.clone(),
            queue_limits: super::queues::limits(&self.queue_limit, &self.queue_rate),
            ..EngineConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;

    use super::{Backend, ServeArgs};

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn parse(args: &[&str]) -> ServeArgs {
        Cli::try_parse_from(std::iter::once("serve").chain(args.iter().copied()))
            .expect("parse")
            .serve
    }

    #[test]
    fn cluster_settings_reach_the_engine() {
        let args = parse(&[
            "--db",
            "postgres://h/db",
            "--node-id",
            "node-a",
            "--lease-ms",
            "2000",
            "--poll-interval-ms",
            "100",
            "--queues",
            "a,b",
            "--queue-limit",
            "a=10",
            "--queue-rate",
            "a=5/s",
        ]);
        assert_eq!(args.check(None).unwrap(), Backend::Postgres);
        let config = args.engine_config("127.0.0.1:9999".parse().unwrap());
        assert_eq!(config.node_id.as_deref(), Some("node-a"));
        assert_eq!(config.queues, Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(config.queue_limits["a"].concurrency, Some(10));
        assert_eq!(config.public_url.as_deref(), Some("http://127.0.0.1:9999"));
        assert_eq!(config.lease, Duration::from_secs(2));
        assert_eq!(config.poll_interval, Duration::from_millis(100));
    }

    #[test]
    fn retention_is_off_and_keys_last_a_day_unless_told() {
        let config = parse(&[]).engine_config("127.0.0.1:1".parse().unwrap());
        assert_eq!(config.retention, None);
        assert_eq!(config.idempotency_window, Some(Duration::from_secs(86_400)));
        let args = parse(&["--retention", "7d", "--idempotency-window", "off"]);
        let config = args.engine_config("127.0.0.1:1".parse().unwrap());
        assert_eq!(config.retention, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(config.idempotency_window, None);
        let e = Cli::try_parse_from(["serve", "--retention", "7 weeks"]).unwrap_err();
        assert!(e.to_string().contains("ms, s, m, h or d"), "{e}");
    }

    #[test]
    fn connection_limits_reach_the_server() {
        let args = parse(&[]);
        let limits = args.serve_limits();
        assert_eq!(limits.header_timeout, Duration::from_secs(10));
        assert_eq!(limits.max_connections, 10_000);
        assert_eq!(args.body_timeout(), Duration::from_secs(30));
        let args = parse(&[
            "--header-timeout-ms",
            "300",
            "--body-timeout-ms",
            "400",
            "--idle-timeout-ms",
            "500",
            "--max-connections",
            "50",
        ]);
        args.check(None).unwrap();
        let limits = args.serve_limits();
        assert_eq!(limits.header_timeout, Duration::from_millis(300));
        assert_eq!(limits.idle_timeout, Duration::from_millis(500));
        assert_eq!(limits.max_connections, 50);
        assert_eq!(args.body_timeout(), Duration::from_millis(400));
    }

    #[test]
    fn public_url_overrides_the_bound_address() {
        let args = parse(&["--public-url", "https://tether.example.com/"]);
        args.check(None).unwrap();
        let config = args.engine_config("0.0.0.0:80".parse().unwrap());
        assert_eq!(
            config.public_url.as_deref(),
            Some("https://tether.example.com")
        );
    }

    #[test]
    fn zero_and_blank_are_usage_errors() {
        for (flag, value) in [
            ("--lease-ms", "0"),
            ("--poll-interval-ms", "0"),
            ("--db-pool-size", "0"),
            ("--max-live-runs", "0"),
            ("--max-payload-bytes", "0"),
            ("--header-timeout-ms", "0"),
            ("--body-timeout-ms", "0"),
            ("--idle-timeout-ms", "0"),
            ("--max-connections", "0"),
            ("--node-id", " "),
            ("--public-url", "example.com"),
        ] {
            let e = parse(&[flag, value]).check(None).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{flag} {value}");
            assert!(e.to_string().contains(flag), "{e}");
        }
        let e = parse(&[]).check(Some(" ")).unwrap_err();
        assert!(e.to_string().contains("--api-token"), "{e}");
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn link_keys_are_configured_or_generated_and_never_shown() {
        let args = parse(&[]);
        assert!(args.link_keys().unwrap().is_generated());
        let one = format!("k2={SECRET}-2");
        let two = format!("k1={SECRET}-1");
        let args = parse(&["--link-key", &one, "--link-key", &two]);
        args.check(None).unwrap();
        assert_eq!(args.link_keys().unwrap().kids(), ["k2", "k1"]);
        let shown = format!("{args:?}");
        assert!(!shown.contains(SECRET) && shown.contains("k2"), "{shown}");
        let args = parse(&["--link-key", &format!("{one},{two}")]);
        assert_eq!(args.link_keys().unwrap().kids(), ["k2", "k1"]);
        let e = parse(&["--link-key", "k1=short"]).check(None).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string().contains("--link-key") && !e.to_string().contains("short"),
            "{e}"
        );
    }
}
