//! Child runs: `start_child`, `call` and the handle's result, fresh, replayed to completion
//! and replayed up to each suspension. The store's part (creating the child, delivering its
//! end) is played by hand: `ChildEnded` is a delivery like a payload.

mod harness;

use harness::{assert_trio, replay, workflow, Sim, RUN_ID};
use serde_json::{json, Value};
use tether_core::{
    child_run_id, join_all, ChildOptions, Ctx, ErrorInfo, EventBody, Progress, ReplayError,
    RunStatus, WorkflowError,
};

fn completed(child_cmd: u32, output: Value) -> EventBody {
    EventBody::ChildEnded {
        child_cmd,
        status: RunStatus::Completed,
        output: Some(output),
        error: None,
    }
}

async fn caller(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let out: Value = ctx.call("steps", &json!({"n": 3})).await?;
    Ok(json!({ "child": out }))
}

#[test]
fn call_starts_one_child_with_a_deterministic_id_and_returns_its_output() {
    let wf = workflow(caller);
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        assert_eq!(sim.progress(), &Progress::Waiting);
        assert_eq!(
            sim.entries("child_started"),
            vec![&EventBody::ChildStarted {
                cmd: 1,
                child_run_id: format!("{RUN_ID}.c1"),
                workflow: "steps".into(),
                input: json!({"n": 3}),
                detached: false,
            }]
        );
        sim.push(completed(1, json!({"steps": 3}))).unwrap();
    });
    assert_eq!(sim.output(), json!({"child": {"steps": 3}}));
    assert_eq!(child_run_id(RUN_ID, 1, 1), format!("{RUN_ID}.c1"));
}

async fn fan_out(ctx: Ctx, n: u64) -> Result<Value, WorkflowError> {
    let handles: Vec<_> = (0..n)
        .map(|i| ctx.start_child::<Value>("steps", &json!({ "n": i })))
        .collect();
    let ids: Vec<String> = handles.iter().map(|h| h.run_id().to_string()).collect();
    let results = join_all(handles.into_iter().map(|h| h.result())).await;
    let mut total = 0;
    for r in results {
        total += r?["steps"].as_u64().unwrap_or(0);
    }
    Ok(json!({ "ids": ids, "steps": total }))
}

#[test]
fn children_started_at_once_are_awaited_in_any_order_of_their_ends() {
    let wf = workflow(fan_out);
    let sim = assert_trio(&wf, json!(3), |sim| {
        sim.settle();
        assert_eq!(sim.entries("child_started").len(), 3);
        // They end out of order.
        sim.push(completed(2, json!({"steps": 1}))).unwrap();
        sim.push(completed(3, json!({"steps": 2}))).unwrap();
        assert_eq!(sim.progress(), &Progress::Waiting);
        sim.push(completed(1, json!({"steps": 0}))).unwrap();
    });
    let ids: Vec<String> = (1..=3).map(|c| format!("{RUN_ID}.c{c}")).collect();
    assert_eq!(sim.output(), json!({"ids": ids, "steps": 3}));
}

async fn tolerant(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    match ctx.call::<Value>("risky", &json!({})).await {
        Err(WorkflowError::ChildFailed {
            run_id,
            workflow,
            error,
        }) => Ok(json!({"run_id": run_id, "workflow": workflow, "code": error.code})),
        other => Ok(json!({"unexpected": format!("{other:?}")})),
    }
}

#[test]
fn a_failed_child_is_a_typed_error_with_its_code_and_message() {
    let wf = workflow(tolerant);
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        sim.push(EventBody::ChildEnded {
            child_cmd: 1,
            status: RunStatus::Failed,
            output: None,
            error: Some(ErrorInfo::new("card_declined", "no money")),
        })
        .unwrap();
    });
    assert_eq!(
        sim.output(),
        json!({"run_id": format!("{RUN_ID}.c1"), "workflow": "risky", "code": "card_declined"})
    );
    let e = WorkflowError::ChildFailed {
        run_id: "r.c1".into(),
        workflow: "risky".into(),
        error: ErrorInfo::new("card_declined", "no money"),
    };
    assert_eq!(e.code(), "child_failed");
    assert_eq!(
        e.to_string(),
        "child run r.c1 (risky) failed: card_declined: no money"
    );
}

