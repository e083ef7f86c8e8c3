//! The one error type of the harness.

use tether::cli::CommandError;

/// Why a benchmark could not run or did not finish. Each message says what to change.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The arguments cannot work together (e.g. `stream --mode inproc`).
    #[error("{0}")]
    Usage(String),
    /// The fresh store (a SQLite file under `--dir`, or a PostgreSQL schema) could not be made.
    #[error("cannot prepare a fresh store: {0}")]
    Store(String),
    /// The workload failed while running (a refused request, a server that did not start).
    #[error("benchmark failed: {0}")]
    Failed(String),
}

impl From<BenchError> for CommandError {
    fn from(e: BenchError) -> CommandError {
        match e {
            BenchError::Usage(m) => CommandError::Usage(m),
            other => CommandError::Failed(other.to_string()),
        }
    }
}
