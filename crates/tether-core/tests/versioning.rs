//! Versioning: `ctx.patched(change_id)` lets new code run under runs that started with the old
//! code. A run that passed the change under the old code replays the old branch; a run that
//! reaches it with the new code journals a `Patched` marker and takes the new branch, on every
//! replay too; `ctx.deprecate_patch` keeps the marker without the branch. Markers take no
//! command index.

mod harness;

use std::sync::Arc;

use harness::{assert_trio, replay, workflow, Sim};
use serde_json::{json, Value};
use tether_core::{Ctx, ErasedWorkflow, EventBody, HookOptions, ReplayError, WorkflowError};

const CHANGE: &str = "prepare-v2";

/// v1: prepare, wait for an approval, finish.
async fn v1(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let prepared: String = ctx
        .step("prepare", (), |()| async { Ok("v1".to_string()) })
        .await?;
    let mut hook = ctx
        .create_hook::<Value>(HookOptions::new().token("approve"))
        .await?;
    let approval = hook.recv().await?;
    let done: u32 = ctx.step("finish", (), |()| async { Ok(1) }).await?;
    Ok(json!({ "prepared": prepared, "approval": approval, "done": done }))
}

/// v2: the preparation changed, behind `patched`.
async fn v2(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let prepared: String = if ctx.patched(CHANGE).await {
        ctx.step("prepare-v2", (), |()| async { Ok("v2".to_string()) })
            .await?
    } else {
        ctx.step("prepare", (), |()| async { Ok("v1".to_string()) })
            .await?
    };
    let mut hook = ctx
        .create_hook::<Value>(HookOptions::new().token("approve"))
        .await?;
    let approval = hook.recv().await?;
    let done: u32 = ctx.step("finish", (), |()| async { Ok(1) }).await?;
    Ok(json!({ "prepared": prepared, "approval": approval, "done": done }))
}

/// v3: every run older than v2 has ended; the old branch is gone, the patch deprecated.
async fn v3(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    ctx.deprecate_patch(CHANGE);
    let prepared: String = ctx
        .step("prepare-v2", (), |()| async { Ok("v2".to_string()) })
        .await?;
    let mut hook = ctx
        .create_hook::<Value>(HookOptions::new().token("approve"))
        .await?;
    let approval = hook.recv().await?;
    let done: u32 = ctx.step("finish", (), |()| async { Ok(1) }).await?;
    Ok(json!({ "prepared": prepared, "approval": approval, "done": done }))
}

/// v4: the deprecation call is gone too.
async fn v4(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let prepared: String = ctx
        .step("prepare-v2", (), |()| async { Ok("v2".to_string()) })
        .await?;
    let mut hook = ctx
        .create_hook::<Value>(HookOptions::new().token("approve"))
        .await?;
    let approval = hook.recv().await?;
    let done: u32 = ctx.step("finish", (), |()| async { Ok(1) }).await?;
    Ok(json!({ "prepared": prepared, "approval": approval, "done": done }))
}

fn approve(sim: &mut Sim) {
    sim.settle();
    assert_eq!(sim.resume_token("approve", json!("yes")), Ok(2));
}

fn markers(sim: &Sim) -> Vec<EventBody> {
    sim.entries("patched").into_iter().cloned().collect()
}

/// A v1 run waiting on its hook.
fn waiting_v1() -> Sim {
    let mut sim = Sim::start(&workflow(v1), Value::Null);
    sim.settle();
    assert_eq!(
        sim.kinds(),
        ["run_started", "step_completed", "hook_created"]
    );
    sim
}

#[test]
fn a_run_that_passed_the_change_under_v1_takes_the_old_branch_under_v2() {
    let mut sim = waiting_v1();
    let suspended = sim.journal().len();
    sim.redeploy(&workflow(v2))
        .expect("v2 replays the v1 journal");
    approve(&mut sim);
    sim.settle();
    assert_eq!(
        sim.output(),
        json!({ "prepared": "v1", "approval": "yes", "done": 1 })
    );
    assert!(markers(&sim).is_empty(), "the old branch writes no marker");
    // No marker, and the commands keep their v1 indexes: the finish step is #4 (after the
    // hook's creation #2 and disposal #3), as under v1.
    let finish = sim
        .entries("step_completed")
        .into_iter()
        .find_map(|b| match b {
            EventBody::StepCompleted { cmd, name, .. } if name == "finish" => Some(*cmd),
            _ => None,
        });
    assert_eq!(finish, Some(3));
    // v2 replays the mixed journal from any crash point after the redeploy, and to its end.
    sim.check_replays_from(suspended);
}

