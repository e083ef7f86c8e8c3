//! Hook threads, shared state and signals (the HotMesh `workflow.hook` model): `ctx.get/set/
//! incr/delete` on the run's namespace, `ctx.signal` / `ctx.wait_for`, `ctx.spawn_hook` and
//! `ctx.exec_hook`, and retried hook-thread attempts. The harness plays the store: it fills the
//! records' outputs in the commit (`StateGet.value`, `StateIncr.value`, `StateDelete.existed`,
//! `SignalSent.delivered_to`), keeps signals nobody waits for, and appends `SignalReceived`
//! right after a `SignalWaited` that finds a kept signal. Every scenario runs three ways
//! (fresh, replayed to completion, replayed up to each suspension then continued).

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

#[test]
fn get_set_incr_delete_are_answered_by_the_store() {
    let wf = workflow(state_ops);
    let sim = assert_trio(&wf, Value::Null, |_| {});
    assert_eq!(
        sim.output(),
        json!({
            "before": null, "after": "v1", "n": [2, 5, -5],
            "existed": true, "existed_again": false, "gone": null,
        })
    );
    // The journal holds what the store answered.
    let bodies: Vec<&EventBody> = sim.journal()[1..9].iter().map(|e| &e.body).collect();
    assert_eq!(
        bodies,
        [
            &EventBody::StateGet {
                cmd: 1,
                key: "k".into(),
                value: None
            },
            &EventBody::StateSet {
                cmd: 2,
                key: "k".into(),
                value: json!("v1")
            },
            &EventBody::StateGet {
                cmd: 3,
                key: "k".into(),
                value: Some(json!("v1"))
            },
            &EventBody::StateIncr {
                cmd: 4,
                key: "n".into(),
                by: 2,
                value: Some(2)
            },
            &EventBody::StateIncr {
                cmd: 5,
                key: "n".into(),
                by: 3,
                value: Some(5)
            },
            &EventBody::StateIncr {
                cmd: 6,
                key: "n".into(),
                by: -10,
                value: Some(-5)
            },
            &EventBody::StateDelete {
                cmd: 7,
                key: "k".into(),
                existed: true
            },
            &EventBody::StateDelete {
                cmd: 8,
                key: "k".into(),
                existed: false
            },
        ]
    );
    let store = sim.store();
    assert_eq!(store.state.get("n"), Some(&json!(-5)));
    assert_eq!(store.state.get("k"), None);
}

/// Read, suspend, read again: what another thread wrote meanwhile is seen by the second read
/// only, and replay returns what was read then, whatever the state holds now.
async fn read_twice(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let first: Option<String> = ctx.get("k").await?;
    let go: Value = ctx.wait_for("go").await?;
    let second: Option<String> = ctx.get("k").await?;
    let count = ctx.incr("count", 1).await?;
    Ok(json!({ "first": first, "go": go, "second": second, "count": count }))
}

#[test]
fn replay_returns_what_was_read_then() {
    let wf = workflow(read_twice);
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.store().state.insert("k".into(), json!("v1"));
        sim.store().state.insert("count".into(), json!(41));
        sim.settle();
        assert_eq!(sim.progress(), &Progress::Waiting);
        // Another thread of the namespace writes meanwhile.
        sim.store().state.insert("k".into(), json!("v2"));
        assert_eq!(sim.signal("go", json!(true)), Some(RUN_ID.to_string()));
    });
    let expected = json!({ "first": "v1", "go": true, "second": "v2", "count": 42 });
    assert_eq!(sim.output(), expected);

    // The state moves on; a replay of the journal still sees what was read then.
    sim.store().state.insert("k".into(), json!("v3"));
    sim.store().state.insert("count".into(), json!(0));
    let r = replay(&wf, sim.journal()).expect("replay");
    assert_eq!(r.progress, Progress::Finished(sim.end().clone()));
    assert_eq!(sim.output(), expected);
    assert!(r.outbox.is_empty());
}

