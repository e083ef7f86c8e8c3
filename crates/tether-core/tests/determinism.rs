//! Non-determinism detection and journal hygiene: a workflow whose code changed in a way the
//! journal contradicts is stopped with a `ReplayError` naming where and how; duplicates of
//! entries already applied are harmless.

mod harness;

use std::time::Duration;

use harness::{replay, workflow, Sim};
use serde_json::{json, Value};
use tether_core::{
    Ctx, ErasedWorkflow, Event, EventBody, HookOptions, Progress, ReplayError, WorkflowError,
};

use std::sync::Arc;

/// v1 of an order workflow: charge, then wait for the shipping confirmation.
async fn order_v1(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let charged: u32 = ctx.step("charge", (), |()| async { Ok(100) }).await?;
    let hook = ctx
        .create_hook::<String>(HookOptions::new().token("ship:1"))
        .await?;
    let tracking = hook.await?;
    Ok(json!({ "charged": charged, "tracking": tracking }))
}

/// A v1 run suspended on its hook: `[RunStarted, StepCompleted(1), HookCreated(2)]`.
fn suspended_v1() -> Vec<Event> {
    let mut sim = Sim::start(&workflow(order_v1), Value::Null);
    sim.settle();
    assert_eq!(
        sim.kinds(),
        ["run_started", "step_completed", "hook_created"]
    );
    sim.journal().to_vec()
}

fn nondeterminism(wf: &Arc<dyn ErasedWorkflow>, journal: &[Event]) -> (u32, String, String) {
    match replay(wf, journal) {
        Err(ReplayError::Nondeterminism {
            position,
            recorded,
            issued,
            ..
        }) => (position, recorded, issued),
        Err(other) => panic!("expected a non-determinism error, got {other:?}"),
        Ok(r) => panic!("expected a non-determinism error, replay succeeded: {r:?}"),
    }
}

#[test]
fn the_unchanged_workflow_replays() {
    let r = replay(&workflow(order_v1), &suspended_v1()).expect("replay");
    assert_eq!(r.progress, Progress::Waiting);
    assert!(r.outbox.is_empty());
    assert!(r.step_tasks.is_empty());
}

#[test]
fn a_renamed_step_is_detected() {
    let v2 = workflow(|ctx: Ctx, _: Value| async move {
        let charged: u32 = ctx.step("charge_card", (), |()| async { Ok(100) }).await?;
        Ok(charged)
    });
    let err = replay(&v2, &suspended_v1()).unwrap_err();
    assert_eq!(
        err,
        ReplayError::Nondeterminism {
            position: 1,
            seq: 2,
            recorded: "step \"charge\"".into(),
            issued: "step \"charge_card\"".into()
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "non-determinism at command #1 (journal entry 2): the journal recorded step \"charge\", \
             but the code now issues step \"charge_card\"; {}",
            tether_core::error::NONDETERMINISM_HINT
        )
    );
    assert_eq!(err.to_info().code, "nondeterminism");
}

#[test]
fn a_step_replaced_by_a_sleep_is_detected() {
    let v2 = workflow(|ctx: Ctx, _: Value| async move {
        ctx.sleep(Duration::from_secs(1)).await?;
        Ok(())
    });
    assert_eq!(
        nondeterminism(&v2, &suspended_v1()),
        (1, "step \"charge\"".into(), "a timer".into())
    );
}

#[test]
fn a_changed_custom_token_is_detected() {
    let v2 = workflow(|ctx: Ctx, _: Value| async move {
        let _: u32 = ctx.step("charge", (), |()| async { Ok(100) }).await?;
        let hook = ctx
            .create_hook::<String>(HookOptions::new().token("shipping:1"))
            .await?;
        hook.await
    });
    assert_eq!(
        nondeterminism(&v2, &suspended_v1()),
        (
            2,
            "a hook with token \"ship:1\"".into(),
            "a hook with token \"shipping:1\"".into()
        )
    );
}

#[test]
fn a_custom_token_replaced_by_a_generated_one_is_detected() {
    let v2 = workflow(|ctx: Ctx, _: Value| async move {
        let _: u32 = ctx.step("charge", (), |()| async { Ok(100) }).await?;
        let hook = ctx.create_hook::<String>(HookOptions::new()).await?;
        hook.await
    });
    assert_eq!(
        nondeterminism(&v2, &suspended_v1()),
        (
            2,
            "a hook with token \"ship:1\"".into(),
            "a hook with a generated token".into()
        )
    );
}

