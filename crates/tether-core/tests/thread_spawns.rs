//! Hook threads: `spawn_hook` and `exec_hook` fresh, replayed, and replayed up to each
//! suspension (see threads.rs for the harness's store).

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
    // The args are passed unchanged; the signal id is the thread's exec (and fail) signal.
    assert_eq!(
        spawns(sim.journal()),
        [&EventBody::HookSpawned {
            cmd: 2,
            hook_id: hook_id.clone(),
            workflow: "greeter".into(),
            task_queue: "default".into(),
            args: json!({ "extra": 1 }),
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
fn exec_hook_registers_its_wait_with_the_spawn() {
    // The spawn and the wait are issued when `exec_hook` is called, so they commit together:
    // the thread can never answer before the wait exists (no signal is kept for it).
    let wf = workflow(execer);
    let greeter_wf = workflow(greeter);
    let sim = assert_trio(&wf, json!({}), |sim| {
        sim.commit_batch(); // state_set
        assert_eq!(sim.commit_batch(), 2); // hook_spawned + signal_waited
        let thread = run_thread(sim.start_thread(&greeter_wf, &format!("{RUN_ID}.h2")));
        assert_eq!(thread.output()["runs"], 1);
        assert!(sim.store().kept.is_empty());
        assert_eq!(sim.deliver_signals(), 1);
    });
    assert_eq!(sim.output()["got"]["greeting"], "hello ada");
    let e = sim.journal();
    assert!(matches!(e[2].body, EventBody::HookSpawned { cmd: 2, .. }));
    assert!(matches!(e[3].body, EventBody::SignalWaited { cmd: 3, .. }));
    assert!(matches!(
        e[4].body,
        EventBody::SignalReceived { wait_cmd: 3, .. }
    ));
    assert_spawn_replays_once(&wf, &sim);
}

#[test]
fn exec_hook_passes_args_unchanged() {
    let wf = workflow(|ctx: Ctx, input: Value| async move {
        let got: Value = ctx
            .exec_hook(SpawnOptions::new("greeter").args(input))
            .await?;
        Ok(got)
    });
    for (input, args) in [
        (Value::Null, Value::Null),
        (json!([1, 2]), json!([1, 2])),
        (json!("x"), json!("x")),
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
            let _ = args;
            let signal_id = ctx.exec_signal_id().unwrap_or_default();
            ctx.signal(&signal_id, &json!({ "name": name, "attempt": attempt }))
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
