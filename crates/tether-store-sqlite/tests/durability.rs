//! SQLite-specific behaviour outside the shared suite: data survives closing and reopening the
//! file, migrations are idempotent, failed batches leave nothing, concurrent commits stay dense,
//! and bad files or schemas are refused clearly.

use std::path::{Path, PathBuf};

use serde_json::json;
use tempfile::TempDir;
use tether_core::event::{EventBody, RunStatus, HOOK_KIND_TOKEN};
use tether_store::{OpOutcome, Store, StoreError, WakeAt, WriteOp};
use tether_store_sqlite::SqliteStore;

fn tmp() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let path = dir.path().join("tether.db");
    (dir, path)
}

fn url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

fn create(run_id: &str, at_ms: u64) -> WriteOp {
    WriteOp::CreateRun {
        queue: tether_store::DEFAULT_QUEUE.into(),
        run_id: run_id.into(),
        workflow: "w".into(),
        input: json!({ "run": run_id }),
        at_ms,
        claim: None,
    }
}

fn append(run_id: &str, events: Vec<EventBody>, at_ms: u64) -> WriteOp {
    WriteOp::Append {
        run_id: run_id.into(),
        events,
        status: Some(RunStatus::Suspended),
        wake_at: WakeAt::Set(Some(at_ms + 1_000)),
        fence: None,
        at_ms,
    }
}

fn migration_rows(path: &Path) -> Vec<(i64, i64)> {
    let conn = rusqlite::Connection::open(path).expect("open with rusqlite");
    let mut stmt = conn
        .prepare("SELECT version, applied_at FROM schema_migrations ORDER BY version")
        .expect("prepare");
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<Vec<_>, _>>()
        .expect("rows");
    rows
}

#[tokio::test]
async fn committed_data_survives_reopening_and_migrations_run_once() {
    let (_dir, path) = tmp();
    let store = SqliteStore::open(&url(&path)).await.expect("open");
    assert_eq!(store.backend_name(), "sqlite");
    assert_eq!(store.path(), path.as_path());
    let hook = EventBody::HookCreated {
        cmd: 1,
        token: "tok".into(),
        kind: HOOK_KIND_TOKEN.into(),
        metadata: json!({ "k": "v" }),
        definition: None,
        generated: true,
        expires_at_ms: None,
        reserve_ms: None,
    };
    let results = store
        .commit(vec![create("r", 10), append("r", vec![hook], 11)])
        .await
        .expect("commit");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let run = store.get_run("r").await.expect("get_run");
    let journal = store.load_journal("r", 0).await.expect("journal");
    let hooks = store.list_hooks("r").await.expect("hooks");
    let migrations = migration_rows(&path);
    assert_eq!(
        migrations.len() as i64,
        SqliteStore::schema_version(),
        "each migration recorded once: {migrations:?}"
    );
    assert_eq!(
        migrations.last().map(|m| m.0),
        Some(SqliteStore::schema_version())
    );
    drop(store);

    for location in [
        url(&path),
        format!("sqlite:{}", path.display()),
        path.display().to_string(),
    ] {
        let store = SqliteStore::open(&location).await.expect("reopen");
        assert_eq!(
            store.get_run("r").await.expect("get_run"),
            run,
            "{location}"
        );
        assert_eq!(store.load_journal("r", 0).await.expect("journal"), journal);
        assert_eq!(store.list_hooks("r").await.expect("hooks"), hooks);
        assert_eq!(
            store.get_hook("tok").await.expect("hook").as_ref(),
            hooks.first()
        );
    }
    assert_eq!(journal.len(), 2);
    assert_eq!(hooks.len(), 1);

    // The journal continues where it stopped.
    let store = SqliteStore::open(&url(&path)).await.expect("reopen");
    let more = store
        .commit(vec![WriteOp::RequestCancel {
            run_id: "r".into(),
            reason: None,
            at_ms: 12,
        }])
        .await
        .expect("commit after reopen");
    match &more[0] {
        Ok(OpOutcome::Appended { events, .. }) => {
            assert_eq!(events[0].seq, 3, "seq continues after reopening")
        }
        other => panic!("unexpected {other:?}"),
    }
    drop(store);
    let store = SqliteStore::open(&url(&path)).await.expect("reopen");
    assert_eq!(store.load_journal("r", 2).await.expect("journal").len(), 1);
    assert_eq!(
        migration_rows(&path),
        migrations,
        "reopening must not re-apply or re-record migrations"
    );
}