#[test]
fn an_extra_command_is_detected() {
    let v2 = workflow(|ctx: Ctx, _: Value| async move {
        let _: u32 = ctx.step("charge", (), |()| async { Ok(100) }).await?;
        let _audit = ctx.now(); // new in v2
        let hook = ctx
            .create_hook::<String>(HookOptions::new().token("ship:1"))
            .await?;
        hook.await
    });
    assert_eq!(
        nondeterminism(&v2, &suspended_v1()),
        (2, "a hook with token \"ship:1\"".into(), "ctx.now()".into())
    );
}

#[test]
fn a_missing_command_is_detected() {
    // v2 dropped the step: the hook now comes first.
    let v2 = workflow(|ctx: Ctx, _: Value| async move {
        let hook = ctx
            .create_hook::<String>(HookOptions::new().token("ship:1"))
            .await?;
        hook.await
    });
    assert_eq!(
        nondeterminism(&v2, &suspended_v1()),
        (
            1,
            "step \"charge\"".into(),
            "a hook with token \"ship:1\"".into()
        )
    );
}

#[test]
fn drawn_values_are_checked_by_kind() {
    let v1 = workflow(|ctx: Ctx, _: Value| async move {
        let r = ctx.random();
        ctx.sleep(Duration::from_secs(1)).await?;
        Ok(r)
    });
    let mut sim = Sim::start(&v1, Value::Null);
    sim.settle();
    let v2 = workflow(|ctx: Ctx, _: Value| async move {
        let u = ctx.uuid();
        ctx.sleep(Duration::from_secs(1)).await?;
        Ok(u.to_string())
    });
    assert_eq!(
        nondeterminism(&v2, sim.journal()),
        (1, "ctx.random()".into(), "ctx.uuid()".into())
    );
}

#[test]
fn code_added_after_the_current_position_is_fine() {
    // v2 does more after the hook; the suspended v1 run continues under v2.
    let v2 = workflow(|ctx: Ctx, _: Value| async move {
        let charged: u32 = ctx.step("charge", (), |()| async { Ok(100) }).await?;
        let hook = ctx
            .create_hook::<String>(HookOptions::new().token("ship:1"))
            .await?;
        let tracking = hook.await?;
        let notified: bool = ctx.step("notify", (), |()| async { Ok(true) }).await?;
        Ok(json!({ "charged": charged, "tracking": tracking, "notified": notified }))
    });
    let r = replay(&v2, &suspended_v1()).expect("replay");
    assert_eq!(r.progress, Progress::Waiting);
    assert!(r.outbox.is_empty());
}

#[test]
fn a_hook_the_code_no_longer_creates_is_unexpected() {
    let mut sim = Sim::start(&workflow(order_v1), Value::Null);
    sim.settle();
    sim.resume_token("ship:1", json!("TRACK-1")).unwrap();
    sim.settle();
    // v2 charges and then waits on something that is not a command at all.
    let v2 = workflow(|ctx: Ctx, _: Value| async move {
        let _: u32 = ctx.step("charge", (), |()| async { Ok(100) }).await?;
        std::future::pending::<()>().await;
        Ok(())
    });
    match replay(&v2, sim.journal()) {
        Err(ReplayError::Unexpected { seq, message }) => {
            assert_eq!(seq, 3, "the hook_created entry");
            assert!(message.contains("hook #2"), "{message}");
        }
        other => panic!("expected an unexpected-entry error, got {other:?}"),
    }
}

#[test]
fn a_payload_for_a_hook_that_does_not_exist_is_unexpected() {
    let wf = workflow(order_v1);
    let mut sim = Sim::start(&wf, Value::Null);
    sim.settle();
    // A payload addressed to command #7, which this run never created.
    let err = sim
        .push(EventBody::HookReceived {
            hook_cmd: 7,
            payload: json!("stray"),
        })
        .unwrap_err();
    assert_eq!(
        err,
        ReplayError::Unexpected {
            seq: 4,
            message: "a payload arrived for hook #7 but the code did not create that hook".into()
        }
    );
    // Replay stops at the same entry.
    assert_eq!(replay(&wf, sim.journal()).unwrap_err(), err);
}

#[test]
fn a_journal_must_start_with_run_started() {
    let wf = workflow(order_v1);
    let journal = [Event {
        seq: 1,
        at_ms: 0,
        body: EventBody::TimerFired { cmd: 1 },
    }];
    assert!(matches!(
        replay(&wf, &journal),
        Err(ReplayError::Corrupt(_))
    ));
    assert!(matches!(replay(&wf, &[]), Err(ReplayError::Corrupt(_))));
}

