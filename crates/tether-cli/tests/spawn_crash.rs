//! Exactly once under SIGKILL: a kill -9 between a hook thread's spawn and anything after it
//! never yields two hook threads for one spawn. The real binary runs `enrich` (which
//! `exec_hook`s `enrich_hook`, then waits on a token hook), is killed at varying short delays
//! after the start request returns (before or after the spawn commit, while the hook thread
//! runs), and is restarted on the same SQLite file; the run must then finish with the hook
//! function having run once, in exactly one thread.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tether_store::Store;
use tether_store_sqlite::SqliteStore;

/// Kill delays after the start request returned, in ms (one run each).
const DELAYS_MS: [u64; 8] = [0, 1, 2, 3, 4, 6, 9, 15];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_after_a_spawn_never_yields_two_hook_threads() {
    let (_dir, db) = temp_db();
    let mut server = Server::start(&db);
    for (k, delay_ms) in DELAYS_MS.into_iter().enumerate() {
        let name = format!("n{k}");
        let run_id = server
            .client
            .start_run("enrich", &json!({ "name": name, "wait": true }))
            .await
            .unwrap_or_else(|e| panic!("start run {k}: {e:?}"));
        if delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        }
        server.kill();
        let seen = committed_at_kill(&db, &run_id).await;
        eprintln!("run {k}: killed {delay_ms} ms after the start returned; committed: {seen}");

        // Restart on the same file: the run (and its thread) carry on.
        server = Server::start(&db);
        let c = &server.client;
        let hooks = hooks_of(c, &run_id).await;
        assert_eq!(hooks.len(), 1, "run {k}: {hooks:?}");
        c.resume_hook(&hooks[0].token, &json!({ "done": k }), None)
            .await
            .unwrap_or_else(|e| panic!("resume run {k}: {e:?}"));
        let run = finished(c, &run_id).await;
        assert_eq!(run.status, "completed", "run {k}: {run:?}");
        let output = run.output.clone().expect("output");
        let greeting = format!("hello {name}");
        assert_eq!(output["state"]["hook_runs"], json!(1), "run {k}: {output}");
        assert_eq!(
            output["state"]["greeting"],
            json!(greeting),
            "run {k}: {output}"
        );
        assert_eq!(output["signal"], json!({ "greeting": greeting }), "run {k}");

        let events = c.events(&run_id).await.expect("events");
        let dump = || {
            events
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        };
        let main_spawns: Vec<&Value> = of_type(&events, "hook_spawned")
            .into_iter()
            .filter(|e| e["thread"] == "main")
            .collect();
        assert_eq!(
            main_spawns.len(),
            1,
            "run {k}: one spawn in the main thread\n{}",
            dump()
        );
        let threads: BTreeSet<&str> = events
            .iter()
            .filter_map(|e| e["thread"].as_str())
            .filter(|t| *t != "main")
            .collect();
        assert_eq!(
            threads.len(),
            1,
            "run {k}: exactly one hook thread, got {threads:?}\n{}",
            dump()
        );
        let hook_id = main_spawns[0]["hook_id"].as_str().expect("hook_id");
        assert!(
            threads.contains(hook_id),
            "run {k}: {threads:?} vs {hook_id}"
        );
        let in_thread = |kind: &str| {
            events
                .iter()
                .filter(|e| e["thread"] == hook_id && e["type"] == kind)
                .count()
        };
        assert_eq!(in_thread("run_started"), 1, "run {k}\n{}", dump());
        assert_eq!(in_thread("run_completed"), 1, "run {k}\n{}", dump());
        assert_eq!(in_thread("state_incr"), 1, "run {k}\n{}", dump());
        assert_eq!(in_thread("signal_sent"), 1, "run {k}\n{}", dump());
    }
}

/// What the killed server had committed for the run, read from the file before the restart:
/// the main journal's entry kinds, then each hook thread's. At most one thread may exist.
async fn committed_at_kill(db: &Path, run_id: &str) -> String {
    let store = SqliteStore::open(db.to_str().expect("utf-8 path"))
        .await
        .expect("open the killed server's database");
    let kinds = |events: Vec<tether_core::Event>| {
        events
            .iter()
            .map(|e| e.body.kind())
            .collect::<Vec<_>>()
            .join(",")
    };
    let main = store.load_journal(run_id, 0).await.expect("main journal");
    let mut seen = format!("main[{}]", kinds(main));
    let threads = store.list_threads(run_id).await.expect("threads");
    assert!(
        threads.len() <= 1,
        "two hook threads at the kill: {threads:?}"
    );
    for t in threads {
        let journal = store
            .load_journal(&t.run_id, 0)
            .await
            .expect("thread journal");
        seen.push_str(&format!(" thread[{}]", kinds(journal)));
    }
    seen
}
