//! A batch whose future is dropped half way (the engine shutting down, a caller's timeout)
//! must not hand its open transaction to the next batch on the same pooled connection: the
//! store's `BEGIN` and `COMMIT` go out in the batch's pipeline, so nothing ends the
//! transaction for it. Ignored without `TETHER_TEST_POSTGRES`, run (and failing) under CI.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use tether_core::event::EventBody;
use tether_store::Store;

/// A batch dropped while it waits for a row lock leaves no transaction open behind it: its
/// connection is closed (the server rolls back and lets the lock go), and the store's next
/// batch, on a pool of one connection, commits on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
)]
async fn a_dropped_batch_leaves_no_open_transaction() {
    let url = test_url();
    let guard = SchemaGuard::new(&url);
    let store = guard.open_with_pool(1).await;
    appended_seqs(&commit_one(&store, create("r1")).await);

    // Another session holds r1's row, so the store's next batch waits inside its transaction.
    let (holder, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let driver = tokio::spawn(connection);
    let lock = format!(
        "BEGIN; SELECT 1 FROM {}.runs WHERE id = 'r1' FOR UPDATE",
        guard.schema
    );
    holder.batch_execute(&lock).await.expect("lock r1");

    let step = EventBody::StepCompleted {
        cmd: 1,
        name: "s".into(),
        output: json!(1),
        attempts: 1,
    };
    let blocked = store.commit(vec![append("r1", vec![step])]);
    let waited = tokio::time::timeout(Duration::from_millis(300), blocked).await;
    assert!(waited.is_err(), "the batch should wait for the row lock");
    holder.batch_execute("COMMIT").await.expect("unlock r1");

    // Had the dropped batch's connection gone back to the pool, it would sit idle in its
    // transaction, holding r1's row: a lock taken with NOWAIT would fail for as long.
    let nowait = format!(
        "SELECT 1 FROM {}.runs WHERE id = 'r1' FOR UPDATE NOWAIT",
        guard.schema
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        holder.batch_execute("BEGIN").await.expect("begin");
        let taken = holder.batch_execute(&nowait).await;
        holder.batch_execute("ROLLBACK").await.expect("rollback");
        if taken.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "r1's row is still locked: the dropped batch's transaction stayed open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The next batch runs on a fresh connection and is committed, not folded into the
    // dropped one: another session sees it.
    let step = EventBody::StepCompleted {
        cmd: 1,
        name: "s".into(),
        output: json!(2),
        attempts: 1,
    };
    assert_eq!(
        appended_seqs(&commit_one(&store, append("r1", vec![step])).await),
        vec![2]
    );
    let seen = query_i64(
        &url,
        &format!(
            "SELECT COUNT(*) FROM {}.events WHERE run_id = 'r1'",
            guard.schema
        ),
    )
    .await;
    assert_eq!(seen, 2, "the creation and the one step the store committed");
    drop(holder);
    let _ = driver.await;
}
