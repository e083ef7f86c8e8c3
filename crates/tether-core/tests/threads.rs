//! Hook threads, shared state and signals (the HotMesh `workflow.hook` model): `ctx.get/set/
//! incr/delete` on the run's namespace, `ctx.signal` / `ctx.wait_for`, `ctx.spawn_hook` and
//! `ctx.exec_hook`, and retried hook-thread attempts. The harness plays the store: it fills the
//! records' outputs in the commit (`StateGet.value`, `StateIncr.value`, `StateDelete.existed`,
//! `SignalSent.delivered_to`), keeps signals nobody waits for, and appends `SignalReceived`
//! right after a `SignalWaited` that finds a kept signal. Every scenario runs three ways
//! (fresh, replayed to completion, replayed up to each suspension then continued).

mod harness;

use std::sync::Arc;

use harness::{
    assert_trio, assert_trio_of, replay, replay_run, workflow, Sim, Store, Wait, RUN_ID, WORKFLOW,
};
use serde_json::{json, Value};
use tether_core::{
    Ctx, ErasedWorkflow, ErrorInfo, Event, EventBody, Progress, ReplayError, RetryPolicy,
    SpawnOptions, ThreadInfo, WorkflowError, ERROR_ENVELOPE,
};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The hook function used throughout: reads `name`, writes `greeting`, counts itself in
/// `hook_runs`, and signals `{greeting, runs}` to `args.signal_id` when there is one.
async fn greeter(ctx: Ctx, args: Value) -> Result<Value, WorkflowError> {
    let name: String = ctx.get("name").await?.unwrap_or_default();
    let greeting = format!("hello {name}");
    ctx.set("greeting", &greeting).await?;
    let runs = ctx.incr("hook_runs", 1).await?;
    if let Some(signal_id) = args["signal_id"].as_str() {
        ctx.signal(signal_id, &json!({ "greeting": greeting, "runs": runs }))
            .await?;
    }
    Ok(json!({ "greeting": greeting, "runs": runs }))
}

/// Run a hook thread to its end three ways, retrying failed attempts.
fn run_thread(thread: Sim) -> Sim {
    assert_trio_of(thread, |t| {
        for _ in 0..10 {
            if t.is_finished() {
                break;
            }
            t.settle();
        }
    })
}

/// The `HookSpawned` entries of a journal.
fn spawns(journal: &[Event]) -> Vec<&EventBody> {
    journal
        .iter()
        .map(|e| &e.body)
        .filter(|b| matches!(b, EventBody::HookSpawned { .. }))
        .collect()
}

fn hook_id_of(body: &EventBody) -> &str {
    match body {
        EventBody::HookSpawned { hook_id, .. } => hook_id,
        other => panic!("expected hook_spawned, got {other:?}"),
    }
}

/// Exactly once: no replay of a journal that holds the spawn issues it again, and one cut
/// before the spawn was committed issues it with the same (deterministic) hook id, which the
/// store creates once.
fn assert_spawn_replays_once(wf: &Arc<dyn ErasedWorkflow>, sim: &Sim) {
    let journal = sim.journal();
    let recorded = spawns(journal);
    assert_eq!(recorded.len(), 1, "{sim:?}");
    let spawned_at = journal
        .iter()
        .position(|e| matches!(e.body, EventBody::HookSpawned { .. }))
        .expect("spawned")
        + 1;
    for n in 1..=journal.len() {
        let r = replay(wf, &journal[..n]).unwrap_or_else(|e| panic!("replay of {n}: {e}"));
        let issued: Vec<&EventBody> = r
            .outbox
            .iter()
            .filter(|b| matches!(b, EventBody::HookSpawned { .. }))
            .collect();
        if n >= spawned_at {
            assert!(
                issued.is_empty(),
                "replaying {n} entries spawned again: {issued:?}"
            );
        } else {
            for b in issued {
                assert_eq!(b, recorded[0], "replaying {n} entries");
            }
        }
    }
}

fn nondeterminism(wf: &Arc<dyn ErasedWorkflow>, journal: &[Event]) -> ReplayError {
    match replay(wf, journal) {
        Err(e @ ReplayError::Nondeterminism { .. }) => e,
        Err(other) => panic!("expected a non-determinism error, got {other:?}"),
        Ok(r) => panic!("expected a non-determinism error, replay succeeded: {r:?}"),
    }
}

