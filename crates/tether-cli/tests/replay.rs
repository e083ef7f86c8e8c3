//! `tether replay RUN_ID`: a stored run checked against the current code, without a write.
//!
//! Runs are journaled by an embedded engine on a SQLite file; then the real binary (or the
//! library function behind it, `tether_engine::replay::check_run`, with another registry)
//! replays them. The database file is byte-identical afterwards.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{temp_db, tether};
use serde_json::{json, Value};
use tether_core::{Ctx, HookOptions, Registry, ReplayError, WorkflowError};
use tether_engine::replay::{check_run, Verdict};
use tether_engine::{Engine, EngineConfig};
use tether_store::Store;
use tether_store_sqlite::SqliteStore;

/// v1 of a test workflow: a step, then a hook.
async fn order_v1(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let n: u32 = ctx.step("charge", (), |()| async { Ok(7) }).await?;
    let hook = ctx
        .create_hook::<Value>(HookOptions::new().token("ship:1"))
        .await?;
    Ok(json!({ "n": n, "shipped": hook.await? }))
}

/// v2: the step was renamed.
async fn order_v2(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let n: u32 = ctx.step("charge_card", (), |()| async { Ok(7) }).await?;
    let hook = ctx
        .create_hook::<Value>(HookOptions::new().token("ship:1"))
        .await?;
    Ok(json!({ "n": n, "shipped": hook.await? }))
}

fn registry(extra: impl FnOnce(&mut Registry)) -> Registry {
    let mut r = Registry::new();
    tether_examples::register(&mut r);
    extra(&mut r);
    r
}

/// Start `workflow` in an embedded engine on `db`, wait until it holds a hook, stop the engine.
async fn journal_a_run(db: &Path, registry: Registry, workflow: &str, input: Value) -> String {
    let store = SqliteStore::open(&db.display().to_string())
        .await
        .expect("open");
    let store = Arc::new(store);
    let engine = Engine::start(store.clone(), registry, EngineConfig::default());
    let run = engine.start_run(workflow, input).await.expect("start");
    for _ in 0..3_000 {
        if !engine.hooks(&run).await.expect("hooks").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!engine.hooks(&run).await.expect("hooks").is_empty());
    engine.shutdown().await;
    drop(engine);
    // The last handle on the store closes its connections, and SQLite then folds the WAL into
    // the file: wait until every task of the engine has let go, so that happens here and not
    // while a test compares the file's bytes.
    for _ in 0..1_000 {
        if Arc::strong_count(&store) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        Arc::strong_count(&store),
        1,
        "the engine still holds the store"
    );
    drop(store);
    run
}

/// The database file and its WAL, byte for byte (a missing file reads as empty).
fn bytes_of(db: &Path) -> (Vec<u8>, Vec<u8>) {
    let wal = db.with_extension("db-wal");
    (
        std::fs::read(db).expect("db file"),
        std::fs::read(wal).unwrap_or_default(),
    )
}

