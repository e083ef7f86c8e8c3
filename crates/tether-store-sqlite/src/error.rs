//! Mapping of SQLite and JSON errors to [`StoreError`], with the context of what was being done.

use tether_store::StoreError;

/// Map a rusqlite error: damaged files and undecodable column values are `Corrupt`, a full
/// disk (or the size limit reached) is `Full`, a read-only file is `ReadOnly`, anything else
/// (I/O, locks) is `Unavailable`.
pub(crate) fn db_err(context: &str, e: rusqlite::Error) -> StoreError {
    use rusqlite::{Error, ErrorCode};
    match &e {
        Error::SqliteFailure(f, _)
            if matches!(f.code, ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) =>
        {
            StoreError::Corrupt(format!("{context}: {e}"))
        }
        Error::SqliteFailure(f, _) if f.code == ErrorCode::DiskFull => {
            StoreError::Full(format!("{context}: {e}"))
        }
        Error::SqliteFailure(f, _) if f.code == ErrorCode::ReadOnly => {
            StoreError::ReadOnly(format!("{context}: {e}"))
        }
        Error::FromSqlConversionFailure(..)
        | Error::IntegralValueOutOfRange(..)
        | Error::InvalidColumnType(..) => StoreError::Corrupt(format!("{context}: {e}")),
        _ => StoreError::Unavailable(format!("{context}: {e}")),
    }
}

/// Adds context to rusqlite results: `stmt.execute(..).ctx("insert event")?`.
pub(crate) trait Ctx<T> {
    /// Map the error with [`db_err`].
    fn ctx(self, context: &str) -> Result<T, StoreError>;
}

impl<T> Ctx<T> for rusqlite::Result<T> {
    fn ctx(self, context: &str) -> Result<T, StoreError> {
        self.map_err(|e| db_err(context, e))
    }
}

/// A stored JSON value that does not decode: the database holds something this code did not
/// write.
pub(crate) fn decode_err(what: &str, e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("cannot decode {what}: {e}"))
}

/// A value that does not encode as JSON (not expected to happen with `serde_json::Value`).
pub(crate) fn encode_err(what: &str, e: serde_json::Error) -> StoreError {
    StoreError::Unavailable(format!("cannot encode {what} as JSON: {e}"))
}

/// A blocking task that panicked or was cancelled.
pub(crate) fn join_err(what: &str, e: tokio::task::JoinError) -> StoreError {
    StoreError::Unavailable(format!("{what}: background task failed: {e}"))
}
