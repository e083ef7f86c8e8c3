//! Journals written by an earlier release replay unchanged under the current code.
//!
//! `fixtures/release-0.1.db` is a SQLite database written by Tether 0.1 (the workflow API
//! before its second edition) through the test kit: runs of every bundled example, some
//! ended, some waiting on a hook, a signal or a timer, a hook thread, and a hook whose
//! definition was stored under its payload's Rust type name (the 0.1 default). The test opens
//! a copy (migrating it if the schema moved on), checks every run against today's code without
//! writing, then resumes the waiting ones and sees them finish.
//!
//! (The fixture was written with `define_hook::<LegacyOrder>()`, 0.1's unnamed form.)
//!
//! Regenerate it only when making a new release's fixture (never to make this test pass):
//! `TETHER_WRITE_FIXTURE=1 cargo test -p tether-examples --test release_journals -- --ignored`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use tether::replay::check_run;
use tether::sqlite::SqliteStore;
use tether::store::{RunFilter, Store};
use tether::{
    define_hook, Ctx, Engine, EngineConfig, HookDef, HookOptions, Registry, WorkflowError,
};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/release-0.1.db")
}

/// A payload whose hook definition 0.1 stored under `std::any::type_name` (this file's module
/// path): `release_journals::LegacyOrder`.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct LegacyOrder {
    sku: String,
    quantity: u32,
}

/// The definition, now with a name of its own. Tether 0.1 stored its hooks under the type's
/// name, which stays an alias of every definition: the waiting hook still finds it.
fn legacy_hook() -> HookDef<LegacyOrder> {
    define_hook::<LegacyOrder>("legacy.order")
}

/// Waits for one order on a hook of the legacy definition.
async fn legacy_typed(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let hook = legacy_hook()
        .create(&ctx, HookOptions::new().token("legacy:1"))
        .await?;
    let order = hook.await?;
    Ok(json!({ "sku": order.sku, "quantity": order.quantity }))
}

fn registry() -> Registry {
    let mut r = Registry::new();
    tether_examples::register(&mut r);
    r.workflow("legacy_typed", legacy_typed)
        .hook(&legacy_hook());
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_0_1_journals_replay_and_resume() {
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("copy.db");
    std::fs::copy(fixture(), &copy).expect("copy the fixture");
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&copy.display().to_string())
            .await
            .expect("open the copy"),
    );
    let registry = registry();

    let all = store
        .list_runs(&RunFilter {
            limit: 1000,
            ..RunFilter::default()
        })
        .await
        .expect("list runs");
    assert!(all.len() >= 15, "the fixture holds {} runs", all.len());
    for run in &all {
        let check = check_run(store.as_ref(), &registry, &run.run_id)
            .await
            .expect("check");
        assert!(
            check.is_ok(),
            "run {} ({}) written by 0.1 no longer replays: {check}",
            run.run_id,
            run.workflow
        );
    }

    // The waiting runs go on under today's code.
    let engine = Engine::start(store.clone(), registry, EngineConfig::default());
    let wait = Duration::from_secs(30);
    let id_of = |workflow: &str, input: Value| {
        all.iter()
            .find(|r| r.workflow == workflow && r.input == input && !r.status.is_terminal())
            .map(|r| r.run_id.clone())
            .unwrap_or_else(|| panic!("no waiting {workflow} {input} in the fixture"))
    };

    let legacy = id_of("legacy_typed", Value::Null);
    let refused = engine
        .resume_hook("legacy:1", json!({ "sku": "x" }), None)
        .await
        .expect_err("the legacy definition still validates");
    assert_eq!(refused.code(), "invalid_payload", "{refused}");
    engine
        .resume_hook("legacy:1", json!({ "sku": "x", "quantity": 2 }), None)
        .await
        .expect("resume the legacy hook");
    let done = engine
        .wait_for_run(&legacy, wait)
        .await
        .expect("legacy run");
    assert_eq!(done.output, Some(json!({ "sku": "x", "quantity": 2 })));

    let slack = id_of("slack_bot", json!({ "channel": "C1" }));
    engine
        .resume_hook("slack_messages:C1", json!({ "text": "/stop" }), None)
        .await
        .expect("resume slack_bot");
    let done = engine.wait_for_run(&slack, wait).await.expect("slack_bot");
    assert_eq!(
        done.output,
        Some(json!({ "messages": ["hello", "world"] })),
        "{:?}",
        done.error
    );

    let approval = id_of("approval", json!({ "order_id": "o-2" }));
    let token = engine.hooks(&approval).await.expect("hooks")[0]
        .token
        .clone();
    engine
        .resume_hook(
            &token,
            json!({ "approved": true, "comment": "later" }),
            None,
        )
        .await
        .expect("resume approval");
    let done = engine
        .wait_for_run(&approval, wait)
        .await
        .expect("approval");
    assert_eq!(
        done.output.as_ref().map(|o| o["comment"].clone()),
        Some(json!("later"))
    );

    let waiting = id_of("wait_signal", json!({ "signal_id": "s-wait" }));
    engine
        .signal("s-wait", json!({ "paid": true }))
        .await
        .expect("signal");
    let done = engine
        .wait_for_run(&waiting, wait)
        .await
        .expect("wait_signal");
    assert_eq!(done.output, Some(json!({ "paid": true })));

    let enrich = id_of("enrich", json!({ "name": "ada", "wait": true }));
    let token = engine.hooks(&enrich).await.expect("hooks")[0].token.clone();
    engine
        .resume_hook(&token, json!("go"), None)
        .await
        .expect("resume enrich");
    let done = engine.wait_for_run(&enrich, wait).await.expect("enrich");
    assert_eq!(
        done.output.as_ref().map(|o| o["state"]["greeting"].clone()),
        Some(json!("hello ada")),
        "{:?}",
        done.error
    );
    engine.shutdown().await;
}

