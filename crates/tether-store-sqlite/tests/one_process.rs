//! One process per database file: a read-write store holds an OS lock on `<file>.lock`; a
//! second read-write open is refused while it lives (clones included), allowed once it is
//! dropped; a read-only open (`tether replay`) needs no lock. The cross-process side (a second
//! `tether dev`, `kill -9` leaving no stale lock) is tested with the real binary in
//! `crates/tether-cli/tests/one_process_per_file.rs`.

use std::path::PathBuf;

use serde_json::json;
use tether_store::{Store, StoreError, WriteOp};
use tether_store_sqlite::SqliteStore;

fn tmp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let path = dir.path().join("tether.db");
    (dir, path)
}

fn create(run_id: &str) -> WriteOp {
    WriteOp::CreateRun {
        queue: tether_store::DEFAULT_QUEUE.into(),
        run_id: run_id.into(),
        workflow: "w".into(),
        input: json!(null),
        at_ms: 1,
        claim: None,
    }
}

fn refused(result: Result<SqliteStore, StoreError>, path: &std::path::Path) -> String {
    match result {
        Err(StoreError::Config(msg)) => {
            assert!(
                msg.contains(&path.display().to_string()),
                "names the file: {msg}"
            );
            assert!(
                msg.contains(&format!("pid {}", std::process::id())),
                "names the holder: {msg}"
            );
            assert!(msg.contains("one process per SQLite file"), "{msg}");
            assert!(msg.contains("PostgreSQL"), "says what to do: {msg}");
            msg.to_string()
        }
        other => panic!("expected StoreError::Config, got {other:?}"),
    }
}

#[tokio::test]
async fn a_second_open_is_refused_while_the_first_store_lives_and_allowed_after_drop() {
    let (_dir, path) = tmp();
    let location = format!("sqlite://{}", path.display());
    let first = SqliteStore::open(&location).await.expect("first open");
    first.commit(vec![create("r1")]).await.expect("commit");

    // The same file under another spelling (a plain path) is the same lock.
    refused(SqliteStore::open(&location).await, &path);
    refused(SqliteStore::open(&path.display().to_string()).await, &path);
    refused(
        SqliteStore::open_blocking(&path.display().to_string()),
        &path,
    );

    // The lock file says who holds it.
    let lock = std::fs::read_to_string(format!("{}.lock", path.display())).expect("lock file");
    assert!(
        lock.contains(&format!("pid={}", std::process::id())),
        "{lock}"
    );
    assert!(lock.contains("host="), "{lock}");

    // A clone keeps the lock: it is released with the last one.
    let clone = first.clone();
    drop(first);
    refused(SqliteStore::open(&location).await, &path);
    drop(clone);

    let second = SqliteStore::open(&location).await.expect("open after drop");
    let run = second.get_run("r1").await.expect("read");
    assert!(run.is_some(), "the first store's commit is there");
    second.commit(vec![create("r2")]).await.expect("commit");
}

#[tokio::test]
async fn a_read_only_open_works_while_the_file_is_locked_and_takes_no_lock() {
    let (_dir, path) = tmp();
    let location = path.display().to_string();
    let writer = SqliteStore::open(&location).await.expect("open");
    writer.commit(vec![create("r1")]).await.expect("commit");

    let reader = SqliteStore::open_read_only(&location)
        .await
        .expect("read-only open while locked");
    assert!(reader.get_run("r1").await.expect("read").is_some());
    let another = SqliteStore::open_read_only(&location)
        .await
        .expect("a second read-only open");

    // The readers hold no lock: with the writer gone, a read-write open succeeds while they
    // are still open.
    drop(writer);
    let again = SqliteStore::open(&location)
        .await
        .expect("read-write open beside read-only stores");
    again.commit(vec![create("r2")]).await.expect("commit");
    assert!(reader.get_run("r2").await.expect("read").is_some());
    drop(another);
}

#[tokio::test]
async fn a_refused_open_changes_nothing() {
    let (dir, path) = tmp();
    let location = path.display().to_string();
    let first = SqliteStore::open(&location).await.expect("open");
    let lock_before = std::fs::read(format!("{location}.lock")).expect("lock file");
    let _ = SqliteStore::open(&location).await.expect_err("refused");
    // The holder's record is intact, and the first store still writes.
    assert_eq!(
        std::fs::read(format!("{location}.lock")).expect("lock file"),
        lock_before
    );
    first.commit(vec![create("r1")]).await.expect("commit");
    drop(first);
    drop(dir);
}
