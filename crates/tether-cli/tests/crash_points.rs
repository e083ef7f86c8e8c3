//! Crash points: the real `tether` binary, built with `--features crash-points`, aborts at a
//! named point of the write path (`TETHER_CRASH_POINT=name:n`), is restarted without it on
//! the same database (a SQLite file; and a PostgreSQL schema, for the `pg_` tests, which need
//! `TETHER_TEST_POSTGRES` like the cluster tests), and every promise is checked through the
//! API: each accepted payload
//! delivered once, in order; a step's result journaled once; a spawned hook thread run once;
//! a timer fired once.
//!
//! Run with `cargo test -p tether-cli --features crash-points --test crash_points` (CI does);
//! without the feature this file compiles to no test. The points are listed in
//! `tether_store::crash::CRASH_POINTS`; `all_points_are_exercised` checks this file covers
//! each one.
#![cfg(feature = "crash-points")]

mod common;
mod faults_support;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use common::*;
use faults_support::*;
use serde_json::json;
use tether_store::crash::{CRASH_POINTS, CRASH_POINT_VAR};
use tether_store::{RunFilter, Store};
use tether_store_postgres::PostgresStore;
use tether_store_sqlite::SqliteStore;

/// The points this file arms (checked against the list the code has).
const EXERCISED: [&str; 7] = [
    "writer.before_append",
    "store.mid_batch",
    "store.mid_spawn",
    "writer.after_append",
    "actor.before_apply",
    "step.before_journal",
    "timer.before_fire",
];

/// Streams (`collect` runs) fed in the payload scenarios, each by a sender of its own.
const STREAMS: usize = 4;
/// Payloads per stream.
const LAST: u64 = 12;

/// Where the server keeps its data: a SQLite file, or a PostgreSQL schema (one node, with a
/// fixed node id, so the restarted process takes its runs back at once).
enum Db {
    Sqlite {
        _dir: tempfile::TempDir,
        path: PathBuf,
    },
    Postgres(PgSchema),
}

impl Db {
    fn sqlite() -> Db {
        let (_dir, path) = temp_db();
        Db::Sqlite { _dir, path }
    }

    /// A fresh schema on the test server.
    fn postgres() -> Db {
        Db::Postgres(PgSchema::new(&postgres_url()))
    }

    /// Start `tether dev` on it at `port`, with `point:nth` armed when given.
    fn start(&self, port: u16, armed: Option<(&str, u64)>) -> Server {
        let addr = addr(port);
        let spec = armed.map(|(p, n)| format!("{p}:{n}"));
        let env: Vec<(&str, &str)> = spec
            .as_deref()
            .map(|s| vec![(CRASH_POINT_VAR, s)])
            .unwrap_or_default();
        match self {
            Db::Sqlite { path, .. } => Server::spawn_env(path, &["--addr", &addr], &env).ready(),
            Db::Postgres(schema) => {
                let extra = [
                    "--pg-schema",
                    &schema.name,
                    "--addr",
                    &addr,
                    "--node-id",
                    "crash-points",
                ];
                Server::spawn_env(&schema.url, &extra, &env).ready()
            }
        }
    }

    /// Open the database the aborted server left, as the next process will find it. Only to
    /// read it: a server may be running on it (a SQLite file takes one read-write store).
    async fn open(&self) -> Box<dyn Store> {
        match self {
            Db::Sqlite { path, .. } => Box::new(
                SqliteStore::open_read_only(path.to_str().expect("utf-8 path"))
                    .await
                    .expect("open the crashed server's database"),
            ),
            Db::Postgres(schema) => Box::new(
                PostgresStore::open_in_schema(&schema.url, &schema.name)
                    .await
                    .expect("open the crashed server's schema"),
            ),
        }
    }

    /// Payloads journaled over `streams`.
    async fn kept(&self, streams: &[Stream]) -> u64 {
        let store = self.open().await;
        let mut n = 0;
        for s in streams {
            let journal = store.load_journal(&s.run_id, 0).await.expect("journal");
            n += journal
                .iter()
                .filter(|e| e.body.kind() == "hook_received")
                .count() as u64;
        }
        n
    }

    /// The one run of `workflow`.
    async fn only_run(&self, workflow: &str) -> String {
        let filter = RunFilter {
            workflow: Some(workflow.to_string()),
            ..RunFilter::default()
        };
        let runs = self
            .open()
            .await
            .list_runs(&filter)
            .await
            .expect("list runs");
        assert_eq!(runs.len(), 1, "{runs:?}");
        runs[0].run_id.clone()
    }

    /// How many entries of `kind` the run's journal has.
    async fn count(&self, run_id: &str, kind: &str) -> usize {
        let journal = self
            .open()
            .await
            .load_journal(run_id, 0)
            .await
            .expect("journal");
        journal.iter().filter(|e| e.body.kind() == kind).count()
    }
}

