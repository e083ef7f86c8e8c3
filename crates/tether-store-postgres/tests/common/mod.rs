//! Helpers shared by the PostgreSQL tests: the server to test against (from
//! `TETHER_TEST_POSTGRES`), a fresh schema per test, and a guard that drops it afterwards.
#![allow(dead_code)]

use std::sync::mpsc;
use std::time::Duration;

use tether_store_conformance::Guarded;
use tether_store_postgres::{PostgresOptions, PostgresStore};

/// How long dropping a test schema may take before the test gives up on it (it is then left
/// behind, named `t_...`).
const CLEANUP_PATIENCE: Duration = Duration::from_secs(20);

/// The server URL from `TETHER_TEST_POSTGRES`; panics saying what to set when there is none
/// (a test needing it is ignored then, except under CI: see `tether-test-env`).
pub fn test_url() -> String {
    tether_test_env::postgres_url()
}

/// A schema name no other test uses: `t_` and 16 random hex digits.
pub fn fresh_schema() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("t_{}", &id[..16])
}

/// Drops its schema (and every table in it) when dropped.
#[derive(Debug)]
pub struct SchemaGuard {
    /// The server.
    pub url: String,
    /// The schema.
    pub schema: String,
}

impl SchemaGuard {
    /// A guard for a new schema name (the schema itself is created by the first store
    /// opened in it).
    pub fn new(url: &str) -> SchemaGuard {
        SchemaGuard {
            url: url.to_owned(),
            schema: fresh_schema(),
        }
    }

    /// Open a store in the guarded schema.
    pub async fn open(&self) -> PostgresStore {
        self.open_with_pool(4).await
    }

    /// Open a store in the guarded schema with a pool of `pool_size` connections.
    pub async fn open_with_pool(&self, pool_size: usize) -> PostgresStore {
        let options = PostgresOptions {
            pool_size,
            schema: Some(self.schema.clone()),
        };
        match PostgresStore::open_with(&self.url, options).await {
            Ok(store) => store,
            Err(e) => panic!("open a store in schema {}: {e}", self.schema),
        }
    }
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which must not be blocked on itself: the schema
        // is dropped on a thread with a runtime (and a connection) of its own. The test's
        // connections are idle by now, so they hold no lock the DROP waits for; a lock
        // timeout and a bounded wait make sure a test that failed mid-transaction cannot hang
        // here.
        let url = self.url.clone();
        let schema = self.schema.clone();
        let (done_tx, done_rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name(format!("drop-{schema}"))
            .spawn(move || {
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())
                    .and_then(|rt| {
                        rt.block_on(PostgresStore::drop_schema(&url, &schema))
                            .map_err(|e| e.to_string())
                    });
                let _ = done_tx.send(result);
            });
        if let Err(e) = spawned {
            eprintln!("cannot drop test schema {}: {e}", self.schema);
            return;
        }
        match done_rx.recv_timeout(CLEANUP_PATIENCE) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("cannot drop test schema {}: {e}", self.schema),
            Err(_) => eprintln!(
                "dropping test schema {} took longer than {CLEANUP_PATIENCE:?}; left behind",
                self.schema
            ),
        }
    }
}

/// A store in a fresh schema, dropped after the test.
pub async fn fresh_store() -> Guarded<PostgresStore, SchemaGuard> {
    let guard = SchemaGuard::new(&test_url());
    let store = guard.open().await;
    Guarded { store, guard }
}
