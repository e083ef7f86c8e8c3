//! Retention in a cluster (#17 point 6): one node deletes at a time. While another session
//! holds the schema's retention lock, `delete_ended_before` deletes nothing and says so with
//! `Ok(0)`; once it is released the next call deletes. Two nodes deleting a backlog at once
//! delete every run exactly once between them, without errors. Skipped without
//! `TETHER_TEST_POSTGRES` (failing under CI instead).

mod common;

use common::{test_url, SchemaGuard};
use serde_json::json;
use tether_core::event::EventBody;
use tether_store::{Store, WakeAt, WriteOp};

const CUTOFF: u64 = 1_000_000;

async fn ended_run(store: &dyn Store, run_id: &str) {
    let ops = vec![
        WriteOp::CreateRun {
            queue: tether_store::DEFAULT_QUEUE.into(),
            run_id: run_id.into(),
            workflow: "w".into(),
            input: json!({}),
            at_ms: 1,
            claim: None,
        },
        WriteOp::Append {
            run_id: run_id.into(),
            events: vec![EventBody::RunCompleted { output: json!(1) }],
            status: None,
            wake_at: WakeAt::Keep,
            fence: None,
            at_ms: 2,
        },
    ];
    let results = store.commit(ops).await.expect("commit");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test"
)]
async fn a_held_retention_lock_makes_other_nodes_skip_their_turn() {
    let url = test_url();
    let guard = SchemaGuard::new(&url);
    let store = guard.open().await;
    ended_run(&store, "r").await;

    let (mut client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("SET search_path TO {}", guard.schema))
        .await
        .expect("search_path");
    let tx = client.transaction().await.expect("begin");
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('tether_retention'), hashtext(current_schema()))",
        &[],
    )
    .await
    .expect("take the lock as another node would");
    assert_eq!(
        store
            .delete_ended_before(CUTOFF, 500)
            .await
            .expect("delete"),
        0,
        "another node holds the retention lock: skip this turn"
    );
    assert!(store.get_run("r").await.expect("get").is_some());
    tx.rollback().await.expect("release");
    assert_eq!(
        store
            .delete_ended_before(CUTOFF, 500)
            .await
            .expect("delete"),
        1
    );
    assert!(store.get_run("r").await.expect("get").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test"
)]
async fn two_nodes_delete_a_backlog_once_between_them() {
    let url = test_url();
    let guard = SchemaGuard::new(&url);
    let nodes = [guard.open().await, guard.open().await];
    for i in 0..60 {
        ended_run(&nodes[0], &format!("r{i}")).await;
    }
    let mut tasks = tokio::task::JoinSet::new();
    for node in nodes.clone() {
        tasks.spawn(async move {
            let mut deleted = 0;
            for _ in 0..200 {
                deleted += node.delete_ended_before(CUTOFF, 7).await.expect("delete");
                tokio::task::yield_now().await;
            }
            deleted
        });
    }
    let mut total = 0;
    while let Some(n) = tasks.join_next().await {
        total += n.expect("task");
    }
    assert_eq!(total, 60, "every ended run deleted exactly once");
    assert_eq!(
        nodes[1]
            .delete_ended_before(CUTOFF, 500)
            .await
            .expect("delete"),
        0
    );
}
