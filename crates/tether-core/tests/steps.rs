//! Steps: a side effect runs outside the workflow, its result is journaled, and replay reads
//! the result instead of running the body again. Retries happen in the step runner; only the
//! final outcome (`StepCompleted` / `StepFailed`) reaches the journal.

mod harness;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use harness::{assert_trio, workflow, Sim};
use serde_json::{json, Value};
use tether_core::{
    join, Ctx, ErrorInfo, EventBody, Progress, RetryPolicy, StepError, WorkflowError,
};

/// A counter shared by a workflow's step body and the test.
fn counter() -> Arc<AtomicU32> {
    Arc::new(AtomicU32::new(0))
}

#[test]
fn steps_complete_and_replay_without_running_again() {
    let calls = counter();
    let wf = workflow({
        let calls = calls.clone();
        move |ctx: Ctx, input: Value| {
            let calls = calls.clone();
            async move {
                let base = input["base"].as_u64().unwrap_or(0);
                let sum: u64 = ctx
                    .step("add", calls.clone(), move |calls| async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        Ok(base + 3)
                    })
                    .await?;
                let greeting: String = ctx
                    .step(
                        "greet",
                        (),
                        move |()| async move { Ok(format!("sum is {sum}")) },
                    )
                    .await?;
                Ok(json!({ "sum": sum, "greeting": greeting }))
            }
        }
    });

    let sim = assert_trio(&wf, json!({ "base": 2 }), |_| {});

    assert_eq!(sim.output(), json!({ "sum": 5, "greeting": "sum is 5" }));
    assert_eq!(
        sim.kinds(),
        [
            "run_started",
            "step_completed",
            "step_completed",
            "run_completed"
        ]
    );
    assert_eq!(
        sim.journal()[1].body,
        EventBody::StepCompleted {
            cmd: 1,
            name: "add".into(),
            output: json!(5),
            attempts: 1
        }
    );
    // Only the live run ran the body: every replay read the journaled result.
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn a_step_is_only_issued_once_its_predecessor_has_a_result() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let a: u32 = ctx.step("a", (), |()| async { Ok(1) }).await?;
        let b: u32 = ctx
            .step("b", (), move |()| async move { Ok(a + 1) })
            .await?;
        Ok(b)
    });
    let mut sim = Sim::start(&wf, Value::Null);
    assert_eq!(sim.queued_steps(), [(1, "a".to_string())]);
    assert_eq!(sim.machine().steps_in_flight(), 1);
    assert_eq!(sim.progress(), &Progress::Waiting);

    sim.run_step("a");
    assert_eq!(sim.queued_steps(), [(2, "b".to_string())]);
    sim.settle();
    assert_eq!(sim.output(), json!(2));
    assert_eq!(sim.machine().steps_in_flight(), 0);
}

#[test]
fn retryable_failures_are_retried_until_success() {
    let attempts = counter();
    let wf = workflow({
        let attempts = attempts.clone();
        move |ctx: Ctx, _: Value| {
            let attempts = attempts.clone();
            async move {
                let v: String = ctx
                    .step("flaky", attempts.clone(), move |attempts| async move {
                        let n = attempts.fetch_add(1, Ordering::SeqCst) + 1;
                        if n < 3 {
                            Err(StepError::retryable(format!("attempt {n} timed out")))
                        } else {
                            Ok(format!("ok on attempt {n}"))
                        }
                    })
                    .await?;
                Ok(v)
            }
        }
    });

    let sim = assert_trio(&wf, Value::Null, |_| {});

    assert_eq!(sim.output(), json!("ok on attempt 3"));
    assert_eq!(
        sim.entries("step_completed"),
        [&EventBody::StepCompleted {
            cmd: 1,
            name: "flaky".into(),
            output: json!("ok on attempt 3"),
            attempts: 3
        }]
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
}

#[test]
fn exhausted_retries_surface_as_step_failed_and_can_be_handled() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let policy = RetryPolicy {
            maximum_attempts: 2,
            ..RetryPolicy::default()
        };
        let r: Result<u32, WorkflowError> = ctx
            .step_with("always_down", policy, (), |()| async {
                Err(StepError::retryable("service unavailable"))
            })
            .await;
        match r {
            Err(WorkflowError::StepFailed { name, message }) => {
                // The workflow goes on: a compensation step.
                let fallback: String = ctx
                    .step("fallback", (), |()| async { Ok("cached".to_string()) })
                    .await?;
                Ok(json!({ "failed": name, "why": message, "fallback": fallback }))
            }
            other => Err(WorkflowError::msg(format!("unexpected {other:?}"))),
        }
    });

    let sim = assert_trio(&wf, Value::Null, |_| {});

    assert_eq!(
        sim.output(),
        json!({ "failed": "always_down", "why": "service unavailable", "fallback": "cached" })
    );
    assert_eq!(
        sim.journal()[1].body,
        EventBody::StepFailed {
            cmd: 1,
            name: "always_down".into(),
            error: ErrorInfo::new("step_failed", "service unavailable"),
            attempts: 2
        }
    );
}