#[test]
fn incr_on_a_non_integer_fails_and_leaves_the_value() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        ctx.set("k", &"text").await?;
        let err = ctx.incr("k", 1).await.unwrap_err();
        let still: Option<String> = ctx.get("k").await?;
        let counted = ctx.incr("n", 1).await?;
        Ok(json!({ "code": err.code(), "message": err.to_string(), "still": still, "n": counted }))
    });
    let sim = assert_trio(&wf, Value::Null, |_| {});
    let out = sim.output();
    assert_eq!(out["code"], "state_not_integer");
    assert!(out["message"].as_str().unwrap().contains("\"k\""), "{out}");
    assert_eq!(out["still"], "text");
    assert_eq!(out["n"], 1);
    assert_eq!(
        sim.entries("state_incr")[0],
        &EventBody::StateIncr {
            cmd: 2,
            key: "k".into(),
            by: 1,
            value: None
        }
    );
    assert_eq!(sim.store().state.get("k"), Some(&json!("text")));

    // Not caught, it fails the run with that code.
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        ctx.set("k", &json!({ "a": 1 })).await?;
        ctx.incr("k", 1).await
    });
    let sim = assert_trio(&wf, Value::Null, |_| {});
    match sim.end() {
        EventBody::RunFailed { error } => assert_eq!(error.code, "state_not_integer"),
        other => panic!("expected run_failed, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Signals
// ---------------------------------------------------------------------------------------------

#[test]
fn a_signal_nobody_waits_for_is_kept_until_a_wait_comes() {
    let sender = workflow(|ctx: Ctx, _: Value| async move {
        ctx.signal("s", &json!({ "n": 1 })).await?;
        ctx.signal("s", &json!({ "n": 2 })).await?;
        Ok(())
    });
    let sim = assert_trio(&sender, Value::Null, |_| {});
    assert_eq!(
        sim.entries("signal_sent"),
        [
            &EventBody::SignalSent {
                cmd: 1,
                signal_id: "s".into(),
                payload: json!({ "n": 1 }),
                delivered_to: None
            },
            &EventBody::SignalSent {
                cmd: 2,
                signal_id: "s".into(),
                payload: json!({ "n": 2 }),
                delivered_to: None
            }
        ]
    );
    assert_eq!(
        sim.store().kept_of("s"),
        [json!({ "n": 1 }), json!({ "n": 2 })]
    );

    // Another run of the namespace waits: it takes the kept signals oldest first, each once,
    // in the commit that registers each wait.
    let waiter = workflow(|ctx: Ctx, _: Value| async move {
        let a: Value = ctx.wait_for("s").await?;
        let b: Value = ctx.wait_for("s").await?;
        Ok(json!([a, b]))
    });
    let other = Sim::start_run(
        &waiter,
        "waiter-run",
        EventBody::RunStarted {
            workflow: WORKFLOW.into(),
            input: Value::Null,
            thread: None,
        },
        sim.shared_store(),
    );
    let other = assert_trio_of(other, |_| {});
    assert_eq!(other.output(), json!([{ "n": 1 }, { "n": 2 }]));
    assert_eq!(
        other.kinds(),
        [
            "run_started",
            "signal_waited",
            "signal_received",
            "signal_waited",
            "signal_received",
            "run_completed"
        ]
    );
    assert!(sim.store().kept.is_empty());
}

#[test]
fn a_signal_to_another_waiting_run_is_delivered_and_recorded() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        ctx.signal("s", &json!("hi")).await?;
        Ok(())
    });
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.store().waits.push(Wait {
            signal_id: "s".into(),
            run_id: "other-run".into(),
            cmd: 7,
        });
    });
    assert_eq!(
        sim.entries("signal_sent"),
        [&EventBody::SignalSent {
            cmd: 1,
            signal_id: "s".into(),
            payload: json!("hi"),
            delivered_to: Some("other-run".into())
        }]
    );
    let store = sim.store();
    assert!(store.waits.is_empty() && store.kept.is_empty());
    assert_eq!(
        store.deliveries,
        [(
            "other-run".to_string(),
            EventBody::SignalReceived {
                wait_cmd: 7,
                payload: json!("hi")
            }
        )]
    );
}

