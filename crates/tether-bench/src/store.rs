//! A fresh, throw-away store for one benchmark: a new SQLite file in a new temp dir (under
//! `--dir`, or the system's temp dir), or a new schema in a PostgreSQL database, dropped
//! afterwards. It is opened in this process, or handed to a child `tether serve`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tether::postgres::PostgresStore;
use tether::sqlite::SqliteStore;
use tether::store::Store;

/// Where a benchmark's data lives.
#[derive(Debug)]
pub(crate) struct FreshStore {
    place: Place,
}

#[derive(Debug)]
enum Place {
    Sqlite {
        /// Removed when dropped, with the database file in it.
        dir: tempfile::TempDir,
        path: PathBuf,
    },
    Postgres {
        url: String,
        schema: String,
    },
}

impl FreshStore {
    /// Pick a fresh place for `db`: `sqlite` (or any `sqlite:` URL: a new file is used anyway)
    /// makes a temp dir under `dir`; a `postgres://` URL names a new schema. Nothing is opened.
    pub(crate) fn prepare(db: &str, dir: Option<&Path>) -> Result<FreshStore, String> {
        let lower = db.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            let mut bytes = [0u8; 6];
            getrandom::fill(&mut bytes)
                .map_err(|e| format!("no random bytes for a schema name: {e}"))?;
            let schema = format!(
                "bench_{}",
                bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
            );
            return Ok(FreshStore {
                place: Place::Postgres {
                    url: db.to_string(),
                    schema,
                },
            });
        }
        if !(lower == "sqlite" || lower.starts_with("sqlite:")) {
            return Err(format!(
                "--db {db:?} is neither `sqlite` nor a postgres:// URL; pass one of those"
            ));
        }
        let dir = match dir {
            Some(parent) => tempfile::Builder::new()
                .prefix("tether-bench-")
                .tempdir_in(parent)
                .map_err(|e| {
                    format!(
                        "cannot make a temp dir in --dir {}: {e}; pass an existing, \
                         writable directory",
                        parent.display()
                    )
                })?,
            None => tempfile::Builder::new()
                .prefix("tether-bench-")
                .tempdir()
                .map_err(|e| format!("cannot make a temp dir (set --dir): {e}"))?,
        };
        let path = dir.path().join("bench.db");
        Ok(FreshStore {
            place: Place::Sqlite { dir, path },
        })
    }

    /// Open the store in this process (PostgreSQL: creating the schema).
    pub(crate) async fn open(&self) -> Result<Arc<dyn Store>, String> {
        match &self.place {
            Place::Sqlite { path, .. } => {
                let store = SqliteStore::open(&path.display().to_string())
                    .await
                    .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
                Ok(Arc::new(store))
            }
            Place::Postgres { url, schema } => {
                let store = PostgresStore::open_in_schema(url, schema)
                    .await
                    .map_err(|e| format!("cannot open schema {schema}: {e}"))?;
                Ok(Arc::new(store))
            }
        }
    }

    /// Bring the store to a steady state's planner statistics once a workload has loaded
    /// its runs, before it starts timing: on PostgreSQL `ANALYZE` of the write path's tables
    /// (see `PostgresStore::analyze`; a table created empty moments ago is otherwise planned
    /// as if it held nothing, which no long-lived database is); nothing on SQLite.
    pub(crate) async fn analyze(&self) -> Result<(), String> {
        match &self.place {
            Place::Sqlite { .. } => Ok(()),
            Place::Postgres { url, schema } => {
                let store = PostgresStore::open_in_schema(url, schema)
                    .await
                    .map_err(|e| format!("cannot open schema {schema}: {e}"))?;
                store
                    .analyze()
                    .await
                    .map_err(|e| format!("cannot analyze schema {schema}: {e}"))
            }
        }
    }

    /// The arguments that make `tether serve` use this store (on PostgreSQL as node `bench`:
    /// a process restarted on it takes the killed one's leases over at once).
    pub(crate) fn serve_args(&self) -> Vec<OsString> {
        self.serve_args_as("bench")
    }

    /// The arguments that make `tether serve` use this store, as node `node_id` on PostgreSQL
    /// (SQLite has one node: the id is not passed).
    pub(crate) fn serve_args_as(&self, node_id: &str) -> Vec<OsString> {
        match &self.place {
            Place::Sqlite { path, .. } => {
                let mut db = OsString::from("sqlite://");
                db.push(path.as_os_str());
                vec!["--db".into(), db]
            }
            Place::Postgres { url, schema } => vec![
                "--db".into(),
                url.into(),
                "--pg-schema".into(),
                schema.into(),
                "--node-id".into(),
                node_id.into(),
            ],
        }
    }

    /// The PostgreSQL URL and schema (`None` on SQLite).
    pub(crate) fn postgres(&self) -> Option<(&str, &str)> {
        match &self.place {
            Place::Postgres { url, schema } => Some((url, schema)),
            Place::Sqlite { .. } => None,
        }
    }

    /// `sqlite` or `postgres`.
    pub(crate) fn backend(&self) -> &'static str {
        match self.place {
            Place::Sqlite { .. } => "sqlite",
            Place::Postgres { .. } => "postgres",
        }
    }

    /// The directory holding the SQLite file (`None` on PostgreSQL).
    pub(crate) fn dir(&self) -> Option<&Path> {
        match &self.place {
            Place::Sqlite { dir, .. } => Some(dir.path()),
            Place::Postgres { .. } => None,
        }
    }

    /// Remove what was made (the temp dir goes with `self`; a schema is dropped, unless
    /// `TETHER_BENCH_KEEP_SCHEMA` is set: then its name goes to stderr and it stays, so its
    /// tables' counters — `pg_stat_user_tables`, `pg_stat_user_indexes` — can be read after the
    /// run; drop it yourself).
    pub(crate) async fn cleanup(self) {
        if let Place::Postgres { url, schema } = &self.place {
            if std::env::var_os("TETHER_BENCH_KEEP_SCHEMA").is_some() {
                eprintln!("kept schema {schema}");
                return;
            }
            if let Err(e) = PostgresStore::drop_schema(url, schema).await {
                tracing::warn!(error = %e, schema, "could not drop the benchmark schema");
            }
        }
    }
}