/// `tether replay RUN --db DB`: exit code, stdout, stderr.
fn replay_cli(db: &Path, run: &str) -> (i32, String, String) {
    let out = tether()
        .args(["replay", run, "--db"])
        .arg(format!("sqlite://{}", db.display()))
        .output()
        .expect("run tether replay");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn an_intact_run_replays_ok_and_nothing_is_written() {
    let (_dir, db) = temp_db();
    let run = journal_a_run(
        &db,
        registry(|_| {}),
        "approval",
        json!({"order_id": "o-1"}),
    )
    .await;
    let before = bytes_of(&db);
    let (code, stdout, stderr) = replay_cli(&db, &run);
    assert_eq!(code, 0, "stdout {stdout} stderr {stderr}");
    assert!(
        stdout.starts_with("ok: 2 events replayed, run is suspended, waiting on hook "),
        "{stdout}"
    );
    // The token is a credential: only a short prefix is shown.
    assert!(stdout.trim_end().ends_with('…'), "{stdout}");
    assert_eq!(bytes_of(&db), before, "the database changed");
}

#[tokio::test]
async fn changed_code_is_reported_with_the_position_and_the_run_is_untouched() {
    let (_dir, db) = temp_db();
    let run = journal_a_run(
        &db,
        registry(|r| {
            r.workflow("order", order_v1);
        }),
        "order",
        Value::Null,
    )
    .await;
    let before = bytes_of(&db);
    let store = SqliteStore::open(&db.display().to_string())
        .await
        .expect("open");
    let journal_before = store.load_journal(&run, 0).await.expect("journal");

    // The same code: reproduced.
    let v1 = registry(|r| {
        r.workflow("order", order_v1);
    });
    let ok = check_run(&store, &v1, &run).await.expect("check");
    assert!(ok.is_ok(), "{ok}");
    assert_eq!(ok.entries, 3);

    // The changed code: the error names the command, the journal entry, both sides.
    let v2 = registry(|r| {
        r.workflow("order", order_v2);
    });
    let check = check_run(&store, &v2, &run).await.expect("check");
    assert!(!check.is_ok());
    assert_eq!(
        check.verdict,
        Verdict::Diverged(ReplayError::Nondeterminism {
            position: 1,
            seq: 2,
            recorded: "step \"charge\"".into(),
            issued: "step \"charge_card\"".into(),
        })
    );
    let text = check.to_string();
    assert!(
        text.contains("non-determinism at command #1 (journal entry 2)")
            && text.contains("deploy code that issues the same commands"),
        "{text}"
    );
    assert_eq!(
        store.load_journal(&run, 0).await.expect("journal"),
        journal_before
    );
    drop(store);

    // The binary does not know `order` at all: it says so, exit code 1.
    let (code, _, stderr) = replay_cli(&db, &run);
    assert_eq!(code, 1);
    assert!(stderr.contains("workflow \"order\""), "{stderr}");
    assert_eq!(bytes_of(&db), before, "the database changed");
}

#[tokio::test]
async fn a_doctored_journal_fails_with_the_position() {
    let (_dir, db) = temp_db();
    let run = journal_a_run(
        &db,
        registry(|_| {}),
        "approval",
        json!({"order_id": "o-1"}),
    )
    .await;
    // The journal now says the hook's token was chosen by the code, not generated.
    let conn = rusqlite::Connection::open(&db).expect("open");
    let changed = conn
        .execute(
            "UPDATE events SET body = replace(body, '\"generated\":true', '\"generated\":false') \
             WHERE run_id = ?1 AND seq = 2",
            [&run],
        )
        .expect("doctor");
    assert_eq!(changed, 1);
    drop(conn);
    let before = bytes_of(&db);

    let (code, stdout, stderr) = replay_cli(&db, &run);
    assert_eq!(code, 1, "stdout {stdout}");
    assert!(
        stderr.contains("non-determinism at command #1 (journal entry 2): the journal recorded a hook with token")
            && stderr.contains("but the code now issues a hook with a generated token"),
        "{stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(bytes_of(&db), before, "the database changed");
}

#[tokio::test]
async fn unknown_runs_and_missing_files_are_errors_without_side_effects() {
    let (_dir, db) = temp_db();
    journal_a_run(
        &db,
        registry(|_| {}),
        "approval",
        json!({"order_id": "o-1"}),
    )
    .await;
    let (code, _, stderr) = replay_cli(&db, "no-such-run");
    assert_eq!(code, 1);
    assert!(stderr.contains("run not found: no-such-run"), "{stderr}");

    let missing = db.with_file_name("missing.db");
    let (code, _, stderr) = replay_cli(&missing, "x");
    assert_eq!(code, 1);
    assert!(stderr.contains("no database file at"), "{stderr}");
    assert!(!missing.exists(), "a database file was created");
}

/// `replay` only reads: on PostgreSQL a mistyped schema is reported, never created, and a
/// real one is checked run by run with `--all`.
#[tokio::test]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
)]
async fn replay_on_postgres_never_creates_or_migrates() {
    let url = common::postgres_url();
    let schema = common::PgSchema::new(&url);
    let out = tether()
        .args(["replay", "--all", "--db", &url, "--pg-schema", &schema.name])
        .output()
        .expect("run tether replay");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("holds no Tether tables"), "{stderr}");
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let found = client
        .query(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = $1",
            &[&schema.name],
        )
        .await
        .expect("query");
    assert!(found.is_empty(), "replay created schema {}", schema.name);

    // A node makes the schema and a waiting run; replay --all then reads it.
    let node = schema.node(&[]);
    let run = node
        .client
        .start_run("slack_bot", &json!({ "channel": "C-replay" }))
        .await
        .expect("start");
    drop(node);
    let out = tether()
        .args(["replay", "--all", "--db", &url, "--pg-schema", &schema.name])
        .output()
        .expect("run tether replay --all");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&run), "{stdout}");
    assert!(
        stdout.contains("1 unfinished run checked: 1 replay"),
        "{stdout}"
    );
}
