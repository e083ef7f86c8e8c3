//! Child runs on a real SQLite store: the bundled `fan_out` example, a restart in the middle
//! (exactly n children, one result each), and a parent's cancellation reaching its children.
#![allow(missing_docs, missing_debug_implementations)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tether_core::{Ctx, EventBody, HookOptions, Registry, RunStatus, WorkflowError};

async fn child_ended_count(engine: &tether_engine::Engine, run_id: &str) -> usize {
    engine
        .events(run_id)
        .await
        .expect("events")
        .iter()
        .filter(|e| matches!(e.body, EventBody::ChildEnded { .. }))
        .count()
}

#[tokio::test]
async fn fan_out_runs_n_children_of_steps_and_adds_them_up() {
    let db = TestDb::new();
    let engine = db.engine(examples(), fast_config()).await;
    let run = engine.start_run("fan_out", json!({"n": 4})).await.unwrap();
    assert_eq!(
        output(&engine, &run).await,
        json!({"children": 4, "steps": 12})
    );
    let children = engine.children(&run).await.unwrap();
    assert_eq!(children.len(), 4);
    for (i, child) in children.iter().enumerate() {
        assert_eq!(child.run_id, format!("{run}.c{}", i + 1));
        assert_eq!(child.workflow, "steps");
        assert_eq!(child.parent_run_id.as_deref(), Some(run.as_str()));
        assert_eq!(child.status, RunStatus::Completed);
        assert_eq!(child.output, Some(json!({"steps": 3})));
    }
    assert_eq!(engine.get_run(&run).await.unwrap().parent_run_id, None);
    assert_eq!(child_ended_count(&engine, &run).await, 4);
    engine.shutdown().await;
}

/// A child that waits for a hook: the parent is suspended on its children meanwhile.
async fn waiter(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let hook = ctx
        .create_hook::<Value>(HookOptions::new().token(format!("go:{}", ctx.run_id())))
        .await?;
    hook.await
}

async fn parent(ctx: Ctx, n: u32) -> Result<Value, WorkflowError> {
    let handles: Vec<_> = (0..n)
        .map(|i| ctx.start_child::<Value>("waiter", &json!({ "i": i })))
        .collect();
    let mut got = Vec::new();
    for r in tether_core::join_all(handles.into_iter().map(|h| h.result())).await {
        got.push(r?);
    }
    Ok(json!(got))
}

fn registry() -> Registry {
    let mut r = examples();
    r.workflow("waiter", waiter).workflow("parent", parent);
    r
}

async fn wait_for_hooks(engine: &tether_engine::Engine, run: &str, n: usize) {
    for _ in 0..2000 {
        let children = engine.children(run).await.unwrap();
        let mut with_hook = 0;
        for c in &children {
            if !engine.hooks(&c.run_id).await.unwrap().is_empty() {
                with_hook += 1;
            }
        }
        if with_hook == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the children of {run} never all created their hooks");
}

#[tokio::test]
async fn a_restart_in_the_middle_ends_once_with_exactly_n_children() {
    let db = TestDb::new();
    let engine = db.engine(registry(), fast_config()).await;
    let run = engine.start_run("parent", json!(3)).await.unwrap();
    wait_for_hooks(&engine, &run, 3).await;
    // `tether replay` reads the journal with its child entries and names the children waited on.
    let check = tether_engine::replay::check_run(db.store().await.as_ref(), &registry(), &run)
        .await
        .unwrap();
    let tether_engine::replay::Verdict::Reproduced { waiting_on } = &check.verdict else {
        panic!("the parent must replay: {check:?}");
    };
    assert!(
        waiting_on.contains(&format!("child run {run}.c2 (waiter)")),
        "{waiting_on:?}"
    );
    // One child ends before the restart.
    engine
        .resume_hook(&format!("go:{run}.c1"), json!("one"), None)
        .await
        .unwrap();
    engine.shutdown().await;
    drop(engine);

    let engine = db.engine(registry(), fast_config()).await;
    for c in 2..=3 {
        engine
            .resume_hook(&format!("go:{run}.c{c}"), json!(c), None)
            .await
            .unwrap();
    }
    assert_eq!(output(&engine, &run).await, json!(["one", 2, 3]));
    assert_eq!(engine.children(&run).await.unwrap().len(), 3);
    assert_eq!(child_ended_count(&engine, &run).await, 3);
    let started = engine
        .events(&run)
        .await
        .unwrap()
        .iter()
        .filter(|e| matches!(e.body, EventBody::ChildStarted { .. }))
        .count();
    assert_eq!(started, 3, "each child is started once");
    let check = tether_engine::replay::check_run(db.store().await.as_ref(), &registry(), &run)
        .await
        .unwrap();
    assert_eq!(
        check.verdict,
        tether_engine::replay::Verdict::Reproduced { waiting_on: vec![] }
    );
    engine.shutdown().await;
}

async fn detacher(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let attached = ctx.start_child::<Value>("waiter", &json!({}));
    let detached = ctx.start_child_with::<Value>(
        "waiter",
        &json!({}),
        tether_core::ChildOptions::new().detached(),
    );
    let _ = detached.run_id().to_owned();
    attached.await
}

#[tokio::test]
async fn cancelling_a_parent_cancels_its_attached_children_only() {
    let db = TestDb::new();
    let mut reg = registry();
    reg.workflow("detacher", detacher);
    let engine = db.engine(reg, fast_config()).await;
    let run = engine.start_run("detacher", json!(null)).await.unwrap();
    wait_for_hooks(&engine, &run, 2).await;
    engine
        .cancel_run(&run, Some("enough".into()))
        .await
        .unwrap();
    let ended = engine
        .wait_for_run(&run, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(ended.status, RunStatus::Cancelled);
    let attached = engine
        .wait_for_run(&format!("{run}.c1"), Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(attached.status, RunStatus::Cancelled, "{attached:?}");
    let detached = engine.get_run(&format!("{run}.c2")).await.unwrap();
    assert!(!detached.status.is_terminal(), "{detached:?}");
    // The detached child goes on and ends on its own; its parent has ended and gets nothing.
    let parent_seq = engine.get_run(&run).await.unwrap().last_seq;
    engine
        .resume_hook(&format!("go:{run}.c2"), json!("late"), None)
        .await
        .unwrap();
    let done = engine
        .wait_for_run(&format!("{run}.c2"), Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(done.output, Some(json!("late")));
    assert_eq!(engine.get_run(&run).await.unwrap().last_seq, parent_seq);
    engine.shutdown().await;
}

async fn failing(_: Ctx, _: Value) -> Result<Value, WorkflowError> {
    Err(WorkflowError::with_code("card_declined", "no money"))
}

async fn calls_failing(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    match ctx.call::<Value>("failing", &json!({})).await {
        Err(WorkflowError::ChildFailed { error, .. }) => Ok(json!(error.code)),
        other => Ok(json!(format!("{other:?}"))),
    }
}

#[tokio::test]
async fn a_failed_child_is_the_parents_typed_error() {
    let db = TestDb::new();
    let mut reg = registry();
    reg.workflow("failing", failing)
        .workflow("calls_failing", calls_failing);
    let engine = db.engine(reg, fast_config()).await;
    let run = engine
        .start_run("calls_failing", json!(null))
        .await
        .unwrap();
    assert_eq!(output(&engine, &run).await, json!("card_declined"));
    engine.shutdown().await;
}
