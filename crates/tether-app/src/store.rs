//! Opening the store `--db` names, for serving (read-write, migrated) or for checking
//! (read-only: nothing created, nothing migrated, writes refused by the database itself).

use std::sync::Arc;

use tether_store::{redact_url, Store, StoreError};

use crate::error::CommandError;

/// The backends `--db` can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// Which backend the database location names: `postgres://` / `postgresql://`, else SQLite
/// (`sqlite://path`, `sqlite:path` or a plain path).
pub(crate) fn backend_of(db: &str) -> Result<Backend, CommandError> {
    let scheme = db.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("postgres" | "postgresql") => Ok(Backend::Postgres),
        None | Some("sqlite") => Ok(Backend::Sqlite),
        Some(other) => Err(CommandError::Usage(format!(
            "unsupported database URL scheme `{other}://`; use sqlite://path/to/file.db, \
             postgres://user@host/database or a path"
        ))),
    }
}

/// How to open the store.
#[derive(Clone, Debug)]
pub(crate) struct OpenOptions {
    /// The `--db` value.
    pub db: String,
    /// PostgreSQL: the pool size.
    pub pool_size: usize,
    /// PostgreSQL: the schema of Tether's tables.
    pub pg_schema: Option<String>,
    /// Only read: no file or schema created, no migration, writes refused.
    pub read_only: bool,
}

/// What opening gives: the store, or the store's error (the outer `Result` of the backend
/// functions is a usage error: the backend is not built into this binary).
type Opened = Result<Arc<dyn Store>, StoreError>;

/// Open the store `options.db` names. The error names the database without its password, on
/// one line.
pub(crate) async fn open(options: &OpenOptions) -> Result<Arc<dyn Store>, CommandError> {
    let opened = match backend_of(&options.db)? {
        Backend::Sqlite => open_sqlite(options).await?,
        Backend::Postgres => open_postgres(options).await?,
    };
    opened.map_err(|e| {
        CommandError::Failed(
            format!("cannot open database {}: {e}", redact_url(&options.db))
                .replace(['\n', '\r'], " "),
        )
    })
}

#[cfg(feature = "sqlite")]
async fn open_sqlite(options: &OpenOptions) -> Result<Opened, CommandError> {
    use tether_store_sqlite::SqliteStore;
    let opened = if options.read_only {
        SqliteStore::open_read_only(&options.db).await
    } else {
        SqliteStore::open(&options.db).await
    };
    Ok(opened.map(|s| Arc::new(s) as Arc<dyn Store>))
}

#[cfg(not(feature = "sqlite"))]
async fn open_sqlite(_options: &OpenOptions) -> Result<Opened, CommandError> {
    Err(not_built("SQLite", "sqlite"))
}

#[cfg(feature = "postgres")]
async fn open_postgres(options: &OpenOptions) -> Result<Opened, CommandError> {
    use tether_store_postgres::{PostgresOptions, PostgresStore};
    let pg = PostgresOptions {
        pool_size: options.pool_size,
        schema: options.pg_schema.clone(),
    };
    let opened = if options.read_only {
        PostgresStore::open_read_only(&options.db, pg).await
    } else {
        PostgresStore::open_with(&options.db, pg).await
    };
    Ok(opened.map(|s| Arc::new(s) as Arc<dyn Store>))
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(_options: &OpenOptions) -> Result<Opened, CommandError> {
    Err(not_built("PostgreSQL", "postgres"))
}

#[allow(dead_code)] // used only when a backend's feature is off
fn not_built(backend: &str, feature: &str) -> CommandError {
    CommandError::Usage(format!(
        "this binary was built without {backend} support; enable the `{feature}` feature of \
         the `tether` crate"
    ))
}

#[cfg(test)]
mod tests {
    use super::{backend_of, Backend};

    #[test]
    fn database_schemes() {
        assert_eq!(backend_of("sqlite://tether.db").unwrap(), Backend::Sqlite);
        assert_eq!(backend_of("sqlite:tether.db").unwrap(), Backend::Sqlite);
        assert_eq!(backend_of("data/tether.db").unwrap(), Backend::Sqlite);
        assert_eq!(
            backend_of("postgres://u:p@h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(backend_of("PostgreSQL://h/db").unwrap(), Backend::Postgres);
        let e = backend_of("mysql://u:p@h/db").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(!e.to_string().contains("u:p"), "{e}");
    }
}
