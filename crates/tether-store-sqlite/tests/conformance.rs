//! The shared conformance suite (`tether-store-conformance`), run against a fresh SQLite file per case.

use tempfile::TempDir;
use tether_store_conformance::Guarded;
use tether_store_sqlite::SqliteStore;

/// A store on a new database file in a temporary directory removed after the case.
async fn fresh_store() -> Guarded<SqliteStore, TempDir> {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let path = dir.path().join("tether.db");
    let url = format!("sqlite://{}", path.display());
    let store = SqliteStore::open(&url)
        .await
        .expect("open a fresh SQLite store");
    Guarded { store, guard: dir }
}

tether_store_conformance::conformance_tests!(fresh_store());