/// Wait (off the async workers) for the armed server to abort.
fn aborted(server: &mut Server, point: &str) {
    tokio::task::block_in_place(|| assert_aborted(server, point));
}

/// Streams fed by concurrent senders that retry with their `Idempotency-Key` until answered;
/// the server aborts at `point` (its `nth` hit), comes back without it, and every stream ends
/// with exactly its payloads, in order.
async fn payloads_survive(db: Db, point: &str, nth: u64) {
    let port = free_port();
    let server = db.start(port, None);
    let streams = start_streams(&server.client, STREAMS).await;
    drop(server); // SIGKILL: the runs wait on their hooks.

    let mut armed = db.start(port, Some((point, nth)));
    let tally = Arc::new(Tally::default());
    let senders = tokio::spawn(send_streams(
        vec![armed.client.clone()],
        streams.clone(),
        (LAST, STREAMS),
        tally.clone(),
    ));
    aborted(&mut armed, point);
    let answered_at_crash = tally.answered();
    let kept_at_crash = db.kept(&streams).await;
    assert!(
        kept_at_crash >= answered_at_crash,
        "{point}: {answered_at_crash} payloads answered, only {kept_at_crash} kept"
    );

    let server = db.start(port, None);
    senders.await.expect("senders");
    for s in &streams {
        assert_stream(&server.client, &s.run_id, LAST).await;
    }
    eprintln!(
        "{point}:{nth}: aborted with {answered_at_crash} answered, {kept_at_crash} kept; \
         {} retries",
        tally.retries.load(Ordering::SeqCst)
    );
}

/// A step's body ran, its result is not journaled: after the restart the step runs again
/// (at-least-once) and its result is journaled once; the steps after it go on, in order.
async fn mid_step(db: Db) {
    const N: u64 = 20;
    let port = free_port();
    let mut armed = db.start(port, Some(("step.before_journal", 5)));
    let client = armed.client.clone();
    // Its answer may be cut by the abort: the run is looked up in the database.
    let starter = tokio::spawn(async move { client.start_run("steps", &json!({ "n": N })).await });
    aborted(&mut armed, "step.before_journal");
    let _ = starter.await;
    let run_id = db.only_run("steps").await;
    let before = db.count(&run_id, "step_completed").await;
    assert_eq!(before, 4, "four steps journaled before the fifth's abort");

    let server = db.start(port, None);
    let run = finished(&server.client, &run_id).await;
    assert_eq!(run.status, "completed", "{run:?}");
    assert_eq!(run.output, Some(json!({ "steps": N })));
    let events = server.client.events(&run_id).await.expect("events");
    let names: Vec<&str> = of_type(&events, "step_completed")
        .iter()
        .map(|e| e["name"].as_str().expect("step name"))
        .collect();
    let expected: Vec<String> = (0..N).map(|i| format!("step-{i}")).collect();
    assert_eq!(
        names, expected,
        "each step's result journaled once, in order"
    );
}

/// Inside the transaction that spawns a hook thread (its run row written, the spawn record
/// not): nothing of it is kept; after the restart the spawn happens once and the thread runs
/// once.
async fn mid_spawn(db: Db) {
    let port = free_port();
    let mut armed = db.start(port, Some(("store.mid_spawn", 1)));
    let client = armed.client.clone();
    let starter = tokio::spawn(async move {
        client
            .start_run("enrich", &json!({ "name": "ada", "wait": true }))
            .await
    });
    aborted(&mut armed, "store.mid_spawn");
    let _ = starter.await;
    let run_id = db.only_run("enrich").await;
    let threads = db
        .open()
        .await
        .list_threads(&run_id)
        .await
        .expect("threads");
    assert!(threads.is_empty(), "the spawn was rolled back: {threads:?}");

    let server = db.start(port, None);
    let c = &server.client;
    let hooks = hooks_of(c, &run_id).await;
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    c.resume_hook(&hooks[0].token, &json!({ "go": true }), Some("go"))
        .await
        .expect("resume");
    let run = finished(c, &run_id).await;
    assert_eq!(run.status, "completed", "{run:?}");
    let output = run.output.expect("output");
    assert_eq!(output["state"]["hook_runs"], json!(1), "{output}");
    assert_eq!(output["signal"], json!({ "greeting": "hello ada" }));
    let events = c.events(&run_id).await.expect("events");
    let spawns: Vec<_> = of_type(&events, "hook_spawned")
        .into_iter()
        .filter(|e| e["thread"] == "main")
        .collect();
    assert_eq!(spawns.len(), 1, "{events:?}");
    let hook_id = spawns[0]["hook_id"].as_str().expect("hook_id");
    let in_thread = |kind: &str| {
        events
            .iter()
            .filter(|e| e["thread"] == hook_id && e["type"] == kind)
            .count()
    };
    assert_eq!(in_thread("run_started"), 1, "{events:?}");
    assert_eq!(in_thread("run_completed"), 1, "{events:?}");
    let threads = db
        .open()
        .await
        .list_threads(&run_id)
        .await
        .expect("threads");
    assert_eq!(
        threads.len(),
        1,
        "one hook thread for one spawn: {threads:?}"
    );
}