#[test]
fn a_changed_result_type_fails_the_replayed_run_with_a_decode_error() {
    // v1 journaled a string; v2 reads the same step as a number.
    let v1 = workflow(|ctx: Ctx, _: Value| async move {
        let s: String = ctx
            .step("lookup", (), |()| async { Ok("n/a".to_string()) })
            .await?;
        ctx.sleep(Duration::from_secs(1)).await?;
        Ok(s)
    });
    let mut sim = Sim::start(&v1, Value::Null);
    sim.settle();
    let v2 = workflow(|ctx: Ctx, _: Value| async move {
        let n: u32 = ctx.step("lookup", (), |()| async { Ok(0) }).await?;
        Ok(n)
    });
    // Up to the step's result, the commands match: v2 fails on the value it reads.
    let r = replay(&v2, &sim.journal()[..2]).expect("the commands still match");
    match r.progress {
        Progress::Finished(EventBody::RunFailed { error }) => {
            assert_eq!(error.code, "decode_error");
            assert!(error.message.contains("lookup"), "{}", error.message);
        }
        other => panic!("expected run_failed, got {other:?}"),
    }
    // With the timer v1 started after it journaled, v2's early return contradicts the journal:
    // the run is blocked (and can continue under fixed code), not failed for good.
    match replay(&v2, sim.journal()) {
        Err(ReplayError::Unexpected { seq, message }) => {
            assert_eq!(seq, 3);
            assert!(message.contains("a timer as command #2"), "{message}");
        }
        other => panic!("expected an unexpected entry, got {other:?}"),
    }
}

// --- duplicates --------------------------------------------------------------------------------

/// Receive two payloads.
async fn two_payloads(ctx: Ctx, _: Value) -> Result<Vec<u32>, WorkflowError> {
    let mut hook = ctx
        .create_hook::<u32>(HookOptions::new().token("two"))
        .await?;
    Ok(vec![hook.recv().await?, hook.recv().await?])
}

#[test]
fn an_entry_fed_twice_is_applied_once() {
    let wf = workflow(two_payloads);
    let mut sim = Sim::start(&wf, Value::Null);
    sim.settle();
    sim.resume(1, json!(1));
    let seq = sim.journal().len() as u64;
    assert_eq!(sim.machine().last_seq(), seq);

    // The same notification again (and an older one): ignored, nothing issued.
    assert_eq!(sim.feed_again(seq), Ok(Progress::Waiting));
    assert_eq!(sim.feed_again(2), Ok(Progress::Waiting));
    assert_eq!(sim.machine().last_seq(), seq);
    assert!(sim.machine_mut().take_outbox().is_empty());

    sim.resume(1, json!(2));
    sim.settle();
    // Had the duplicate been applied, the second payload would have been 1 again.
    assert_eq!(sim.output(), json!([1, 2]));
}

#[test]
fn a_duplicate_feed_after_the_end_is_ignored() {
    let wf = workflow(two_payloads);
    let mut sim = Sim::start(&wf, Value::Null);
    sim.settle();
    sim.resume(1, json!(1));
    sim.resume(1, json!(2));
    sim.settle();
    let end = sim.end().clone();
    let last = sim.journal().len() as u64;
    assert_eq!(sim.feed_again(last), Ok(Progress::Finished(end)));
}

#[test]
fn the_first_result_of_a_step_wins() {
    // The step result lands twice (it ran again after a crash lost the first acknowledgement).
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let step = ctx.step("pick", (), |()| async { Ok(0u32) });
        ctx.sleep(Duration::from_secs(1)).await?; // both results land during the sleep
        let picked = step.await?;
        Ok(picked)
    });
    let mut sim = Sim::start(&wf, Value::Null);
    sim.commit_outbox();
    let task = sim.drop_steps().pop().expect("the step");
    let result = |output: u32| EventBody::StepCompleted {
        cmd: task.cmd,
        name: task.name.clone(),
        output: json!(output),
        attempts: 1,
    };
    assert_eq!(sim.push(result(1)), Ok(Progress::Waiting));
    assert_eq!(sim.push(result(2)), Ok(Progress::Waiting));
    sim.fire_due_timers(1_000);
    sim.settle();
    assert_eq!(sim.output(), json!(1));

    // Replay agrees, and so does every prefix.
    sim.check_full_replay();
    sim.check_every_prefix();
}

#[test]
fn a_late_duplicate_result_does_not_change_what_the_workflow_saw() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let first: u32 = ctx.step("pick", (), |()| async { Ok(0u32) }).await?;
        ctx.sleep(Duration::from_secs(1)).await?;
        Ok(first)
    });
    let mut sim = Sim::start(&wf, Value::Null);
    let task = sim.drop_steps().pop().expect("the step");
    for output in [5, 6] {
        sim.push(EventBody::StepCompleted {
            cmd: task.cmd,
            name: task.name.clone(),
            output: json!(output),
            attempts: 1,
        })
        .unwrap();
    }
    sim.settle();
    sim.fire_due_timers(1_000);
    sim.settle();
    assert_eq!(sim.output(), json!(5));
    sim.check_full_replay();
    sim.check_every_prefix();
}
