//! [`StoreError`]: a backend failure, typed by what the caller can do about it, with the
//! driver's error kept as its source.

use std::error::Error;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// The underlying error of a [`StoreError`] (the driver's, the decoder's ...), shared so that
/// the error stays `Clone` (a group commit answers every op of a batch with the same failure).
pub type ErrorSource = Arc<dyn Error + Send + Sync + 'static>;

/// A backend failure. The batch it happened in was not kept.
///
/// The variant says what kind of failure it is and [`StoreError::is_retryable`] whether the
/// same request may succeed later unchanged; the [`Detail`] says what was being done and keeps
/// the driver's error as [`Error::source`]. Build one with the constructors
/// ([`StoreError::unavailable`], ...) and [`StoreError::with_source`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not do what was asked (I/O error, lost connection, lock timeout).
    /// Retryable: worth trying again later.
    Unavailable(Detail),
    /// The database aborted the transaction to break a deadlock or a serialization conflict
    /// with another writer; nothing of it was kept. Retryable at once.
    Conflict(Detail),
    /// Stored data could not be read back (a bug or a damaged database). Terminal: trying
    /// again reads the same data.
    Corrupt(Detail),
    /// The store was opened with settings it cannot use (bad URL, unsupported schema version).
    /// Terminal: fix the settings.
    Config(Detail),
    /// The database is out of space (disk full, or its size limit reached); nothing of the
    /// batch was kept. Writes work again once space is freed; reads go on meanwhile. Retryable.
    Full(Detail),
    /// The database refuses writes (a read-only file or mount, or a store set to refuse them);
    /// nothing of the batch was kept. Reads go on. Retryable: writes work again once the
    /// database is writable.
    ReadOnly(Detail),
}

/// What a [`StoreError`] says: a message (what was being done, and why it failed) and, where
/// there is one, the underlying error. Reads as its message (`Deref<Target = str>`).
#[derive(Clone)]
pub struct Detail {
    message: String,
    source: Option<ErrorSource>,
}

impl Detail {
    /// A detail with `message` and no source.
    pub fn new(message: impl Into<String>) -> Detail {
        Detail {
            message: message.into(),
            source: None,
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The underlying error, if any.
    pub fn source(&self) -> Option<&ErrorSource> {
        self.source.as_ref()
    }
}

impl Deref for Detail {
    type Target = str;

    fn deref(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Detail");
        d.field("message", &self.message);
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

/// Two details are equal when their messages are (sources are compared through them: the
/// message names the cause).
impl PartialEq for Detail {
    fn eq(&self, other: &Detail) -> bool {
        self.message == other.message
    }
}

impl Eq for Detail {}

impl From<String> for Detail {
    fn from(message: String) -> Detail {
        Detail::new(message)
    }
}

impl From<&str> for Detail {
    fn from(message: &str) -> Detail {
        Detail::new(message)
    }
}

impl StoreError {
    /// [`StoreError::Unavailable`] with `message`.
    pub fn unavailable(message: impl Into<String>) -> StoreError {
        StoreError::Unavailable(Detail::new(message))
    }

    /// [`StoreError::Conflict`] with `message`.
    pub fn conflict(message: impl Into<String>) -> StoreError {
        StoreError::Conflict(Detail::new(message))
    }

    /// [`StoreError::Corrupt`] with `message`.
    pub fn corrupt(message: impl Into<String>) -> StoreError {
        StoreError::Corrupt(Detail::new(message))
    }

    /// [`StoreError::Config`] with `message`.
    pub fn config(message: impl Into<String>) -> StoreError {
        StoreError::Config(Detail::new(message))
    }

    /// [`StoreError::Full`] with `message`.
    pub fn full(message: impl Into<String>) -> StoreError {
        StoreError::Full(Detail::new(message))
    }

    /// [`StoreError::ReadOnly`] with `message`.
    pub fn read_only(message: impl Into<String>) -> StoreError {
        StoreError::ReadOnly(Detail::new(message))
    }

    /// The same error, with `source` as its underlying error.
    pub fn with_source(mut self, source: impl Error + Send + Sync + 'static) -> StoreError {
        self.detail_mut().source = Some(Arc::new(source));
        self
    }

    /// Whether the same request may succeed later, unchanged: the database was unreachable,
    /// busy, out of space or read-only, or aborted the transaction in a conflict. `false` for
    /// terminal failures (damaged data, bad settings), which fail the same way until the data
    /// or the settings are fixed.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Unavailable(_)
            | StoreError::Conflict(_)
            | StoreError::Full(_)
            | StoreError::ReadOnly(_) => true,
            StoreError::Corrupt(_) | StoreError::Config(_) => false,
        }
    }

    /// The detail: message and source.
    pub fn detail(&self) -> &Detail {
        match self {
            StoreError::Unavailable(d)
            | StoreError::Conflict(d)
            | StoreError::Corrupt(d)
            | StoreError::Config(d)
            | StoreError::Full(d)
            | StoreError::ReadOnly(d) => d,
        }
    }

    fn detail_mut(&mut self) -> &mut Detail {
        match self {
            StoreError::Unavailable(d)
            | StoreError::Conflict(d)
            | StoreError::Corrupt(d)
            | StoreError::Config(d)
            | StoreError::Full(d)
            | StoreError::ReadOnly(d) => d,
        }
    }

    /// The message, without the kind's prefix.
    pub fn message(&self) -> &str {
        self.detail().message()
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = match self {
            StoreError::Unavailable(_) => "storage unavailable",
            StoreError::Conflict(_) => "storage conflict (the transaction was aborted; retry it)",
            StoreError::Corrupt(_) => "stored data is corrupt",
            StoreError::Config(_) => "storage misconfigured",
            StoreError::Full(_) => "storage full",
            StoreError::ReadOnly(_) => "storage read-only",
        };
        write!(f, "{prefix}: {}", self.message())
    }
}

/// Written by hand rather than with `thiserror`: the source is the detail's underlying error,
/// not the detail itself (which would print the message twice in a chain).
impl Error for StoreError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.detail()
            .source()
            .map(|s| s.as_ref() as &(dyn Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_kind_and_message_and_keeps_the_source() {
        let io = std::io::Error::other("disk gone");
        let e = StoreError::unavailable("insert event: disk gone").with_source(io);
        assert_eq!(
            e.to_string(),
            "storage unavailable: insert event: disk gone"
        );
        assert_eq!(
            e.source().map(|s| s.to_string()).as_deref(),
            Some("disk gone")
        );
        assert!(e.is_retryable());
        let clone = e.clone();
        assert_eq!(clone, e);
    }

    #[test]
    fn splits_retryable_from_terminal() {
        assert!(StoreError::full("x").is_retryable());
        assert!(StoreError::read_only("x").is_retryable());
        assert!(StoreError::conflict("x").is_retryable());
        assert!(!StoreError::corrupt("x").is_retryable());
        assert!(!StoreError::config("x").is_retryable());
    }

    #[test]
    fn a_detail_reads_as_its_message() {
        let StoreError::Config(msg) = StoreError::config("schema is newer") else {
            unreachable!("built as Config")
        };
        assert!(msg.contains("newer"), "{msg}");
    }
}