#[test]
fn a_fresh_v2_run_takes_the_new_branch_and_journals_the_marker() {
    let sim = assert_trio(&workflow(v2), Value::Null, approve);
    assert_eq!(
        sim.output(),
        json!({ "prepared": "v2", "approval": "yes", "done": 1 })
    );
    assert_eq!(
        markers(&sim),
        [EventBody::Patched {
            change_id: CHANGE.into(),
            at_cmd: 1,
            after_seq: 0,
        }]
    );
    // The marker takes no command index: the new step is command #1.
    assert!(matches!(
        sim.entries("step_completed")[0],
        EventBody::StepCompleted { cmd: 1, name, .. } if name == "prepare-v2"
    ));
}

#[test]
fn a_v2_run_replayed_takes_the_new_branch_again() {
    // Suspended on the hook, then rebuilt (restart, eviction) twice before the approval.
    let wf = workflow(v2);
    let mut sim = Sim::start(&wf, Value::Null);
    sim.settle();
    sim.redeploy(&wf).expect("replays");
    sim.redeploy(&wf).expect("replays again");
    approve(&mut sim);
    sim.settle();
    assert_eq!(sim.output()["prepared"], "v2");
    assert_eq!(markers(&sim).len(), 1, "a replay writes no second marker");
    sim.check_replays_from(1);
}

#[test]
fn a_v1_run_that_had_not_reached_the_change_takes_the_new_branch() {
    // v1 waits for the approval first; v2b changes the finish, after the hook.
    async fn v2b(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
        let prepared: String = ctx
            .step("prepare", (), |()| async { Ok("v1".to_string()) })
            .await?;
        let mut hook = ctx
            .create_hook::<Value>(HookOptions::new().token("approve"))
            .await?;
        let approval = hook.recv().await?;
        let done: u32 = if ctx.patched("finish-v2").await {
            ctx.step("finish-v2", (), |()| async { Ok(2) }).await?
        } else {
            ctx.step("finish", (), |()| async { Ok(1) }).await?
        };
        Ok(json!({ "prepared": prepared, "approval": approval, "done": done }))
    }
    let mut sim = waiting_v1();
    let suspended = sim.journal().len();
    sim.redeploy(&workflow(v2b)).expect("replays");
    approve(&mut sim);
    sim.settle();
    assert_eq!(sim.output()["done"], 2);
    assert_eq!(markers(&sim).len(), 1);
    sim.check_replays_from(suspended);
}

#[test]
fn deprecating_the_patch_keeps_v2_runs_and_refuses_v1_runs() {
    // A v2 run, waiting, deployed under v3 and v4: both replay it and finish it.
    for next in [workflow(v3), workflow(v4)] {
        let mut sim = Sim::start(&workflow(v2), Value::Null);
        sim.settle();
        let suspended = sim.journal().len();
        sim.redeploy(&next)
            .expect("the deprecated code replays a v2 run");
        approve(&mut sim);
        sim.settle();
        assert_eq!(sim.output()["prepared"], "v2");
        assert_eq!(markers(&sim).len(), 1);
        sim.check_replays_from(suspended);
    }

    // A fresh v3 run still writes the marker (code still asking `patched` takes the new
    // branch for it), and its journal replays under v2 as well.
    let sim = assert_trio(&workflow(v3), Value::Null, approve);
    assert_eq!(markers(&sim).len(), 1);
    let r = replay(&workflow(v2), sim.journal()).expect("v2 replays a v3 run");
    assert_eq!(
        r.progress,
        tether_core::Progress::Finished(sim.end().clone())
    );

    // A v1 run cannot be replayed by v3: the error names the change.
    let sim = waiting_v1();
    match replay(&workflow(v3), sim.journal()) {
        Err(ReplayError::Unexpected { seq, message }) => {
            assert_eq!(seq, 2);
            assert!(message.contains(CHANGE), "{message}");
        }
        other => panic!("expected a replay error, got {other:?}"),
    }
}