/// A due timer picked to fire, its `TimerFired` not written: after the restart it fires once.
async fn mid_timer_fire(db: Db) {
    let port = free_port();
    let mut armed = db.start(port, Some(("timer.before_fire", 1)));
    let client = armed.client.clone();
    let starter = tokio::spawn(async move {
        client
            .start_run("timeout_approval", &json!({ "timeout_ms": 300 }))
            .await
    });
    aborted(&mut armed, "timer.before_fire");
    let _ = starter.await;
    let run_id = db.only_run("timeout_approval").await;
    assert_eq!(db.count(&run_id, "timer_fired").await, 0);
    timer_fired_once(&db, port, &run_id).await;
}

/// The timer's `TimerFired` committed, the run not yet woken by it: after the restart the run
/// takes the timeout branch, and the timer fired once.
async fn after_timer_fired(db: Db) {
    let port = free_port();
    let server = db.start(port, None);
    let run_id = server
        .client
        .start_run("timeout_approval", &json!({ "timeout_ms": 3000 }))
        .await
        .expect("start");
    let c = server.client.clone();
    poll("the timer to start", || async {
        let events = c.events(&run_id).await.expect("events");
        (!of_type(&events, "timer_started").is_empty()).then_some(())
    })
    .await;
    drop(server);
    assert_eq!(
        db.count(&run_id, "timer_fired").await,
        0,
        "the timer fired before the kill (this machine is too slow for the test)"
    );

    // The first entries this process hands to the live run are the `TimerFired` it wrote.
    let mut armed = db.start(port, Some(("actor.before_apply", 1)));
    let exit = tokio::task::block_in_place(|| armed.wait_exit_within(PATIENCE));
    if exit.is_none() {
        let run = db.open().await.get_run(&run_id).await;
        let journal = db.open().await.load_journal(&run_id, 0).await;
        panic!("tether did not abort; run: {run:?}; journal: {journal:?}");
    }
    aborted(&mut armed, "actor.before_apply");
    assert_eq!(db.count(&run_id, "timer_fired").await, 1);
    timer_fired_once(&db, port, &run_id).await;
}

/// Restart, and check the `timeout_approval` run timed out with one timer fired once.
async fn timer_fired_once(db: &Db, port: u16, run_id: &str) {
    let server = db.start(port, None);
    let run = finished(&server.client, run_id).await;
    assert_eq!(run.status, "completed", "{run:?}");
    assert_eq!(run.output, Some(json!({ "timed_out": true })));
    let events = server.client.events(run_id).await.expect("events");
    assert_eq!(of_type(&events, "timer_started").len(), 1, "{events:?}");
    assert_eq!(of_type(&events, "timer_fired").len(), 1, "{events:?}");
}

#[test]
fn all_points_are_exercised() {
    let mut listed = CRASH_POINTS.to_vec();
    let mut here = EXERCISED.to_vec();
    listed.sort_unstable();
    here.sort_unstable();
    assert_eq!(listed, here, "every crash point has a test here");
}

/// One test per scenario and backend.
macro_rules! scenarios {
    ($($sqlite:ident, $pg:ident => $body:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            ($body)(Db::sqlite()).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[cfg_attr(
            not(tether_postgres),
            ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
        )]
        async fn $pg() {
            ($body)(Db::postgres()).await;
        }
    )*};
}

scenarios! {
    crash_before_append, pg_crash_before_append =>
        |db: Db| payloads_survive(db, "writer.before_append", 8);
    crash_mid_group_commit, pg_crash_mid_group_commit =>
        |db: Db| payloads_survive(db, "store.mid_batch", 3);
    crash_after_append_before_ack, pg_crash_after_append_before_ack =>
        |db: Db| payloads_survive(db, "writer.after_append", 8);
    crash_after_ack_before_wake, pg_crash_after_ack_before_wake =>
        |db: Db| payloads_survive(db, "actor.before_apply", 15);
    crash_mid_step, pg_crash_mid_step => mid_step;
    crash_mid_spawn, pg_crash_mid_spawn => mid_spawn;
    crash_mid_timer_fire, pg_crash_mid_timer_fire => mid_timer_fire;
    crash_after_timer_fired_before_wake, pg_crash_after_timer_fired_before_wake =>
        after_timer_fired;
}