/// Idempotency keys remember the SHA-256 of their payload (64 hex digits); a key recorded
/// before the schema stored digests (NULL, as migration 0004 leaves old rows) matches any
/// payload, as it did before.
#[tokio::test]
async fn idempotency_keys_store_a_digest_and_old_keys_match_any_payload() {
    let (_dir, path) = tmp();
    let store = SqliteStore::open(&url(&path)).await.expect("open");
    let hook = EventBody::HookCreated {
        cmd: 1,
        token: "tok".into(),
        kind: HOOK_KIND_TOKEN.into(),
        metadata: json!({}),
        definition: None,
        generated: false,
        expires_at_ms: None,
        reserve_ms: None,
    };
    let resume = |key: &str, payload| WriteOp::Resume {
        token: "tok".into(),
        payload,
        idempotency_key: Some(key.into()),
        expect: None,
        claim: None,
        at_ms: 12,
    };
    let results = store
        .commit(vec![
            create("r", 10),
            append("r", vec![hook], 11),
            resume("new", json!({"b": 1, "a": 2})),
        ])
        .await
        .expect("commit");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let conn = rusqlite::Connection::open(&path).expect("open with rusqlite");
    let digest: Option<String> = conn
        .query_row(
            "SELECT payload_digest FROM idempotency WHERE token = 'tok' AND key = 'new'",
            [],
            |r| r.get(0),
        )
        .expect("read the digest");
    assert_eq!(
        digest.as_deref(),
        Some(tether_store::payload_digest(&json!({"a": 2, "b": 1})).as_str())
    );
    assert_eq!(digest.map(|d| d.len()), Some(64));
    conn.execute(
        "INSERT INTO idempotency (token, key, run_id, created_at) VALUES ('tok', 'old', 'r', 1)",
        [],
    )
    .expect("insert a key without a digest");
    drop(conn);
    for payload in [json!(1), json!("anything")] {
        let answer = store
            .commit(vec![resume("old", payload)])
            .await
            .expect("commit")
            .remove(0);
        assert_eq!(
            answer,
            Ok(OpOutcome::Resumed {
                run_id: "r".into(),
                event: None,
                lease_holder: None,
                claimed: None,
            }),
            "a key without a digest gets the first answer"
        );
    }
}

#[tokio::test]
async fn opening_uses_wal_and_creates_parent_directories() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested").join("deeper").join("t.db");
    let store = SqliteStore::open(&path.display().to_string())
        .await
        .expect("open");
    store.commit(vec![create("r", 1)]).await.expect("commit");
    let conn = rusqlite::Connection::open(&path).expect("open with rusqlite");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("journal_mode");
    assert_eq!(mode.to_lowercase(), "wal");
}

