//! Mapping of PostgreSQL, pool and JSON errors to [`StoreError`], with the context of what was
//! being done.

use tether_store::StoreError;
use tokio_postgres::error::SqlState;

/// The whole message of a driver error: its kind and every cause (the server's own message
/// for database errors).
pub(crate) fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    // One line, whatever the server said.
    message.replace(['\n', '\r'], " ")
}

/// Map a driver error: values that do not decode and data the server itself says is damaged
/// are `Corrupt`; a transaction the server aborted to break a deadlock or a serialization
/// conflict is `Conflict` (running it again may succeed at once); anything else the server or
/// the connection reports is `Unavailable`. The driver's error is kept as the source.
pub(crate) fn db_err(context: &str, e: tokio_postgres::Error) -> StoreError {
    let message = format!("{context}: {}", describe(&e));
    let code = e.code();
    let corrupt = matches!(
        code,
        Some(c) if *c == SqlState::DATA_CORRUPTED || *c == SqlState::INDEX_CORRUPTED
    );
    let conflict = matches!(
        code,
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    );
    let error = if corrupt || is_decode_error(&e) {
        StoreError::corrupt(message)
    } else if conflict {
        StoreError::conflict(message)
    } else {
        StoreError::unavailable(message)
    };
    error.with_source(e)
}

/// Whether the error came from reading a column into a Rust value (a stored value of the
/// wrong type or range).
fn is_decode_error(e: &tokio_postgres::Error) -> bool {
    e.code().is_none() && e.to_string().starts_with("error deserializing column")
}

/// Adds context to driver results: `tx.execute(..).await.ctx("insert event")?`.
pub(crate) trait Ctx<T> {
    /// Map the error with [`db_err`].
    fn ctx(self, context: &str) -> Result<T, StoreError>;
}

impl<T> Ctx<T> for Result<T, tokio_postgres::Error> {
    fn ctx(self, context: &str) -> Result<T, StoreError> {
        self.map_err(|e| db_err(context, e))
    }
}

/// A connection could not be had from the pool (the server is down, refuses us, ...).
pub(crate) fn pool_err(context: &str, e: &deadpool_postgres::PoolError) -> StoreError {
    let why = match e {
        // The driver's own error says it best.
        deadpool_postgres::PoolError::Backend(e) => describe(e),
        other => describe(other),
    };
    StoreError::unavailable(format!("{context}: no connection to PostgreSQL: {why}"))
}

/// A stored JSON value that does not decode: the database holds something this code did not
/// write.
pub(crate) fn decode_err(what: &str, e: &serde_json::Error) -> StoreError {
    StoreError::corrupt(format!("cannot decode {what}: {e}"))
}

/// A value that does not encode as JSON (not expected to happen with `serde_json::Value`).
pub(crate) fn encode_err(what: &str, e: &serde_json::Error) -> StoreError {
    StoreError::unavailable(format!("cannot encode {what} as JSON: {e}"))
}

/// A number this backend stores as `BIGINT` is beyond its range (the SQLite backend refuses
/// such writes the same way).
pub(crate) fn out_of_range(what: &str, v: u64) -> StoreError {
    StoreError::unavailable(format!(
        "cannot store {what} {v}: PostgreSQL BIGINT holds at most {}",
        i64::MAX
    ))
}

/// A stored number that no record can hold (negative, or too large).
pub(crate) fn bad_number(what: &str, v: i64) -> StoreError {
    StoreError::corrupt(format!("stored {what} {v} is out of range"))
}
