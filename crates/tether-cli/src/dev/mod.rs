//! `tether dev`: open the store, start the engine with the bundled examples, serve the API,
//! stop cleanly on Ctrl-C or SIGTERM.

use std::fmt;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tether_core::Registry;
use tether_engine::{Engine, EngineConfig};
use tether_server::ServerOptions;
use tether_store::Store;
use tether_store_postgres::{redact_url, PostgresOptions, PostgresStore};
use tether_store_sqlite::SqliteStore;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How long requests in flight (long-polls included) may take to finish after a stop signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Options of `tether dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Database: `sqlite://path/to/file.db`, `sqlite:path` or a plain file path (embedded,
    /// one process), or `postgres://user[:password]@host[:port]/database` (also
    /// `postgresql://`; several processes may share it).
    #[arg(
        long,
        env = "TETHER_DB",
        hide_env_values = true,
        default_value = "sqlite://tether.db"
    )]
    db: String,
    /// PostgreSQL only: most connections this process keeps open to the database.
    #[arg(
        long,
        env = "TETHER_DB_POOL_SIZE",
        default_value_t = tether_store_postgres::DEFAULT_POOL_SIZE
    )]
    db_pool_size: usize,
    /// PostgreSQL only: keep Tether's tables in this schema (created if missing) instead of the
    /// connection's default one. Lower-case letters, digits and `_`.
    #[arg(long, env = "TETHER_PG_SCHEMA", value_name = "SCHEMA")]
    pg_schema: Option<String>,
    /// Address to listen on (port 0 picks a free port; the line printed says which).
    #[arg(long, env = "TETHER_ADDR", default_value = "127.0.0.1:8080")]
    addr: String,
    /// Largest accepted hook payload or run input, in bytes of JSON.
    #[arg(long, default_value_t = 1_048_576)]
    max_payload_bytes: usize,
    /// Most runs kept live in memory; past it, idle runs are evicted (and replayed when needed).
    #[arg(long, default_value_t = 10_000)]
    max_live_runs: usize,
}

/// Why `tether dev` stopped with an error.
#[derive(Debug)]
pub enum DevError {
    /// The options cannot work (exit code 2).
    Usage(String),
    /// Something failed at start or while serving (exit code 1).
    Failed(String),
}

impl DevError {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            DevError::Usage(_) => 2,
            DevError::Failed(_) => 1,
        }
    }
}

impl fmt::Display for DevError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DevError::Usage(m) | DevError::Failed(m) => f.write_str(m),
        }
    }
}

/// The backends `--db` can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// Which backend the database location names.
fn check_db(db: &str) -> Result<Backend, DevError> {
    let scheme = db.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("postgres" | "postgresql") => Ok(Backend::Postgres),
        None | Some("sqlite") => Ok(Backend::Sqlite),
        Some(other) => Err(DevError::Usage(format!(
            "unsupported database URL scheme `{other}://`; use sqlite://path/to/file.db, \
             postgres://user@host/database or a path"
        ))),
    }
}

/// Open the store `--db` names. Errors name the database without its password, on one line.
async fn open_store(args: &DevArgs, backend: Backend) -> Result<Arc<dyn Store>, DevError> {
    let opened: Result<Arc<dyn Store>, _> = match backend {
        Backend::Sqlite => SqliteStore::open(&args.db)
            .await
            .map(|s| Arc::new(s) as Arc<dyn Store>),
        Backend::Postgres => {
            let options = PostgresOptions {
                pool_size: args.db_pool_size,
                schema: args.pg_schema.clone(),
            };
            PostgresStore::open_with(&args.db, options)
                .await
                .map(|s| Arc::new(s) as Arc<dyn Store>)
        }
    };
    opened.map_err(|e| {
        let line = format!("cannot open database {}: {e}", redact_url(&args.db));
        DevError::Failed(line.replace(['\n', '\r'], " "))
    })
}

/// Run the dev server until Ctrl-C or SIGTERM.
pub async fn run(args: DevArgs) -> Result<(), DevError> {
    let backend = check_db(&args.db)?;
    if args.max_payload_bytes == 0 {
        return Err(DevError::Usage(
            "--max-payload-bytes must be at least 1".into(),
        ));
    }
    if args.max_live_runs == 0 {
        return Err(DevError::Usage("--max-live-runs must be at least 1".into()));
    }
    if args.db_pool_size == 0 {
        return Err(DevError::Usage("--db-pool-size must be at least 1".into()));
    }

    // Bind first: a port in use should not leave a new database file behind.
    let listener = TcpListener::bind(&args.addr)
        .await
        .map_err(|e| DevError::Failed(format!("cannot listen on {}: {e}", args.addr)))?;
    let store = open_store(&args, backend).await?;
    let local = listener
        .local_addr()
        .map_err(|e| DevError::Failed(format!("cannot read the listening address: {e}")))?;

    let mut registry = Registry::new();
    tether_examples::register(&mut registry);
    let config = EngineConfig {
        max_live_runs: args.max_live_runs,
        max_payload_bytes: args.max_payload_bytes,
        ..EngineConfig::default()
    };
    let engine = Engine::start(store, registry, config);
    tracing::info!(
        db = %redact_url(&args.db),
        workflows = %engine.registry().workflow_names().join(", "),
        "engine started"
    );

    let (stop_tx, mut stop_rx) = watch::channel(false);
    let options = ServerOptions {
        stopping: Some(stop_rx.clone()),
        ..ServerOptions::default()
    };
    let router = tether_server::router(engine.clone(), options);
    let mut server = tokio::spawn(tether_server::serve(listener, router, async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
    }));

    announce(&format!("tether listening on http://{local}"));

    let outcome = tokio::select! {
        () = stop_signal() => {
            tracing::info!("stopping");
            let _ = stop_tx.send(true);
            match tokio::time::timeout(DRAIN_TIMEOUT, &mut server).await {
                Ok(_) => {}
                Err(_) => {
                    tracing::warn!("requests still in flight after {DRAIN_TIMEOUT:?}; closing them");
                    server.abort();
                }
            }
            Ok(())
        }
        res = &mut server => match res {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(DevError::Failed(format!("the server stopped: {e}"))),
            Err(e) => Err(DevError::Failed(format!("the server stopped: {e}"))),
        },
    };
    engine.shutdown().await;
    tracing::info!("stopped");
    outcome
}

/// Print the one stdout line that says the server is ready.
fn announce(line: &str) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        tracing::warn!("{line} (could not write to stdout)");
    }
}

/// Completes on Ctrl-C, or SIGTERM on unix.
async fn stop_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::{check_db, Backend};

    #[test]
    fn database_schemes() {
        assert_eq!(check_db("sqlite://tether.db").unwrap(), Backend::Sqlite);
        assert_eq!(check_db("sqlite:tether.db").unwrap(), Backend::Sqlite);
        assert_eq!(check_db("data/tether.db").unwrap(), Backend::Sqlite);
        assert_eq!(check_db("postgres://u:p@h/db").unwrap(), Backend::Postgres);
        assert_eq!(check_db("PostgreSQL://h/db").unwrap(), Backend::Postgres);
        let e = check_db("mysql://u:p@h/db").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(!e.to_string().contains("u:p"), "{e}");
    }
}