#[tokio::test]
async fn a_newer_schema_is_refused_with_a_config_error() {
    let (_dir, path) = tmp();
    drop(SqliteStore::open(&url(&path)).await.expect("open"));
    let conn = rusqlite::Connection::open(&path).expect("open with rusqlite");
    conn.execute(
        "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, 0)",
        [SqliteStore::schema_version() + 41],
    )
    .expect("insert a future version");
    drop(conn);
    match SqliteStore::open(&url(&path)).await {
        Err(StoreError::Config(msg)) => {
            let future = (SqliteStore::schema_version() + 41).to_string();
            assert!(msg.contains(&future), "message names the version: {msg}");
        }
        other => panic!("expected StoreError::Config, got {other:?}"),
    }
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused() {
    let (_dir, path) = tmp();
    std::fs::write(&path, vec![0x5a_u8; 8192]).expect("write garbage");
    match SqliteStore::open(&url(&path)).await {
        Err(StoreError::Corrupt(_)) => {}
        other => panic!("expected StoreError::Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_locations_are_config_errors() {
    for location in ["", "sqlite::memory:", ":memory:", "sqlite://x.db?mode=ro"] {
        match SqliteStore::open(location).await {
            Err(StoreError::Config(_)) => {}
            other => panic!("{location:?}: expected StoreError::Config, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_failing_batch_keeps_nothing_and_the_store_stays_usable() {
    let (_dir, path) = tmp();
    let store = SqliteStore::open(&url(&path)).await.expect("open");
    store
        .commit(vec![create("before", 1)])
        .await
        .expect("commit");
    // at_ms beyond SQLite's INTEGER range makes the third op fail in the database.
    let result = store
        .commit(vec![
            create("a", 2),
            append("before", vec![EventBody::TimerFired { cmd: 1 }], 3),
            create("b", u64::MAX),
        ])
        .await;
    match result {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("expected StoreError::Unavailable, got {other:?}"),
    }
    assert_eq!(
        store.get_run("a").await.expect("get_run"),
        None,
        "rolled back"
    );
    let before = store
        .get_run("before")
        .await
        .expect("get_run")
        .expect("exists");
    assert_eq!(before.last_seq, 1, "the append was rolled back too");
    assert_eq!(before.status, RunStatus::Pending);
    assert_eq!(
        store
            .load_journal("before", 0)
            .await
            .expect("journal")
            .len(),
        1
    );

    let results = store.commit(vec![create("a", 4)]).await.expect("commit");
    assert!(results[0].is_ok(), "the store works after a failed batch");
    assert!(store.get_run("a").await.expect("get_run").is_some());
}

#[tokio::test]
async fn damaged_stored_json_is_reported_as_corrupt() {
    let (_dir, path) = tmp();
    let store = SqliteStore::open(&url(&path)).await.expect("open");
    store.commit(vec![create("r", 1)]).await.expect("commit");
    let conn = rusqlite::Connection::open(&path).expect("open with rusqlite");
    conn.execute("UPDATE runs SET input = '{not json' WHERE id = 'r'", [])
        .expect("damage input");
    conn.execute(
        "UPDATE events SET body = '{\"type\":\"nope\"}' WHERE run_id = 'r'",
        [],
    )
    .expect("damage journal");
    drop(conn);
    assert!(matches!(
        store.get_run("r").await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        store.load_journal("r", 0).await,
        Err(StoreError::Corrupt(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commits_keep_every_journal_dense() {
    let (_dir, path) = tmp();
    let store = SqliteStore::open(&url(&path)).await.expect("open");
    store
        .commit(vec![create("shared", 1)])
        .await
        .expect("commit");
    let tasks: Vec<_> = (0..8u32)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..20u32 {
                    let op = WriteOp::Append {
                        run_id: "shared".into(),
                        events: vec![EventBody::Random {
                            cmd: t * 100 + i,
                            value: u64::from(i),
                        }],
                        status: Some(RunStatus::Running),
                        wake_at: WakeAt::Keep,
                        fence: None,
                        at_ms: 2,
                    };
                    let results = store.commit(vec![op]).await.expect("commit");
                    assert!(results[0].is_ok(), "{results:?}");
                    // Reads run alongside the writes.
                    let run = store
                        .get_run("shared")
                        .await
                        .expect("get_run")
                        .expect("run");
                    assert!(run.last_seq >= 2);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    let journal = store.load_journal("shared", 0).await.expect("journal");
    let seqs: Vec<u64> = journal.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=161).collect::<Vec<u64>>());
    let run = store
        .get_run("shared")
        .await
        .expect("get_run")
        .expect("run");
    assert_eq!(run.last_seq, 161);
}

#[test]
fn open_blocking_works_without_a_runtime() {
    let (_dir, path) = tmp();
    let store = SqliteStore::open_blocking(&path.display().to_string()).expect("open");
    assert_eq!(store.path(), path.as_path());
    let _ = format!("{store:?}");
}
