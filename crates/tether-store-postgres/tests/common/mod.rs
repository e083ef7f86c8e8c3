//! Helpers shared by the PostgreSQL tests: the server to test against (from
//! `TETHER_TEST_POSTGRES`), a fresh schema per test, and a guard that drops it afterwards.
#![allow(dead_code)]

use std::sync::mpsc;
use std::time::Duration;

use serde_json::json;
use tether_core::event::{EventBody, HOOK_KIND_TOKEN};
use tether_store::{OpOutcome, OpResult, Store, WakeAt, WriteOp};

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

// What the tests of several instances on one schema share (`postgres_only.rs`,
// `postgres_keys.rs`): ops, commits and reads.

/// How long anything here may take (the machine is small and shared).
pub const PATIENCE: Duration = Duration::from_secs(30);

pub fn create(run_id: &str) -> WriteOp {
    WriteOp::CreateRun {
        queue: tether_store::DEFAULT_QUEUE.into(),
        run_id: run_id.into(),
        workflow: "w".into(),
        input: json!({ "run": run_id }),
        at_ms: 1,
        claim: None,
    }
}

pub fn append(run_id: &str, events: Vec<EventBody>) -> WriteOp {
    WriteOp::Append {
        run_id: run_id.into(),
        events,
        status: None,
        wake_at: WakeAt::Keep,
        fence: None,
        at_ms: 2,
    }
}

pub fn hook_created(cmd: u32, token: &str) -> EventBody {
    EventBody::HookCreated {
        cmd,
        token: token.into(),
        kind: HOOK_KIND_TOKEN.into(),
        metadata: json!({}),
        definition: None,
        generated: false,
        expires_at_ms: None,
        reserve_ms: None,
    }
}

pub async fn commit(store: &dyn Store, ops: Vec<WriteOp>) -> Vec<OpResult> {
    let n = ops.len();
    match store.commit(ops).await {
        Ok(results) => {
            assert_eq!(results.len(), n);
            results
        }
        Err(e) => panic!("commit of {n} op(s) failed: {e}"),
    }
}

pub async fn commit_one(store: &dyn Store, op: WriteOp) -> OpResult {
    commit(store, vec![op]).await.remove(0)
}

pub fn appended_seqs(result: &OpResult) -> Vec<u64> {
    match result {
        Ok(OpOutcome::Appended { events, .. }) => events.iter().map(|e| e.seq).collect(),
        other => panic!("expected Appended, got {other:?}"),
    }
}

pub async fn journal_seqs(store: &dyn Store, run_id: &str) -> Vec<u64> {
    match store.load_journal(run_id, 0).await {
        Ok(events) => events.iter().map(|e| e.seq).collect(),
        Err(e) => panic!("load_journal({run_id}) failed: {e}"),
    }
}

/// Run a query returning one `BIGINT` on a connection of its own.
pub async fn query_i64(url: &str, sql: &str) -> i64 {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let driver = tokio::spawn(connection);
    let row = client.query_one(sql, &[]).await.expect(sql);
    let value: i64 = row.get(0);
    drop(client);
    let _ = driver.await;
    value
}
