//! A fresh, throw-away store for `tether bench`: a new SQLite file in a temp dir, or a new
//! schema in a PostgreSQL database, dropped afterwards.

use std::sync::Arc;

use tether::postgres::PostgresStore;
use tether::sqlite::SqliteStore;
use tether::store::{Store, StoreError};

/// A store made for one benchmark, and how to clean it up.
pub(crate) struct FreshStore {
    store: Arc<dyn Store>,
    backend: &'static str,
    cleanup: Cleanup,
}

enum Cleanup {
    TempDir(#[allow(dead_code)] tempfile::TempDir),
    Schema { url: String, schema: String },
}

/// `sqlite` (or any `sqlite:` URL: a fresh file is used anyway) or a `postgres://` URL.
pub(crate) async fn open_fresh(db: &str) -> Result<FreshStore, String> {
    let lower = db.to_ascii_lowercase();
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        let mut bytes = [0u8; 6];
        getrandom::fill(&mut bytes).map_err(|e| e.to_string())?;
        let schema = format!(
            "bench_{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let store = PostgresStore::open_in_schema(db, &schema)
            .await
            .map_err(|e: StoreError| e.to_string())?;
        return Ok(FreshStore {
            store: Arc::new(store),
            backend: "postgres",
            cleanup: Cleanup::Schema {
                url: db.to_string(),
                schema,
            },
        });
    }
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let path = dir.path().join("bench.db");
    let store = SqliteStore::open(&path.display().to_string())
        .await
        .map_err(|e| e.to_string())?;
    Ok(FreshStore {
        store: Arc::new(store),
        backend: "sqlite",
        cleanup: Cleanup::TempDir(dir),
    })
}

impl FreshStore {
    /// The store.
    pub(crate) fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// `sqlite` or `postgres`.
    pub(crate) fn backend(&self) -> &'static str {
        self.backend
    }

    /// Remove what was made (the temp dir goes with `self`).
    pub(crate) async fn cleanup(self) {
        if let Cleanup::Schema { url, schema } = &self.cleanup {
            if let Err(e) = PostgresStore::drop_schema(url, schema).await {
                tracing::warn!(error = %e, schema, "could not drop the benchmark schema");
            }
        }
    }
}
