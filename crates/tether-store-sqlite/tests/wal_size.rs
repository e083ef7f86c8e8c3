//! The WAL file does not keep its high-water mark: a reader that holds a snapshot keeps the
//! checkpoint from restarting the WAL, so it grows past one checkpoint's worth; once the
//! reader is gone, the next restart cuts it back (`PRAGMA journal_size_limit` on the writer
//! connection). Without the limit SQLite reuses the file at its largest size for ever — what
//! the 20-minute soak saw (docs/guarantees.md, "The soak").

use std::path::Path;

use serde_json::json;
use tether_store::{Store, WriteOp};
use tether_store_sqlite::SqliteStore;

/// The limit the store sets (`WAL_SIZE_LIMIT` in `src/conn.rs`).
const LIMIT: u64 = 4 * 1024 * 1024;

fn wal_len(db: &Path) -> u64 {
    let mut p = db.as_os_str().to_owned();
    p.push("-wal");
    std::fs::metadata(p).map_or(0, |m| m.len())
}

fn create(run_id: &str, input_bytes: usize) -> WriteOp {
    WriteOp::CreateRun {
        run_id: run_id.into(),
        workflow: "w".into(),
        input: json!({ "pad": "x".repeat(input_bytes) }),
        at_ms: 1,
        claim: None,
        queue: tether_store::DEFAULT_QUEUE.into(),
    }
}

#[tokio::test]
async fn a_wal_stretched_by_a_reader_is_cut_back_after_the_next_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db");
    let store = SqliteStore::open(&db.display().to_string())
        .await
        .expect("open");
    store
        .commit(vec![create("first", 10)])
        .await
        .expect("commit");

    // A reader in the middle of a read: nothing past its snapshot can be checkpointed, so the
    // WAL cannot start over and grows with every commit.
    let reader =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open a reader");
    reader.execute_batch("BEGIN").expect("begin");
    let n: i64 = reader
        .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
        .expect("read");
    assert_eq!(n, 1);
    let mut i = 0;
    while wal_len(&db) < LIMIT * 3 / 2 {
        i += 1;
        assert!(i < 2_000, "the WAL did not grow: {} bytes", wal_len(&db));
        store
            .commit(vec![create(&format!("big-{i}"), 20_000)])
            .await
            .expect("commit");
    }
    let stretched = wal_len(&db);

    // The reader goes; a few commits later the WAL has been checkpointed, restarted and cut
    // back to the limit.
    reader.execute_batch("COMMIT").expect("end the read");
    drop(reader);
    for j in 0..20 {
        store
            .commit(vec![create(&format!("small-{j}"), 10)])
            .await
            .expect("commit");
    }
    let after = wal_len(&db);
    println!("WAL stretched to {stretched} bytes by a reader, {after} bytes after it left");
    assert!(
        after <= LIMIT,
        "the WAL kept {after} bytes (stretched to {stretched}), more than the limit {LIMIT}"
    );
}
