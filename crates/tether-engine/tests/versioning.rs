//! Versioning on a real SQLite store: runs wait under v1, the engine restarts with v2 (the same
//! workflow name, the change behind `ctx.patched`), and old and new runs both finish, each on
//! its own branch; `check_run` (what `tether replay --all` runs) passes both kinds, and reports
//! a change made without `patched`.
#![allow(missing_docs, missing_debug_implementations)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tether_core::{Ctx, EventBody, HookOptions, Registry, ReplayError, WorkflowError};
use tether_engine::replay::{check_run, Verdict};

const NAME: &str = "order";

async fn prepare_v1(ctx: &Ctx) -> Result<String, WorkflowError> {
    ctx.step("prepare", (), |()| async { Ok("v1".to_string()) })
        .await
}

async fn prepare_v2(ctx: &Ctx) -> Result<String, WorkflowError> {
    ctx.step("prepare-v2", (), |()| async { Ok("v2".to_string()) })
        .await
}

/// The rest of the workflow, the same in every version: wait for the token, then finish.
async fn wait_and_finish(
    ctx: Ctx,
    token: String,
    prepared: String,
) -> Result<Value, WorkflowError> {
    let mut hook = ctx
        .create_hook::<Value>(HookOptions::new().token(token))
        .await?;
    let approval = hook.recv().await?;
    let done: u32 = ctx.step("finish", (), |()| async { Ok(1) }).await?;
    Ok(json!({ "prepared": prepared, "approval": approval, "done": done }))
}

async fn v1(ctx: Ctx, token: String) -> Result<Value, WorkflowError> {
    let prepared = prepare_v1(&ctx).await?;
    wait_and_finish(ctx, token, prepared).await
}

async fn v2(ctx: Ctx, token: String) -> Result<Value, WorkflowError> {
    let prepared = if ctx.patched("prepare-v2").await {
        prepare_v2(&ctx).await?
    } else {
        prepare_v1(&ctx).await?
    };
    wait_and_finish(ctx, token, prepared).await
}

/// The same change made without `patched`.
async fn unguarded(ctx: Ctx, token: String) -> Result<Value, WorkflowError> {
    let prepared = prepare_v2(&ctx).await?;
    wait_and_finish(ctx, token, prepared).await
}

/// A registry with `workflow` under the one name every version is deployed as.
macro_rules! registry {
    ($workflow:expr) => {{
        let mut r = Registry::new();
        r.workflow(NAME, $workflow);
        r
    }};
}

async fn markers(engine: &tether_engine::Engine, run: &str) -> Vec<String> {
    engine
        .events(run)
        .await
        .expect("events")
        .into_iter()
        .filter_map(|e| match e.body {
            EventBody::Patched { change_id, .. } => Some(change_id),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn runs_waiting_under_v1_finish_on_the_old_branch_after_a_v2_deploy() {
    let db = TestDb::new();
    let store = db.store().await;
    let wait = Duration::from_secs(10);

    // v1: three runs wait for their approval.
    let engine = db.engine(registry!(v1), fast_config()).await;
    let mut old = Vec::new();
    for i in 0..3 {
        let token = format!("old-{i}");
        let run = engine.start_run(NAME, json!(token)).await.unwrap();
        engine.wait_for_hook(&token, wait).await.unwrap();
        old.push((run, token));
    }
    engine.shutdown().await;

    // Before deploying: v2 passes the check on every waiting run; the unguarded change does not.
    for (run, _) in &old {
        let check = check_run(store.as_ref(), &registry!(v2), run)
            .await
            .unwrap();
        assert!(check.is_ok(), "{check}");
        let check = check_run(store.as_ref(), &registry!(unguarded), run)
            .await
            .unwrap();
        assert!(
            matches!(
                &check.verdict,
                Verdict::Diverged(ReplayError::Nondeterminism { position: 1, .. })
            ),
            "{check}"
        );
    }

    // Deploy v2: new runs start on the new branch.
    let engine = db.engine(registry!(v2), fast_config()).await;
    let mut new = Vec::new();
    for i in 0..2 {
        let token = format!("new-{i}");
        let run = engine.start_run(NAME, json!(token)).await.unwrap();
        engine.wait_for_hook(&token, wait).await.unwrap();
        assert_eq!(markers(&engine, &run).await, ["prepare-v2"]);
        new.push((run, token));
    }
    for (run, _) in &old {
        assert!(markers(&engine, run).await.is_empty());
    }
    engine.shutdown().await;

    // Every waiting run, old and new, passes the check against v2.
    for (run, _) in old.iter().chain(&new) {
        let check = check_run(store.as_ref(), &registry!(v2), run)
            .await
            .unwrap();
        assert!(check.is_ok(), "{check}");
    }

    // Restart with v2 again (every run rebuilt by replay), approve everything.
    let engine = db.engine(registry!(v2), fast_config()).await;
    for (run, token) in old.iter().chain(&new) {
        engine.resume_hook(token, json!("yes"), None).await.unwrap();
        let expected = if token.starts_with("old") { "v1" } else { "v2" };
        assert_eq!(
            output(&engine, run).await,
            json!({ "prepared": expected, "approval": "yes", "done": 1 })
        );
    }
    for (run, _) in &new {
        assert_eq!(markers(&engine, run).await.len(), 1, "one marker per run");
    }
    engine.shutdown().await;

    // The ended runs replay too.
    for (run, _) in old.iter().chain(&new) {
        let check = check_run(store.as_ref(), &registry!(v2), run)
            .await
            .unwrap();
        assert!(check.is_ok(), "{check}");
    }
}