fn assert_nondeterminism(err: &ReplayError, position: u32, recorded: &str, issued: &str) {
    assert_eq!(
        err,
        &ReplayError::Nondeterminism {
            position,
            recorded: recorded.into(),
            issued: issued.into(),
        }
    );
    let text = err.to_string();
    assert!(
        text.contains(recorded) && text.contains(issued),
        "{text:?} names both"
    );
    assert_eq!(err.to_info().code, "nondeterminism");
}

// ---------------------------------------------------------------------------------------------
// Shared state
// ---------------------------------------------------------------------------------------------

async fn state_ops(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let before: Option<String> = ctx.get("k").await?;
    ctx.set("k", &"v1").await?;
    let after: Option<String> = ctx.get("k").await?;
    let n1 = ctx.incr("n", 2).await?;
    let n2 = ctx.incr("n", 3).await?;
    let n3 = ctx.incr("n", -10).await?;
    let existed = ctx.delete("k").await?;
    let existed_again = ctx.delete("k").await?;
    let gone: Option<String> = ctx.get("k").await?;
    Ok(json!({
        "before": before, "after": after, "n": [n1, n2, n3],
        "existed": existed, "existed_again": existed_again, "gone": gone,
    }))
}

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
    let prepared: String = ctx.step("prepare", || async { Ok("ready".into()) }).await?;
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

// ---------------------------------------------------------------------------------------------
// spawn_hook
// ---------------------------------------------------------------------------------------------

async fn spawner(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    ctx.set("name", &"ada").await?;
    let hook_id = ctx
        .spawn_hook(
            SpawnOptions::new("greeter")
                .task_queue("hooks")
                .args(json!({ "signal_id": "greeted" })),
        )
        .await?;
    let signalled: Value = ctx.wait_for("greeted").await?;
    let greeting: Option<String> = ctx.get("greeting").await?;
    Ok(json!({ "hook_id": hook_id, "signalled": signalled, "greeting": greeting }))
}

#[test]
fn spawn_hook_starts_one_thread_with_a_deterministic_id() {
    let wf = workflow(spawner);
    let greeter_wf = workflow(greeter);
    let hook_id = format!("{RUN_ID}.h2");
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        assert_eq!(sim.progress(), &Progress::Waiting);
        assert_eq!(sim.store().spawned.len(), 1);
        let thread = run_thread(sim.start_thread(&greeter_wf, &hook_id));
        // The thread's own journal: it started in this run's namespace.
        assert_eq!(
            thread.journal()[0].body,
            EventBody::RunStarted {
                workflow: "greeter".into(),
                input: json!({ "signal_id": "greeted" }),
                thread: Some(ThreadInfo {
                    root_run: RUN_ID.into(),
                    parent_run: RUN_ID.into(),
                    retry: RetryPolicy::default(),
                    fail_signal: None,
                }),
            }
        );
        assert_eq!(
            thread.output(),
            json!({ "greeting": "hello ada", "runs": 1 })
        );
        assert_eq!(
            thread.entries("signal_sent")[0],
            &EventBody::SignalSent {
                cmd: 4,
                signal_id: "greeted".into(),
                payload: json!({ "greeting": "hello ada", "runs": 1 }),
                delivered_to: Some(RUN_ID.into())
            }
        );
        assert_eq!(sim.deliver_signals(), 1);
    });
    assert_eq!(
        sim.output(),
        json!({
            "hook_id": hook_id,
            "signalled": { "greeting": "hello ada", "runs": 1 },
            "greeting": "hello ada",
        })
    );
    assert_eq!(
        spawns(sim.journal()),
        [&EventBody::HookSpawned {
            cmd: 2,
            hook_id: hook_id.clone(),
            workflow: "greeter".into(),
            task_queue: "hooks".into(),
            args: json!({ "signal_id": "greeted" }),
            retry: RetryPolicy::default(),
            fail_signal: None,
        }]
    );
    assert_eq!(
        sim.kinds(),
        [
            "run_started",
            "state_set",
            "hook_spawned",
            "signal_waited",
            "signal_received",
            "state_get",
            "run_completed"
        ]
    );
    assert_spawn_replays_once(&wf, &sim);
    let store = sim.store();
    assert_eq!(store.spawned.len(), 1);
    assert_eq!(store.spawn_conflicts, 0);
    assert_eq!(store.state.get("hook_runs"), Some(&json!(1)));
}