#[test]
fn a_change_without_patched_is_a_nondeterminism_error() {
    let sim = waiting_v1();
    let wf: Arc<dyn ErasedWorkflow> = workflow(v4);
    assert!(matches!(
        replay(&wf, sim.journal()),
        Err(ReplayError::Nondeterminism { position: 1, .. })
    ));
}

/// Payloads summed in a loop; v2 doubles each one, behind `patched`. The old branch journals
/// nothing, so only the journal's order tells the iterations apart.
fn summing(patch: bool) -> Arc<dyn ErasedWorkflow> {
    workflow(move |ctx: Ctx, _: Value| async move {
        let mut hook = ctx
            .create_hook::<u64>(HookOptions::new().token("numbers"))
            .await?;
        let mut total = 0;
        for _ in 0..3 {
            let n = hook.recv().await?;
            total += if patch && ctx.patched("double").await {
                2 * n
            } else {
                n
            };
        }
        Ok(total)
    })
}

#[test]
fn a_loop_passes_the_change_per_iteration_in_journal_order() {
    let mut sim = Sim::start(&summing(false), Value::Null);
    sim.settle();
    sim.resume_token("numbers", json!(1)).expect("resumes");
    sim.settle();
    let v1_part = sim.journal().len();
    sim.redeploy(&summing(true)).expect("replays");
    // Nothing was journaled after payload 1 under v1, so v2 is the first code to reach the
    // change (in iteration 1) and doubles from there on.
    sim.resume_token("numbers", json!(10)).expect("resumes");
    sim.settle();
    sim.resume_token("numbers", json!(100)).expect("resumes");
    sim.settle();
    assert_eq!(sim.output(), json!(2 + 20 + 200));
    sim.check_replays_from(v1_part);

    // With two payloads journaled under v1, the first was passed under v1, the second not.
    let mut sim = Sim::start(&summing(false), Value::Null);
    sim.settle();
    sim.resume_token("numbers", json!(1)).expect("resumes");
    sim.resume_token("numbers", json!(10)).expect("resumes");
    sim.settle();
    let v1_part = sim.journal().len();
    sim.redeploy(&summing(true)).expect("replays");
    sim.settle();
    sim.resume_token("numbers", json!(100)).expect("resumes");
    sim.settle();
    assert_eq!(sim.output(), json!(1 + 20 + 200));
    sim.check_replays_from(v1_part);

    // A payload committed between the question and the marker's commit: the marker records
    // the entry the code had seen (`after_seq`), so it still belongs to iteration 2.
    let mut sim = Sim::start(&summing(false), Value::Null);
    sim.settle();
    sim.resume_token("numbers", json!(1)).expect("resumes");
    sim.resume_token("numbers", json!(10)).expect("resumes");
    sim.redeploy(&summing(true)).expect("replays");
    sim.resume_token("numbers", json!(100)).expect("resumes");
    sim.settle();
    let journal = sim.journal().to_vec();
    let kinds: Vec<&str> = journal.iter().map(|e| e.body.kind()).collect();
    assert_eq!(kinds[4..6], ["hook_received", "patched"]);
    assert_eq!(sim.output(), json!(1 + 20 + 200));
    sim.check_full_replay();
    // A crash before that commit: the code had not seen the answer yet (a new marker is
    // awaited until committed), so the rebuilt run decides again with what the journal holds
    // then: iterations 1 and 2 went on under v1, iteration 3 is the first to reach the change.
    let r = replay(&summing(true), &journal[..5]).expect("replays");
    assert_eq!(r.progress, tether_core::Progress::Waiting);
    assert_eq!(
        r.outbox,
        [EventBody::Patched {
            change_id: "double".into(),
            at_cmd: 2,
            after_seq: 5,
        }]
    );

    // And a fresh v2 run doubles everything, on every replay.
    let sim = assert_trio(&summing(true), Value::Null, |sim| {
        sim.settle();
        for n in [1, 10, 100] {
            sim.resume_token("numbers", json!(n)).expect("resumes");
        }
    });
    assert_eq!(sim.output(), json!(222));
}
