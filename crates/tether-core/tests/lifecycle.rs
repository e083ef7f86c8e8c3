//! A run's beginning and end: input decoding, immediate completion, failures, and what a
//! finished run still asks of its host (nothing).

mod harness;

use harness::{assert_trio, workflow, Sim, RUN_ID};
use serde::Deserialize;
use serde_json::{json, Value};
use tether_core::{Ctx, EventBody, Progress, WorkflowError};

#[derive(Deserialize)]
struct Order {
    id: u32,
}

#[test]
fn a_workflow_without_commands_finishes_at_once() {
    let wf = workflow(|ctx: Ctx, order: Order| async move {
        Ok(json!({ "run": ctx.run_id(), "order": order.id }))
    });
    let sim = Sim::start(&wf, json!({ "id": 9 }));
    assert_eq!(
        sim.progress(),
        &Progress::Finished(EventBody::RunCompleted {
            output: json!({ "run": RUN_ID, "order": 9 })
        })
    );
    assert_eq!(sim.machine().run_id(), RUN_ID);
    assert_eq!(sim.machine().last_seq(), 1);
    let sim = assert_trio(&wf, json!({ "id": 9 }), |_| {});
    assert_eq!(sim.kinds(), ["run_started", "run_completed"]);
}

#[test]
fn invalid_input_fails_the_run() {
    let wf = workflow(|_: Ctx, order: Order| async move { Ok(order.id) });
    let sim = assert_trio(&wf, json!({ "id": "nine" }), |_| {});
    match sim.end() {
        EventBody::RunFailed { error } => {
            assert_eq!(error.code, "decode_error");
            assert!(error.message.contains("invalid input"), "{}", error.message);
        }
        other => panic!("expected run_failed, got {other:?}"),
    }
}

#[test]
fn a_workflow_error_fails_the_run_with_its_code() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let _: u32 = ctx.step("check", (), |()| async { Ok(1) }).await?;
        Err::<(), _>(WorkflowError::with_code("out_of_stock", "no more widgets"))
    });
    let sim = assert_trio(&wf, Value::Null, |_| {});
    assert_eq!(
        sim.end(),
        &EventBody::RunFailed {
            error: tether_core::ErrorInfo::new("out_of_stock", "no more widgets")
        }
    );
}

#[test]
fn a_step_issued_as_the_workflow_returns_is_not_run() {
    // The step future is dropped unawaited: the run ends in the same poll, and a finished run
    // has nothing left to run.
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let _never_awaited = ctx.step("fire_and_forget", (), |()| async { Ok(1u32) });
        Ok("done")
    });
    let mut sim = Sim::start(&wf, Value::Null);
    assert!(matches!(sim.progress(), Progress::Finished(_)));
    assert_eq!(sim.queued_steps(), []);
    assert!(sim.machine_mut().take_step_tasks().is_empty());
    sim.settle();
    assert_eq!(sim.output(), json!("done"));
}
