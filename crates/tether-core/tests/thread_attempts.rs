//! Retried hook-thread attempts, non-determinism of thread commands, cancellation across
//! attempts.

#![allow(unused_imports)]

mod harness;
mod thread_support;

use std::sync::Arc;

use harness::{
    assert_trio, assert_trio_of, replay, replay_run, workflow, Sim, Store, Wait, RUN_ID, WORKFLOW,
};
use serde_json::{json, Value};
use tether_core::{
    Ctx, ErasedWorkflow, ErrorInfo, Event, EventBody, Progress, ReplayError, RetryPolicy,
    SpawnOptions, ThreadInfo, WorkflowError, ERROR_ENVELOPE,
};

use thread_support::*;

fn thread_started(retry: RetryPolicy) -> EventBody {
    EventBody::RunStarted {
        workflow: "flaky".into(),
        input: Value::Null,
        thread: Some(ThreadInfo {
            root_run: "root".into(),
            parent_run: "root".into(),
            retry,
            fail_signal: None,
        }),
    }
}

/// Fails until its third attempt; each attempt counts itself in the shared state.
async fn flaky(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let n = ctx.incr("tries", 1).await?;
    if n < 3 {
        return Err(WorkflowError::with_code("flaky", format!("try {n}")));
    }
    let k: Option<String> = ctx.get("k").await?;
    Ok(json!({ "tries": n, "k": k }))
}

