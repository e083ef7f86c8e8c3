//! What a user reads when a workflow's code changed under a stored run: each kind of
//! divergence is reported with the command index, the journal position, what the journal has,
//! what the code asked for, and what to do about it.

mod harness;

use std::time::Duration;

use harness::{replay, workflow, Sim};
use serde_json::{json, Value};
use tether_core::error::NONDETERMINISM_HINT;
use tether_core::{Ctx, Event, HookOptions, Progress, ReplayError, WorkflowError};

/// v1: a step, a hook, then a timer after the payload.
async fn v1(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let n: u32 = ctx.step("charge", (), |()| async { Ok(7) }).await?;
    let hook = ctx
        .create_hook::<String>(HookOptions::new().token("ship"))
        .await?;
    let tracking = hook.await?;
    ctx.sleep(Duration::from_secs(60)).await?;
    Ok(json!({ "n": n, "tracking": tracking }))
}

/// A v1 run that got its payload and sleeps:
/// `run_started(1), step_completed #1 (2), hook_created #2 (3), hook_received (4),
/// hook_disposed #3 (5), timer_started #4 (6)` (awaiting a hook consumes and disposes it).
fn sleeping_v1() -> Vec<Event> {
    let mut sim = Sim::start(&workflow(v1), Value::Null);
    sim.settle();
    sim.resume_token("ship", json!("T-1")).expect("resume");
    sim.settle();
    assert_eq!(
        sim.kinds(),
        [
            "run_started",
            "step_completed",
            "hook_created",
            "hook_received",
            "hook_disposed",
            "timer_started"
        ]
    );
    sim.journal().to_vec()
}

/// The replay error, after checking that its text tells the user what to do.
fn check(wf: &std::sync::Arc<dyn tether_core::ErasedWorkflow>, journal: &[Event]) -> ReplayError {
    let err = match replay(wf, journal) {
        Err(e) => e,
        Ok(r) => panic!("expected a divergence, replay succeeded: {r:?}"),
    };
    let text = err.to_string();
    assert!(text.contains(NONDETERMINISM_HINT), "{text}");
    assert!(text.contains("journal entry"), "{text}");
    assert_eq!(err.to_info().code, "nondeterminism");
    err
}

#[test]
fn the_unchanged_code_replays() {
    let r = replay(&workflow(v1), &sleeping_v1()).expect("replay");
    assert_eq!(r.progress, Progress::Waiting);
    assert!(r.outbox.is_empty());
}

#[test]
fn a_renamed_step_names_its_command_and_entry() {
    let v2 = workflow(|ctx: Ctx, _: Value| async move {
        let n: u32 = ctx.step("charge_card", (), |()| async { Ok(7) }).await?;
        Ok(json!(n))
    });
    let err = check(&v2, &sleeping_v1());
    assert_eq!(
        err,
        ReplayError::Nondeterminism {
            position: 1,
            seq: 2,
            recorded: "step \"charge\"".into(),
            issued: "step \"charge_card\"".into(),
        }
    );
    assert!(err
        .to_string()
        .starts_with("non-determinism at command #1 (journal entry 2): the journal recorded step \"charge\", but the code now issues step \"charge_card\"; "));
}

#[test]
fn a_step_added_before_the_hook() {
    let v2 = workflow(|ctx: Ctx, _: Value| async move {
        let n: u32 = ctx.step("charge", (), |()| async { Ok(7) }).await?;
        let _: bool = ctx.step("audit", (), |()| async { Ok(true) }).await?;
        let hook = ctx
            .create_hook::<String>(HookOptions::new().token("ship"))
            .await?;
        Ok(json!({ "n": n, "t": hook.await? }))
    });
    let err = check(&v2, &sleeping_v1());
    assert_eq!(
        err,
        ReplayError::Nondeterminism {
            position: 2,
            seq: 3,
            recorded: "a hook with token \"ship\"".into(),
            issued: "step \"audit\"".into(),
        }
    );
}

#[test]
fn a_hook_replaced_by_a_timer() {
    let v2 = workflow(|ctx: Ctx, _: Value| async move {
        let n: u32 = ctx.step("charge", (), |()| async { Ok(7) }).await?;
        ctx.sleep(Duration::from_secs(5)).await?;
        Ok(json!(n))
    });
    let err = check(&v2, &sleeping_v1());
    assert_eq!(
        err,
        ReplayError::Nondeterminism {
            position: 2,
            seq: 3,
            recorded: "a hook with token \"ship\"".into(),
            issued: "a timer".into(),
        }
    );
}

#[test]
fn a_timer_replaced_by_a_step_after_the_payload() {
    let v2 = workflow(|ctx: Ctx, _: Value| async move {
        let n: u32 = ctx.step("charge", (), |()| async { Ok(7) }).await?;
        let hook = ctx
            .create_hook::<String>(HookOptions::new().token("ship"))
            .await?;
        let t = hook.await?;
        let _: bool = ctx.step("notify", (), |()| async { Ok(true) }).await?;
        Ok(json!({ "n": n, "t": t }))
    });
    let err = check(&v2, &sleeping_v1());
    assert_eq!(
        err,
        ReplayError::Nondeterminism {
            position: 4,
            seq: 6,
            recorded: "a timer".into(),
            issued: "step \"notify\"".into(),
        }
    );
}

#[test]
fn a_removed_hook_leaves_its_payload_unexplained() {
    // v2 no longer creates the hook and waits on nothing the journal has.
    let v2 = workflow(|ctx: Ctx, _: Value| async move {
        let _: u32 = ctx.step("charge", (), |()| async { Ok(7) }).await?;
        std::future::pending::<()>().await;
        Ok(Value::Null)
    });
    match check(&v2, &sleeping_v1()) {
        ReplayError::Unexpected { seq, message } => {
            assert_eq!(seq, 3);
            assert!(message.contains("hook #2"), "{message}");
        }
        other => panic!("expected an unexpected entry, got {other:?}"),
    }
}

#[test]
fn code_that_now_returns_earlier_is_detected() {
    // v2 returns after the payload: the journal's timer (command #4, entry 6) is unexplained.
    let v2 = workflow(|ctx: Ctx, _: Value| async move {
        let n: u32 = ctx.step("charge", (), |()| async { Ok(7) }).await?;
        let hook = ctx
            .create_hook::<String>(HookOptions::new().token("ship"))
            .await?;
        Ok(json!({ "n": n, "tracking": hook.await? }))
    });
    let err = check(&v2, &sleeping_v1());
    match &err {
        ReplayError::Unexpected { seq, message } => {
            assert_eq!(*seq, 6);
            assert!(
                message.contains("returns after 3 commands")
                    && message.contains("a timer as command #4"),
                "{message}"
            );
        }
        other => panic!("expected an unexpected entry, got {other:?}"),
    }
    assert!(err
        .to_string()
        .starts_with("non-determinism at journal entry 6: "));
}

#[test]
fn a_run_that_ended_normally_still_replays() {
    // Records after the end are only a problem when the code never issued them: a completed
    // v1 run replays under v1.
    let mut sim = Sim::start(&workflow(v1), Value::Null);
    sim.settle();
    sim.resume_token("ship", json!("T-1")).expect("resume");
    sim.settle();
    sim.fire_due_timers(60_000);
    sim.settle();
    let r = replay(&workflow(v1), sim.journal()).expect("replay");
    assert!(
        matches!(r.progress, Progress::Finished(_)),
        "{:?}",
        r.progress
    );
}
