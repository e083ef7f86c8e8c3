//! Mapping of SQLite and JSON errors to [`StoreError`], with the context of what was being done.

use tether_store::StoreError;

/// Map a rusqlite error: damaged files and undecodable column values are `Corrupt`, a full
/// disk (or the size limit reached) is `Full`, a read-only file is `ReadOnly`, anything else
/// (I/O, locks) is `Unavailable`.
pub(crate) fn db_err(context: &str, e: rusqlite::Error) -> StoreError {
    use rusqlite::{Error, ErrorCode};
    let message = format!("{context}: {e}");
    let error = match &e {
        Error::SqliteFailure(f, _)
            if matches!(f.code, ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) =>
        {
            StoreError::corrupt(message)
        }
        Error::SqliteFailure(f, _) if f.code == ErrorCode::DiskFull => StoreError::full(message),
        Error::SqliteFailure(f, _) if f.code == ErrorCode::ReadOnly => {
            StoreError::read_only(message)
        }
        Error::FromSqlConversionFailure(..)
        | Error::IntegralValueOutOfRange(..)
        | Error::InvalidColumnType(..) => StoreError::corrupt(message),
        _ => StoreError::unavailable(message),
    };
    error.with_source(e)
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
    StoreError::corrupt(format!("cannot decode {what}: {e}")).with_source(e)
}

/// A value that does not encode as JSON (not expected to happen with `serde_json::Value`).
pub(crate) fn encode_err(what: &str, e: serde_json::Error) -> StoreError {
    StoreError::unavailable(format!("cannot encode {what} as JSON: {e}")).with_source(e)
}

/// A blocking task that panicked or was cancelled.
pub(crate) fn join_err(what: &str, e: tokio::task::JoinError) -> StoreError {
    StoreError::unavailable(format!("{what}: background task failed: {e}")).with_source(e)
}