#[test]
fn a_fatal_error_stops_retries_and_fails_the_run() {
    let attempts = counter();
    let wf = workflow({
        let attempts = attempts.clone();
        move |ctx: Ctx, _: Value| {
            let attempts = attempts.clone();
            async move {
                let policy = RetryPolicy {
                    maximum_attempts: 5,
                    ..RetryPolicy::default()
                };
                let charged: bool = ctx
                    .step_with(
                        "charge",
                        policy,
                        attempts.clone(),
                        move |attempts| async move {
                            attempts.fetch_add(1, Ordering::SeqCst);
                            Err(StepError::fatal("card declined"))
                        },
                    )
                    .await?;
                Ok(charged)
            }
        }
    });

    let sim = assert_trio(&wf, Value::Null, |_| {});

    assert_eq!(
        attempts.load(Ordering::SeqCst),
        1,
        "a fatal error is not retried"
    );
    assert_eq!(
        sim.journal()[1].body,
        EventBody::StepFailed {
            cmd: 1,
            name: "charge".into(),
            error: ErrorInfo::new("step_failed", "card declined"),
            attempts: 1
        }
    );
    let expected = WorkflowError::StepFailed {
        name: "charge".into(),
        message: "card declined".into(),
    };
    assert_eq!(
        sim.end(),
        &EventBody::RunFailed {
            error: expected.to_info()
        }
    );
    assert_eq!(expected.to_info().code, "step_failed");
    assert_eq!(
        expected.to_info().message,
        "step \"charge\" failed: card declined"
    );
}

#[test]
fn the_workflow_sees_the_exact_step_failed_error() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let r: Result<u32, WorkflowError> = ctx
            .step_with("charge", RetryPolicy::none(), (), |()| async {
                Err(StepError::fatal("card declined"))
            })
            .await;
        // Hand the error out as the output, to compare it outside.
        Ok(format!("{:?}", r.err()))
    });
    let sim = assert_trio(&wf, Value::Null, |_| {});
    let expected = Some(WorkflowError::StepFailed {
        name: "charge".into(),
        message: "card declined".into(),
    });
    assert_eq!(sim.output(), json!(format!("{expected:?}")));
}

#[test]
fn a_step_in_flight_at_a_crash_runs_again_and_the_journal_keeps_one_result() {
    let calls = counter();
    let wf = workflow({
        let calls = calls.clone();
        move |ctx: Ctx, _: Value| {
            let calls = calls.clone();
            async move {
                let n: u32 = ctx
                    .step("send_email", calls.clone(), move |calls| async move {
                        Ok(calls.fetch_add(1, Ordering::SeqCst) + 1)
                    })
                    .await?;
                Ok(n)
            }
        }
    });
    let mut sim = Sim::start(&wf, Value::Null);
    // The worker dies while running the step: no result is journaled.
    let lost = sim.drop_steps();
    assert_eq!(lost.len(), 1);

    // A new worker replays the journal ([RunStarted]) and is asked to run the step again.
    let mut restarted = sim.replay_prefix(sim.journal().len()).expect("replay");
    assert_eq!(restarted.progress, Progress::Waiting);
    assert_eq!(restarted.step_tasks.len(), 1);
    assert_eq!(restarted.step_tasks[0].cmd, 1);
    assert_eq!(restarted.step_tasks[0].name, "send_email");
    let result = harness::execute(&restarted.step_tasks[0]);
    let event = tether_core::Event {
        seq: 2,
        at_ms: harness::START_MS,
        body: result,
    };
    let progress = restarted.machine.feed(&event).expect("feed");
    assert_eq!(
        progress,
        Progress::Finished(EventBody::RunCompleted { output: json!(1) })
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn joined_steps_complete_in_any_order() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let (a, b) = join(
            ctx.step("slow", (), |()| async { Ok("slow done".to_string()) }),
            ctx.step("fast", (), |()| async { Ok("fast done".to_string()) }),
        )
        .await;
        Ok(vec![a?, b?])
    });

    let sim = assert_trio(&wf, Value::Null, |sim| {
        assert_eq!(
            sim.queued_steps(),
            [(1, "slow".to_string()), (2, "fast".to_string())]
        );
        sim.run_step("fast");
        assert_eq!(sim.progress(), &Progress::Waiting);
        sim.run_step("slow");
    });

    assert_eq!(sim.output(), json!(["slow done", "fast done"]));
    assert_eq!(
        sim.kinds(),
        [
            "run_started",
            "step_completed",
            "step_completed",
            "run_completed"
        ]
    );
    // Journal order is completion order; command indices are program order.
    assert_eq!(sim.journal()[1].body.command_index(), Some(2));
    assert_eq!(sim.journal()[2].body.command_index(), Some(1));
}
