//! `tether replay RUN_ID [--db URL]`: check a stored run against the current code (the bundled
//! example workflows) without changing it. Opens the database directly and only reads it: no
//! claim, no write, no step executed. Prints `ok: ...` (exit 0) or the non-determinism error
//! naming the position (exit 1).

use std::sync::Arc;

use clap::Args;
use tether_core::Registry;
use tether_engine::replay::{check_run, RunCheck};
use tether_store::Store;
use tether_store_postgres::{redact_url, PostgresOptions};

/// Options of `tether replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The run to check.
    pub run_id: String,
    /// The database the run is stored in (as `tether dev --db`). A SQLite file must exist.
    #[arg(
        long,
        env = "TETHER_DB",
        hide_env_values = true,
        default_value = "sqlite://tether.db"
    )]
    pub db: String,
    /// PostgreSQL only: the schema Tether's tables are in (as `tether dev --pg-schema`).
    #[arg(long, env = "TETHER_PG_SCHEMA", value_name = "SCHEMA")]
    pub pg_schema: Option<String>,
}

/// Why `tether replay` failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayCommandError {
    /// The database could not be opened or read, or the run cannot be checked.
    #[error("{0}")]
    Failed(String),
    /// The code does not reproduce the run (the report says where).
    #[error("{0}")]
    Diverged(String),
}

impl ReplayCommandError {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        1
    }
}

/// The SQLite file a `--db` value names, if it names one.
fn sqlite_path(db: &str) -> Option<&str> {
    let lower = db.to_ascii_lowercase();
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        return None;
    }
    let rest = db
        .strip_prefix("sqlite://")
        .or_else(|| db.strip_prefix("sqlite:"))
        .unwrap_or(db);
    Some(rest.split_once('?').map_or(rest, |(p, _)| p))
}

async fn open(args: &ReplayArgs) -> Result<Arc<dyn Store>, ReplayCommandError> {
    let postgres = match sqlite_path(&args.db) {
        Some(path) => {
            // Opening a missing file would create an empty database: refuse instead.
            if !std::path::Path::new(path).is_file() {
                return Err(ReplayCommandError::Failed(
                    format!(
                        "cannot open database {}: no such database file",
                        redact_url(&args.db)
                    )
                    .replace(['\n', '\r'], " "),
                ));
            }
            None
        }
        None => Some(PostgresOptions {
            pool_size: 2,
            schema: args.pg_schema.clone(),
        }),
    };
    crate::store::open_named(&args.db, postgres)
        .await
        .map_err(ReplayCommandError::Failed)
}

/// The check itself, against `registry` (the CLI passes the bundled examples).
pub async fn check(args: &ReplayArgs, registry: &Registry) -> Result<RunCheck, ReplayCommandError> {
    let store = open(args).await?;
    check_run(store.as_ref(), registry, &args.run_id)
        .await
        .map_err(|e| ReplayCommandError::Failed(e.to_string()))
}

/// `tether replay`: prints the report on stdout when the code reproduces the run; otherwise
/// the error (with the position) goes to stderr and the exit code is 1.
pub async fn run(args: ReplayArgs) -> Result<(), ReplayCommandError> {
    let mut registry = Registry::new();
    tether_examples::register(&mut registry);
    let report = check(&args, &registry).await?;
    if report.is_ok() {
        println!("{report}");
        Ok(())
    } else {
        Err(ReplayCommandError::Diverged(report.to_string()))
    }
}