#[test]
fn a_hook_that_signals_before_the_run_waits() {
    let wf = workflow(spawner);
    let greeter_wf = workflow(greeter);
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.commit_batch(); // state_set
        sim.commit_batch(); // hook_spawned: the thread exists; the wait is not committed yet
        assert_eq!(sim.kinds(), ["run_started", "state_set", "hook_spawned"]);
        let hook_id = hook_id_of(spawns(sim.journal())[0]).to_string();
        let thread = run_thread(sim.start_thread(&greeter_wf, &hook_id));
        assert_eq!(
            thread.entries("signal_sent")[0],
            &EventBody::SignalSent {
                cmd: 4,
                signal_id: "greeted".into(),
                payload: json!({ "greeting": "hello ada", "runs": 1 }),
                delivered_to: None
            }
        );
        assert_eq!(sim.store().kept_of("greeted").len(), 1);
        assert_eq!(sim.deliver_signals(), 0);
    });
    assert_eq!(sim.output()["signalled"]["greeting"], "hello ada");
    assert_spawn_replays_once(&wf, &sim);
}

#[test]
fn spawn_ids_follow_the_command_index_and_threads_spawn_their_own() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let a = ctx.spawn_hook(SpawnOptions::new("greeter")).await?;
        ctx.set("x", &1).await?;
        let b = ctx
            .spawn_hook(SpawnOptions::new("greeter").args(json!([1, 2])))
            .await?;
        Ok(vec![a, b])
    });
    let greeter_wf = workflow(greeter);
    let sim = assert_trio(&wf, Value::Null, |_| {});
    assert_eq!(
        sim.output(),
        json!([format!("{RUN_ID}.h1"), format!("{RUN_ID}.h3")])
    );
    assert_eq!(sim.store().spawned.len(), 2);

    // A thread spawns into the root run's namespace, with ids of its own.
    // (The thread runs `greeter`, so it may not spawn `greeter` on the default queue.)
    let nested = workflow(|ctx: Ctx, _: Value| async move {
        ctx.spawn_hook(SpawnOptions::new("greeter").task_queue("hooks"))
            .await
    });
    let thread = sim.start_thread(&nested, &format!("{RUN_ID}.h1"));
    let thread = run_thread(thread);
    assert_eq!(thread.output(), json!(format!("{RUN_ID}.h1.h1")));
    let grandchild = run_thread(thread.start_thread(&greeter_wf, &format!("{RUN_ID}.h1.h1")));
    match &grandchild.journal()[0].body {
        EventBody::RunStarted {
            thread: Some(info), ..
        } => {
            assert_eq!(info.root_run, RUN_ID);
            assert_eq!(info.parent_run, format!("{RUN_ID}.h1"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_hook_on_the_callers_own_topic_is_refused_without_a_command() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let mut codes = Vec::new();
        for options in [
            SpawnOptions::default(),
            SpawnOptions::new(WORKFLOW),
            SpawnOptions::new(WORKFLOW).task_queue("default"),
            SpawnOptions::default().args(json!({ "x": 1 })),
        ] {
            let err = ctx.spawn_hook(options).await.unwrap_err();
            codes.push(json!([err.code(), err.to_string()]));
        }
        let err = ctx
            .exec_hook::<Value>(SpawnOptions::new(WORKFLOW))
            .await
            .unwrap_err();
        codes.push(json!([err.code(), err.to_string()]));
        // The same workflow on another queue is another topic.
        let id = ctx
            .spawn_hook(SpawnOptions::new(WORKFLOW).task_queue("elsewhere"))
            .await?;
        Ok(json!({ "refused": codes, "id": id }))
    });
    let sim = assert_trio(&wf, Value::Null, |_| {});
    let out = sim.output();
    let refused = out["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 5);
    for r in refused {
        assert_eq!(r[0], "hook_self_target", "{out}");
        assert!(r[1].as_str().unwrap().contains(WORKFLOW), "{out}");
    }
    // No command was issued by the refusals: the first real spawn is command #1.
    assert_eq!(out["id"], format!("{RUN_ID}.h1"));
    assert_eq!(
        sim.kinds(),
        ["run_started", "hook_spawned", "run_completed"]
    );
    assert_eq!(sim.store().spawned.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// exec_hook
// ---------------------------------------------------------------------------------------------

async fn execer(ctx: Ctx, input: Value) -> Result<Value, WorkflowError> {
    ctx.set("name", &"ada").await?;
    let got: Value = ctx
        .exec_hook(SpawnOptions::new("greeter").args(input))
        .await?;
    let runs: Option<i64> = ctx.get("hook_runs").await?;
    Ok(json!({ "got": got, "hook_runs": runs }))
}

#[test]
fn exec_hook_returns_what_the_hook_signals_back() {
    let wf = workflow(execer);
    let greeter_wf = workflow(greeter);
    let hook_id = format!("{RUN_ID}.h2");
    let signal_id = format!("{hook_id}/done");
    let sim = assert_trio(&wf, json!({ "extra": 1 }), |sim| {
        sim.settle();
        assert_eq!(sim.progress(), &Progress::Waiting);
        let thread = run_thread(sim.start_thread(&greeter_wf, &hook_id));
        assert_eq!(
            thread.entries("signal_sent")[0],
            &EventBody::SignalSent {
                cmd: 4,
                signal_id: signal_id.clone(),
                payload: json!({ "greeting": "hello ada", "runs": 1 }),
                delivered_to: Some(RUN_ID.into())
            }
        );
        assert_eq!(sim.deliver_signals(), 1);
    });
    assert_eq!(
        sim.output(),
        json!({ "got": { "greeting": "hello ada", "runs": 1 }, "hook_runs": 1 })
    );
    // The signal id was injected into the args; the same id is the thread's fail signal.
    assert_eq!(
        spawns(sim.journal()),
        [&EventBody::HookSpawned {
            cmd: 2,
            hook_id: hook_id.clone(),
            workflow: "greeter".into(),
            task_queue: "default".into(),
            args: json!({ "extra": 1, "signal_id": signal_id }),
            retry: RetryPolicy::default(),
            fail_signal: Some(signal_id.clone()),
        }]
    );
    assert_eq!(
        sim.kinds(),
        [
            "run_started",
            "state_set",
            "hook_spawned",
            "signal_waited",
            "signal_received",
            "state_get",
            "run_completed"
        ]
    );
    assert_eq!(
        sim.entries("signal_waited")[0],
        &EventBody::SignalWaited {
            cmd: 3,
            signal_id: signal_id.clone()
        }
    );
    assert_spawn_replays_once(&wf, &sim);
}

#[test]
fn exec_hook_with_the_signal_already_kept() {
    // The hook answered before the run registered its wait (the signal was kept).
    let wf = workflow(execer);
    let greeter_wf = workflow(greeter);
    let sim = assert_trio(&wf, json!({}), |sim| {
        sim.commit_batch(); // state_set
        sim.commit_batch(); // hook_spawned
        let thread = run_thread(sim.start_thread(&greeter_wf, &format!("{RUN_ID}.h2")));
        assert_eq!(thread.output()["runs"], 1);
        assert_eq!(sim.deliver_signals(), 0);
        assert_eq!(sim.store().kept.len(), 1);
    });
    assert_eq!(sim.output()["got"]["greeting"], "hello ada");
    let e = sim.journal();
    assert!(matches!(e[3].body, EventBody::SignalWaited { cmd: 3, .. }));
    assert!(matches!(
        e[4].body,
        EventBody::SignalReceived { wait_cmd: 3, .. }
    ));
    assert_spawn_replays_once(&wf, &sim);
}

#[test]
fn exec_hook_wraps_args_that_are_not_an_object() {
    let wf = workflow(|ctx: Ctx, input: Value| async move {
        let got: Value = ctx
            .exec_hook(SpawnOptions::new("greeter").args(input))
            .await?;
        Ok(got)
    });
    for (input, args) in [
        (
            Value::Null,
            json!({ "signal_id": format!("{RUN_ID}.h1/done") }),
        ),
        (
            json!([1, 2]),
            json!({ "args": [1, 2], "signal_id": format!("{RUN_ID}.h1/done") }),
        ),
        (
            json!("x"),
            json!({ "args": "x", "signal_id": format!("{RUN_ID}.h1/done") }),
        ),
    ] {
        let sim = assert_trio(&wf, input.clone(), |sim| {
            sim.settle();
            // The hook answers from outside, as a client would.
            let sent = sim.signal(&format!("{RUN_ID}.h1/done"), json!("pong"));
            assert_eq!(sent, Some(RUN_ID.into()));
        });
        assert_eq!(sim.output(), json!("pong"));
        match spawns(sim.journal())[0] {
            EventBody::HookSpawned { args: a, .. } => assert_eq!(a, &args, "input {input}"),
            _ => unreachable!(),
        }
    }
}

#[test]
fn exec_hook_returns_the_error_the_hook_signals() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        match ctx.exec_hook::<Value>(SpawnOptions::new("greeter")).await {
            Ok(v) => Ok(json!({ "ok": v })),
            Err(e) => Ok(json!({ "code": e.code(), "message": e.to_string() })),
        }
    });
    let signal_id = format!("{RUN_ID}.h1/done");
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        sim.signal(
            &signal_id,
            json!({ ERROR_ENVELOPE: { "code": "enrich_failed", "message": "no name given" } }),
        )
        .unwrap();
    });
    assert_eq!(
        sim.output(),
        json!({ "code": "enrich_failed", "message": "no name given" })
    );

    // Without code or message: `hook_failed`.
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        sim.signal(&signal_id, json!({ ERROR_ENVELOPE: {} }))
            .unwrap();
    });
    assert_eq!(sim.output()["code"], "hook_failed");

    // Propagated with `?`, it fails the run with that code and message.
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        ctx.exec_hook::<Value>(SpawnOptions::new("greeter")).await
    });
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        sim.signal(
            &signal_id,
            json!({ ERROR_ENVELOPE: { "code": "enrich_failed", "message": "no name given" } }),
        )
        .unwrap();
    });
    assert_eq!(
        sim.end(),
        &EventBody::RunFailed {
            error: ErrorInfo::new("enrich_failed", "no name given")
        }
    );
}