#[test]
fn a_run_signals_its_own_wait_in_one_commit() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let wait = ctx.wait_for::<u32>("self");
        ctx.signal("self", &7).await?;
        let got = wait.await?;
        Ok(got)
    });
    let sim = assert_trio(&wf, Value::Null, |_| {});
    assert_eq!(sim.output(), json!(7));
    let bodies: Vec<&EventBody> = sim.journal().iter().map(|e| &e.body).collect();
    assert_eq!(
        bodies[1..4],
        [
            &EventBody::SignalWaited {
                cmd: 1,
                signal_id: "self".into()
            },
            &EventBody::SignalSent {
                cmd: 2,
                signal_id: "self".into(),
                payload: json!(7),
                delivered_to: Some(RUN_ID.into())
            },
            &EventBody::SignalReceived {
                wait_cmd: 1,
                payload: json!(7)
            },
        ]
    );
}

async fn approve(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let prepared: String = ctx
        .step("prepare", (), |()| async { Ok("ready".into()) })
        .await?;
    let decision: Value = ctx.wait_for("approve").await?;
    Ok(json!({ "prepared": prepared, "decision": decision }))
}

#[test]
fn wait_for_before_the_signal() {
    let wf = workflow(approve);
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        assert_eq!(sim.progress(), &Progress::Waiting);
        assert_eq!(
            sim.store().waits,
            [Wait {
                signal_id: "approve".into(),
                run_id: RUN_ID.into(),
                cmd: 2
            }]
        );
        assert_eq!(
            sim.signal("approve", json!({ "ok": true })),
            Some(RUN_ID.into())
        );
    });
    assert_eq!(
        sim.output(),
        json!({ "prepared": "ready", "decision": { "ok": true } })
    );
    assert_eq!(
        sim.kinds(),
        [
            "run_started",
            "step_completed",
            "signal_waited",
            "signal_received",
            "run_completed"
        ]
    );
    assert!(sim.store().waits.is_empty());
}

#[test]
fn wait_for_after_the_signal() {
    let wf = workflow(approve);
    let sim = assert_trio(&wf, Value::Null, |sim| {
        // The signal comes while the run is busy with its step: nobody waits yet.
        assert_eq!(sim.queued_steps().len(), 1);
        assert_eq!(sim.signal("approve", json!({ "ok": false })), None);
        assert_eq!(sim.store().kept_of("approve"), [json!({ "ok": false })]);
        sim.run_steps();
        sim.commit_batch();
    });
    assert_eq!(
        sim.output(),
        json!({ "prepared": "ready", "decision": { "ok": false } })
    );
    // Registering the wait took the kept signal in the same commit.
    let e = sim.journal();
    assert_eq!(
        (&e[2].body, &e[3].body),
        (
            &EventBody::SignalWaited {
                cmd: 2,
                signal_id: "approve".into()
            },
            &EventBody::SignalReceived {
                wait_cmd: 2,
                payload: json!({ "ok": false })
            }
        )
    );
    assert_eq!(e[2].at_ms, e[3].at_ms);
    let store = sim.store();
    assert!(store.kept.is_empty() && store.waits.is_empty());
}

#[test]
fn several_waits_can_be_pending_at_once() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let (a, b) = tether_core::join(ctx.wait_for::<u32>("a"), ctx.wait_for::<u32>("b")).await;
        Ok(vec![a?, b?])
    });
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        assert_eq!(sim.store().waits.len(), 2);
        sim.signal("b", json!(2)).unwrap();
        assert_eq!(sim.progress(), &Progress::Waiting);
        sim.signal("a", json!(1)).unwrap();
    });
    assert_eq!(sim.output(), json!([1, 2]));
    let received: Vec<&EventBody> = sim.entries("signal_received");
    assert_eq!(
        received,
        [
            &EventBody::SignalReceived {
                wait_cmd: 2,
                payload: json!(2)
            },
            &EventBody::SignalReceived {
                wait_cmd: 1,
                payload: json!(1)
            }
        ]
    );
}