#[test]
fn a_failed_child_fails_a_parent_that_uses_question_mark() {
    let wf = workflow(caller);
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        sim.push(EventBody::ChildEnded {
            child_cmd: 1,
            status: RunStatus::Cancelled,
            output: None,
            error: Some(ErrorInfo::new("cancelled", "stop")),
        })
        .unwrap();
    });
    let EventBody::RunFailed { error } = sim.end() else {
        panic!("the parent must fail: {:?}", sim.end());
    };
    assert_eq!(error.code, "child_failed");
    assert!(error.message.contains("cancelled: stop"), "{error:?}");
}

async fn detaching(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let h = ctx.start_child_with::<Value>("mailer", &json!({}), ChildOptions::new().detached());
    Ok(json!({ "child": h.run_id() }))
}

#[test]
fn a_detached_child_is_journaled_so_and_may_be_left_behind() {
    let wf = workflow(detaching);
    let sim = assert_trio(&wf, Value::Null, |_| {});
    assert!(matches!(
        sim.entries("child_started")[0],
        EventBody::ChildStarted { detached: true, .. }
    ));
    assert_eq!(sim.output(), json!({"child": format!("{RUN_ID}.c1")}));
}

#[test]
fn a_cancelled_parent_stops_waiting_for_its_child() {
    let wf = workflow(caller);
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        sim.cancel(Some("enough"));
    });
    assert!(matches!(sim.end(), EventBody::RunCancelled { .. }));
}

#[test]
fn an_end_for_a_child_the_code_did_not_start_is_a_replay_error() {
    let wf = workflow(caller);
    let mut sim = Sim::start(&wf, Value::Null);
    sim.settle();
    let err = sim.push(completed(7, json!(1))).unwrap_err();
    assert!(
        matches!(&err, ReplayError::Unexpected { message, .. } if message.contains("child run #7")),
        "{err:?}"
    );
}

async fn other_child(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    ctx.call("not_steps", &json!({"n": 3})).await
}

#[test]
fn starting_another_workflow_than_the_journal_is_non_determinism() {
    let mut sim = Sim::start(&workflow(caller), Value::Null);
    sim.settle();
    let err = replay(&workflow(other_child), sim.journal()).unwrap_err();
    assert!(
        matches!(&err, ReplayError::Nondeterminism { recorded, .. } if recorded.contains("\"steps\"")),
        "{err:?}"
    );
}

async fn bad_name(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    ctx.call::<Value>("", &json!({})).await
}

#[test]
fn a_child_with_an_empty_workflow_name_is_refused_without_a_command() {
    let sim = assert_trio(&workflow(bad_name), Value::Null, |_| {});
    assert!(sim.entries("child_started").is_empty());
    assert!(matches!(sim.end(), EventBody::RunFailed { .. }));
}

#[test]
fn child_entries_round_trip_as_json_and_old_fields_default() {
    let started: EventBody = serde_json::from_value(json!({
        "type": "child_started", "cmd": 2, "child_run_id": "p.c2", "workflow": "w", "input": 1
    }))
    .unwrap();
    assert!(matches!(
        started,
        EventBody::ChildStarted {
            detached: false,
            ..
        }
    ));
    assert_eq!(started.kind(), "child_started");
    assert_eq!(started.command_index(), Some(2));
    let ended = completed(2, json!("ok"));
    let v = serde_json::to_value(&ended).unwrap();
    assert_eq!(
        v,
        json!({"type": "child_ended", "child_cmd": 2, "status": "completed", "output": "ok"})
    );
    assert_eq!(serde_json::from_value::<EventBody>(v).unwrap(), ended);
    assert_eq!(ended.command_index(), None);
}