/// A hook function that fails unless `name` is set, counting its attempts.
async fn picky(ctx: Ctx, args: Value) -> Result<Value, WorkflowError> {
    let attempt = ctx.incr("attempts", 1).await?;
    let name: Option<String> = ctx.get("name").await?;
    match name {
        Some(name) => {
            let signal_id = args["signal_id"].as_str().unwrap_or_default();
            ctx.signal(signal_id, &json!({ "name": name, "attempt": attempt }))
                .await?;
            Ok(json!(attempt))
        }
        None => Err(WorkflowError::with_code(
            "no_name",
            format!("attempt {attempt}: no name"),
        )),
    }
}

#[test]
fn exec_hook_returns_the_error_of_a_thread_that_failed_for_good() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let r = ctx
            .exec_hook::<Value>(SpawnOptions::new("picky").retry(RetryPolicy {
                maximum_attempts: 2,
                ..RetryPolicy::default()
            }))
            .await;
        Ok(match r {
            Ok(v) => json!({ "ok": v }),
            Err(e) => json!({ "code": e.code(), "message": e.to_string() }),
        })
    });
    let picky_wf = workflow(picky);
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        let thread = run_thread(sim.start_thread(&picky_wf, &format!("{RUN_ID}.h1")));
        assert_eq!(
            thread.kinds(),
            [
                "run_started",
                "state_incr",
                "state_get",
                "attempt_failed",
                "state_incr",
                "state_get",
                "run_failed"
            ]
        );
        assert_eq!(thread.machine().attempt(), 2);
        assert_eq!(sim.deliver_signals(), 1);
    });
    assert_eq!(
        sim.output(),
        json!({ "code": "no_name", "message": "attempt 2: no name" })
    );
}

#[test]
fn exec_hook_gets_the_answer_of_a_retried_attempt() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let got: Value = ctx.exec_hook(SpawnOptions::new("picky")).await?;
        Ok(got)
    });
    let picky_wf = workflow(picky);
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        let mut thread = sim.start_thread(&picky_wf, &format!("{RUN_ID}.h1"));
        thread.settle();
        assert_eq!(thread.kinds().last(), Some(&"attempt_failed"));
        // Someone sets the name before the next attempt.
        sim.store().state.insert("name".into(), json!("ada"));
        let thread = run_thread(thread);
        assert_eq!(thread.output(), json!(2));
        assert_eq!(sim.deliver_signals(), 1);
    });
    assert_eq!(sim.output(), json!({ "name": "ada", "attempt": 2 }));
}

// ---------------------------------------------------------------------------------------------
// Retried attempts
// ---------------------------------------------------------------------------------------------

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
