//! Differential property test: the same random sequence of batches of write ops, applied to a
//! fresh SQLite store (a temporary file) and a fresh PostgreSQL schema, gives the same result
//! for every op and leaves the same runs, journals, hooks, state, threads and counts after
//! every batch.
//!
//! The ops draw from a small universe of run ids, tokens, signal ids, nodes and keys
//! ([`ops`]), so that collisions and refusals (taken ids and tokens, finished runs, stale
//! fences, reused idempotency keys) happen often. `PROPTEST_CASES` sets the number of cases
//! (default [`DEFAULT_CASES`]); a failure is shrunk to a minimal sequence.
//!
//! Needs `TETHER_TEST_POSTGRES`; without it the test is ignored, except under CI where it
//! fails (the rule: `tether-test-env`).

#[path = "../common/mod.rs"]
mod common;
mod ops;
mod snapshot;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tempfile::TempDir;
use tether_store::{Store, WriteOp};
use tether_store_sqlite::SqliteStore;

use common::SchemaGuard;

/// Cases run when `PROPTEST_CASES` is not set: each opens two fresh stores, so this keeps the
/// test to seconds.
const DEFAULT_CASES: u32 = 24;

/// The number of cases: `PROPTEST_CASES`, else [`DEFAULT_CASES`].
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

/// A fresh SQLite store on a file in a temporary directory (removed when dropped).
async fn fresh_sqlite() -> (SqliteStore, TempDir) {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("tether.db").display());
    let store = SqliteStore::open(&url)
        .await
        .expect("open a fresh SQLite store");
    (store, dir)
}

/// Apply `batches` to both backends, comparing each batch's results and then everything
/// readable; the first difference fails the case, naming the batch.
async fn same_on_both(batches: &[Vec<WriteOp>]) -> Result<(), TestCaseError> {
    let (sqlite, _dir) = fresh_sqlite().await;
    let schema = SchemaGuard::new(&common::test_url());
    let postgres = schema.open_with_pool(1).await;
    for (i, batch) in batches.iter().enumerate() {
        let left = sqlite.commit(batch.clone()).await;
        let right = postgres.commit(batch.clone()).await;
        prop_assert_eq!(
            &left,
            &right,
            "batch {} gave different results (left: SQLite, right: PostgreSQL): {:#?}",
            i,
            batch
        );
        let left = snapshot::take(&sqlite).await;
        let right = snapshot::take(&postgres).await;
        snapshot::assert_same(&left, &right, i)?;
    }
    drop(postgres);
    Ok(())
}

#[test]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
)]
fn sqlite_and_postgres_agree_on_random_batches() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a tokio runtime");
    let config = Config {
        cases: cases(),
        // A failing case is shrunk; every shrink step opens two stores, so bound it.
        max_shrink_iters: 2_000,
        // A divergence found becomes a deterministic conformance case, not a saved seed.
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&ops::batches(), |batches| {
        runtime.block_on(same_on_both(&batches))
    });
    if let Err(e) = result {
        panic!("SQLite and PostgreSQL disagree: {e}");
    }
}