#[test]
fn a_failed_attempt_runs_again_from_the_start() {
    let wf = workflow(flaky);
    let thread = Sim::start_run(
        &wf,
        "root.h1",
        thread_started(RetryPolicy::default()),
        Store::shared(),
    );
    assert_eq!(thread.machine().attempt(), 1);
    let sim = run_thread(thread);
    assert_eq!(
        sim.kinds(),
        [
            "run_started",
            "state_incr",
            "attempt_failed",
            "state_incr",
            "attempt_failed",
            "state_incr",
            "state_get",
            "run_completed"
        ]
    );
    // The same command, issued again each attempt and answered anew.
    let incrs: Vec<&EventBody> = sim.entries("state_incr");
    for (i, b) in incrs.iter().enumerate() {
        assert_eq!(
            *b,
            &EventBody::StateIncr {
                cmd: 1,
                key: "tries".into(),
                by: 1,
                value: Some(i as i64 + 1)
            }
        );
    }
    let failed: Vec<(u32, String)> = sim
        .entries("attempt_failed")
        .iter()
        .map(|b| match b {
            EventBody::AttemptFailed { attempt, error, .. } => (*attempt, error.message.clone()),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(failed, [(1, "try 1".into()), (2, "try 2".into())]);
    assert_eq!(sim.machine().attempt(), 3);
    assert_eq!(sim.output(), json!({ "tries": 3, "k": null }));
}

#[test]
fn a_thread_out_of_attempts_fails() {
    let wf = workflow(flaky);
    let thread = Sim::start_run(
        &wf,
        "root.h1",
        thread_started(RetryPolicy {
            maximum_attempts: 2,
            ..RetryPolicy::default()
        }),
        Store::shared(),
    );
    let sim = run_thread(thread);
    assert_eq!(
        sim.kinds(),
        [
            "run_started",
            "state_incr",
            "attempt_failed",
            "state_incr",
            "run_failed"
        ]
    );
    assert_eq!(
        sim.end(),
        &EventBody::RunFailed {
            error: ErrorInfo::new("flaky", "try 2")
        }
    );
}

fn at(seq: u64, body: EventBody) -> Event {
    Event {
        seq,
        at_ms: harness::START_MS + seq,
        body,
    }
}

fn attempt_failed(attempt: u32) -> EventBody {
    EventBody::AttemptFailed {
        attempt,
        error: ErrorInfo::new("flaky", format!("try {attempt}")),
        retry_at_ms: 0,
    }
}

fn incr(value: i64) -> EventBody {
    EventBody::StateIncr {
        cmd: 1,
        key: "tries".into(),
        by: 1,
        value: Some(value),
    }
}

#[test]
fn replay_uses_only_the_entries_after_the_last_attempt_failed() {
    let wf = workflow(flaky);
    // An earlier attempt's records may even contradict the code: they are not replayed.
    let earlier = EventBody::StateSet {
        cmd: 1,
        key: "other".into(),
        value: json!(0),
    };
    let mut journal = vec![
        at(1, thread_started(RetryPolicy::default())),
        at(2, earlier),
        at(3, attempt_failed(1)),
        at(4, incr(2)),
        at(5, attempt_failed(2)),
    ];

    // Cut right after the last failure: a fresh attempt issues its first command again.
    let r = replay_run("root.h1", &wf, &journal).expect("replay");
    assert_eq!(r.machine.attempt(), 3);
    assert_eq!(r.progress, Progress::Waiting);
    assert_eq!(
        r.outbox,
        [EventBody::StateIncr {
            cmd: 1,
            key: "tries".into(),
            by: 1,
            value: None
        }]
    );
    assert_eq!(r.machine.last_seq(), 5);

    // With the third attempt's answers: they alone are replayed.
    journal.push(at(6, incr(3)));
    journal.push(at(
        7,
        EventBody::StateGet {
            cmd: 2,
            key: "k".into(),
            value: Some(json!("x")),
        },
    ));
    let r = replay_run("root.h1", &wf, &journal).expect("replay");
    assert_eq!(r.machine.attempt(), 3);
    assert!(r.outbox.is_empty(), "{:?}", r.outbox);
    assert_eq!(
        r.progress,
        Progress::Finished(EventBody::RunCompleted {
            output: json!({ "tries": 3, "k": "x" })
        })
    );

    // Without any failure it is the first attempt, and every entry counts.
    let r = replay_run(
        "root.h1",
        &wf,
        &[
            at(1, thread_started(RetryPolicy::default())),
            at(2, incr(1)),
        ],
    )
    .expect("replay");
    assert_eq!(r.machine.attempt(), 1);
    assert_eq!(
        r.progress,
        Progress::Finished(EventBody::RunFailed {
            error: ErrorInfo::new("flaky", "try 1")
        })
    );
}

// ---------------------------------------------------------------------------------------------
// Non-determinism
// ---------------------------------------------------------------------------------------------

/// A run suspended after one command of each kind: `[RunStarted, StateGet "a", StateIncr "n",
/// SignalSent "s", HookSpawned "greeter", SignalWaited "w"]`.
fn suspended_v1() -> Vec<Event> {
    let v1 = workflow(v1);
    let mut sim = Sim::start(&v1, Value::Null);
    sim.settle();
    assert_eq!(
        sim.kinds(),
        [
            "run_started",
            "state_get",
            "state_incr",
            "signal_sent",
            "hook_spawned",
            "signal_waited"
        ]
    );
    sim.journal().to_vec()
}

async fn v1(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let _: Option<Value> = ctx.get("a").await?;
    ctx.incr("n", 1).await?;
    ctx.signal("s", &1).await?;
    ctx.spawn_hook(SpawnOptions::new("greeter")).await?;
    ctx.wait_for::<Value>("w").await
}

#[test]
fn the_unchanged_workflow_replays() {
    let r = replay(&workflow(v1), &suspended_v1()).expect("replay");
    assert_eq!(r.progress, Progress::Waiting);
    assert!(r.outbox.is_empty());
}

#[test]
fn a_changed_state_key_is_detected() {
    let v2 = workflow(|ctx: Ctx, _: Value| async move {
        let _: Option<Value> = ctx.get("b").await?;
        Ok(())
    });
    let err = nondeterminism(&v2, &suspended_v1());
    assert_nondeterminism(&err, 1, "state get \"a\"", "state get \"b\"");

    let v2 = workflow(|ctx: Ctx, _: Value| async move {
        let _: Option<Value> = ctx.get("a").await?;
        ctx.incr("m", 1).await?;
        Ok(())
    });
    let err = nondeterminism(&v2, &suspended_v1());
    assert_nondeterminism(&err, 2, "state incr \"n\"", "state incr \"m\"");

    // Same key, another operation.
    let v2 = workflow(|ctx: Ctx, _: Value| async move {
        ctx.set("a", &1).await?;
        Ok(())
    });
    let err = nondeterminism(&v2, &suspended_v1());
    assert_nondeterminism(&err, 1, "state get \"a\"", "state set \"a\"");
}

#[test]
fn a_changed_signal_id_is_detected() {
    let v2 = workflow(|ctx: Ctx, _: Value| async move {
        let _: Option<Value> = ctx.get("a").await?;
        ctx.incr("n", 1).await?;
        ctx.signal("t", &1).await?;
        Ok(())
    });
    let err = nondeterminism(&v2, &suspended_v1());
    assert_nondeterminism(&err, 3, "signal \"s\"", "signal \"t\"");

    let v2 = workflow(|ctx: Ctx, _: Value| async move {
        let _: Option<Value> = ctx.get("a").await?;
        ctx.incr("n", 1).await?;
        ctx.signal("s", &1).await?;
        ctx.spawn_hook(SpawnOptions::new("greeter")).await?;
        ctx.wait_for::<Value>("x").await
    });
    let err = nondeterminism(&v2, &suspended_v1());
    assert_nondeterminism(&err, 5, "wait for signal \"w\"", "wait for signal \"x\"");
}

#[test]
fn a_changed_spawn_target_is_detected() {
    let v2 = workflow(|ctx: Ctx, _: Value| async move {
        let _: Option<Value> = ctx.get("a").await?;
        ctx.incr("n", 1).await?;
        ctx.signal("s", &1).await?;
        ctx.spawn_hook(SpawnOptions::new("enricher")).await?;
        Ok(())
    });
    let err = nondeterminism(&v2, &suspended_v1());
    assert_nondeterminism(
        &err,
        4,
        "spawn of hook \"greeter\"",
        "spawn of hook \"enricher\"",
    );
}

#[test]
fn a_cancel_requested_before_a_failed_attempt_still_cancels_the_next() {
    // The cancel request came in while the failing attempt was ending: the engine wrote
    // `AttemptFailed` after it. The request is the run's, not the attempt's.
    let journal = [
        at(1, thread_started(RetryPolicy::default())),
        at(2, incr(1)),
        at(
            3,
            EventBody::CancelRequested {
                reason: Some("stop".into()),
            },
        ),
        at(4, attempt_failed(1)),
    ];
    let r = replay_run("root.h1", &workflow(flaky), &journal).expect("replay");
    assert_eq!(r.machine.attempt(), 2);
    assert_eq!(
        r.progress,
        Progress::Finished(EventBody::RunCancelled {
            reason: Some("stop".into())
        })
    );
}