/// Writes the fixture with the code of the current checkout (see the module docs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes the fixture; run by hand when cutting a release"]
async fn write_fixture() {
    if std::env::var("TETHER_WRITE_FIXTURE").as_deref() != Ok("1") {
        eprintln!(
            "set TETHER_WRITE_FIXTURE=1 to overwrite {}",
            fixture().display()
        );
        return;
    }
    use tether::testing::TestEnv;
    let env = TestEnv::new(registry()).await.expect("test env");
    let hour = Duration::from_secs(3600);

    let a1 = env
        .start("approval", json!({ "order_id": "o-1" }))
        .await
        .unwrap();
    let t = env.hook_token(&a1).await.unwrap();
    env.resume(&t, json!({ "approved": true, "comment": "ship it" }))
        .await
        .unwrap();
    env.start("approval", json!({ "order_id": "o-2" }))
        .await
        .unwrap();

    env.start("collect", json!({})).await.unwrap();
    let c2 = env.start("collect", json!({})).await.unwrap();
    let t = env.hook_token(&c2).await.unwrap();
    env.resume(&t, json!({ "n": 1 })).await.unwrap();
    env.resume(&t, json!({ "n": 2, "done": true }))
        .await
        .unwrap();

    env.start("slack_bot", json!({ "channel": "C1" }))
        .await
        .unwrap();
    env.resume("slack_messages:C1", json!({ "text": "hello" }))
        .await
        .unwrap();
    env.resume("slack_messages:C1", json!({ "text": "world" }))
        .await
        .unwrap();
    env.start("slack_bot", json!({ "channel": "C2" }))
        .await
        .unwrap();
    env.resume("slack_messages:C2", json!({ "text": "/stop" }))
        .await
        .unwrap();

    env.start("handoff", json!({ "channel": "h1" }))
        .await
        .unwrap();
    env.resume("channel:h1", json!({ "message": "hi" }))
        .await
        .unwrap();
    env.resume("channel:h1", json!({ "message": "over", "handoff": true }))
        .await
        .unwrap();

    env.start("timeout_approval", json!({ "timeout_ms": 60_000 }))
        .await
        .unwrap();
    env.advance(Duration::from_secs(61)).await.unwrap();
    env.start("timeout_approval", json!({ "timeout_ms": 86_400_000 }))
        .await
        .unwrap();

    env.start("steps", json!({ "n": 3 })).await.unwrap();
    env.start("enrich", json!({ "name": "ada", "wait": true }))
        .await
        .unwrap();
    env.start("enrich", json!({ "name": "bob" })).await.unwrap();
    env.start("wait_signal", json!({ "signal_id": "s-wait" }))
        .await
        .unwrap();
    env.start("wait_signal", json!({ "signal_id": "s-done" }))
        .await
        .unwrap();
    env.signal("s-done", json!({ "ok": 1 })).await.unwrap();
    env.start("webhook_echo", json!({ "mode": "static" }))
        .await
        .unwrap();
    env.start("legacy_typed", Value::Null).await.unwrap();
    env.advance(hour).await.unwrap();

    for run in env
        .engine()
        .list_runs(&RunFilter {
            limit: 1000,
            ..RunFilter::default()
        })
        .await
        .unwrap()
    {
        env.replay(&run.run_id).await.unwrap();
    }
    let target = fixture();
    let _ = std::fs::remove_file(&target);
    let conn = rusqlite::Connection::open(env.db_path()).unwrap();
    conn.execute("VACUUM INTO ?1", [target.display().to_string()])
        .unwrap();
    drop(conn);
    env.shutdown().await;
}
