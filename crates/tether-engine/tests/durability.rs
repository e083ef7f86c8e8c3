//! Restarts, eviction, cancellation, idempotency and non-determinism, on a real SQLite store.
#![allow(missing_docs, missing_debug_implementations)]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tether_core::{
    race, Ctx, Either, HookOptions, Registry, RetryPolicy, RunStatus, StepError, WorkflowError,
};
use tether_engine::{EngineConfig, EngineError};

#[tokio::test]
async fn evicted_runs_are_rebuilt_by_replay() {
    let db = TestDb::new();
    let config = EngineConfig {
        max_live_runs: 2,
        ..fast_config()
    };
    let engine = db.engine(examples(), config).await;
    let mut runs = Vec::new();
    for _ in 0..12 {
        let run = engine.start_run("collect", json!({})).await.unwrap();
        let token = hook_token(&engine, &run).await;
        engine
            .resume_hook(&token, json!({"n": 1}), None)
            .await
            .unwrap();
        runs.push((run, token));
    }
    for (run, token) in &runs {
        engine
            .resume_hook(token, json!({"n": 2}), None)
            .await
            .unwrap();
        engine
            .resume_hook(token, json!({"n": 3, "done": true}), None)
            .await
            .unwrap();
        assert_eq!(
            output(&engine, run).await,
            json!({"payloads": [{"n": 1}, {"n": 2}, {"n": 3, "done": true}]})
        );
    }
    assert!(
        engine.live_runs() <= 3,
        "cache holds {}",
        engine.live_runs()
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn a_restarted_engine_continues_where_the_journal_stops() {
    let db = TestDb::new();
    let engine = db.engine(examples(), fast_config()).await;
    let run = engine.start_run("collect", json!({})).await.unwrap();
    let token = hook_token(&engine, &run).await;
    for i in 0..3 {
        engine
            .resume_hook(&token, json!({"i": i}), None)
            .await
            .unwrap();
    }
    engine.shutdown().await;

    // A payload accepted while nothing runs the workflow is kept and delivered later.
    let engine = db.engine(examples(), fast_config()).await;
    engine
        .resume_hook(&token, json!({"i": 3}), None)
        .await
        .unwrap();
    engine
        .resume_hook(&token, json!({"i": 4, "done": true}), None)
        .await
        .unwrap();
    let out = output(&engine, &run).await;
    assert_eq!(
        out["payloads"],
        json!([{"i": 0}, {"i": 1}, {"i": 2}, {"i": 3}, {"i": 4, "done": true}])
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn timers_survive_a_restart() {
    let db = TestDb::new();
    let engine = db.engine(examples(), fast_config()).await;
    let run = engine
        .start_run("timeout_approval", json!({"timeout_ms": 300}))
        .await
        .unwrap();
    hook_token(&engine, &run).await;
    engine.shutdown().await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let engine = db.engine(examples(), fast_config()).await;
    assert_eq!(output(&engine, &run).await, json!({"timed_out": true}));
    engine.shutdown().await;
}

#[tokio::test]
async fn idempotency_key_returns_the_first_answer_and_stores_nothing_new() {
    let db = TestDb::new();
    let engine = db.engine(examples(), fast_config()).await;
    let run = engine.start_run("collect", json!({})).await.unwrap();
    let token = hook_token(&engine, &run).await;
    for _ in 0..3 {
        let got = engine
            .resume_hook(&token, json!({"x": 1}), Some("key-1".into()))
            .await
            .unwrap();
        assert_eq!(got, run);
    }
    assert_eq!(received(&engine, &run).await.len(), 1);
    engine
        .resume_hook(&token, json!({"done": true}), Some("key-2".into()))
        .await
        .unwrap();
    output(&engine, &run).await;
    // After the run ended, a retry of an accepted request still gets its first answer.
    assert_eq!(
        engine
            .resume_hook(&token, json!({"done": true}), Some("key-2".into()))
            .await
            .unwrap(),
        run
    );
    engine.shutdown().await;
}

/// Issue #17: one `Idempotency-Key` sent at once by 32 senders with 32 different payloads.
/// Exactly one is accepted; the 31 others are refused with `idempotency_key_reused` (not told
/// "accepted" for a payload thrown away), and the journal holds exactly the accepted payload.
/// A retry of the accepted payload still gets the first answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_key_with_many_payloads_at_once_accepts_exactly_one() {
    const SENDERS: usize = 32;
    let db = TestDb::new();
    let engine = Arc::new(db.engine(examples(), fast_config()).await);
    let run = engine.start_run("collect", json!({})).await.unwrap();
    let token = hook_token(&engine, &run).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(SENDERS));
    let tasks: Vec<_> = (0..SENDERS)
        .map(|i| {
            let (engine, token, barrier) = (engine.clone(), token.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let payload = json!({ "sender": i });
                let answer = engine
                    .resume_hook(&token, payload.clone(), Some("one-key".into()))
                    .await;
                (payload, answer)
            })
        })
        .collect();
    let mut accepted = Vec::new();
    let mut reused = 0;
    for task in tasks {
        match task.await.unwrap() {
            (payload, Ok(got)) => {
                assert_eq!(got, run);
                accepted.push(payload);
            }
            (_, Err(EngineError::IdempotencyKeyReused)) => reused += 1,
            (_, Err(e)) => panic!("unexpected answer: {e:?}"),
        }
    }
    assert_eq!(accepted.len(), 1, "exactly one sender is accepted");
    assert_eq!(reused, SENDERS - 1, "every other sender is refused");
    assert_eq!(
        EngineError::IdempotencyKeyReused.code(),
        "idempotency_key_reused"
    );
    assert_eq!(
        received(&engine, &run).await,
        accepted,
        "the journal holds exactly the accepted payload"
    );
    // A retry of the accepted payload gets the first answer; another payload is refused.
    let accepted = accepted.remove(0);
    assert_eq!(
        engine
            .resume_hook(&token, accepted.clone(), Some("one-key".into()))
            .await
            .unwrap(),
        run
    );
    assert_eq!(
        engine
            .resume_hook(&token, json!({ "sender": "late" }), Some("one-key".into()))
            .await,
        Err(EngineError::IdempotencyKeyReused)
    );
    assert_eq!(received(&engine, &run).await, vec![accepted]);
    engine.shutdown().await;
}

#[tokio::test]
async fn cancel_ends_a_waiting_run_and_releases_its_hooks() {
    let db = TestDb::new();
    let engine = db.engine(examples(), fast_config()).await;
    let run = engine.start_run("collect", json!({})).await.unwrap();
    let token = hook_token(&engine, &run).await;
    engine
        .cancel_run(&run, Some("no longer needed".into()))
        .await
        .unwrap();
    let done = engine
        .wait_for_run(&run, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(done.status, RunStatus::Cancelled);
    assert!(engine.hooks(&run).await.unwrap().is_empty());
    assert_eq!(
        engine.resume_hook(&token, json!({}), None).await,
        Err(EngineError::HookNotFound)
    );
    assert!(matches!(
        engine.cancel_run(&run, None).await,
        Err(EngineError::RunFinished { .. })
    ));
    engine.shutdown().await;
}

/// Races `hook.recv()` against a short sleep in a loop: the losing branch must not eat a
/// payload (Vercel Workflow issue #4264).
async fn racer(ctx: Ctx, n: usize) -> Result<Vec<Value>, WorkflowError> {
    let mut hook = ctx
        .create_hook::<Value>(HookOptions::new().token("racer"))
        .await?;
    let mut got = Vec::new();
    while got.len() < n {
        match race(hook.recv(), ctx.sleep(Duration::from_millis(3))).await {
            Either::Left(p) => got.push(p?),
            Either::Right(t) => t?,
        }
    }
    Ok(got)
}

#[tokio::test]
async fn racing_a_hook_against_a_timer_loses_no_payload() {
    let db = TestDb::new();
    let mut reg = Registry::new();
    reg.workflow("racer", racer);
    let engine = db.engine(reg.clone(), fast_config()).await;
    let n = 60;
    let run = engine.start_run("racer", json!(n)).await.unwrap();
    engine
        .wait_for_hook("racer", Duration::from_secs(10))
        .await
        .unwrap();
    for i in 0..n {
        engine.resume_hook("racer", json!(i), None).await.unwrap();
        if i % 7 == 0 {
            tokio::time::sleep(Duration::from_millis(4)).await;
        }
    }
    let out = output(&engine, &run).await;
    assert_eq!(out, json!((0..n).collect::<Vec<_>>()));
    engine.shutdown().await;

    // The journal replays to the same result (a fresh engine with a 1-run cache replays it
    // when asked for its state; the run is over, so replay it directly through the core).
    let store = db.store().await;
    let journal = store.load_journal(&run, 0).await.unwrap();
    let wf = reg.get("racer").unwrap();
    let (_, progress) = tether_core::RunMachine::replay(
        &run,
        wf.as_ref(),
        Arc::new(tether_engine::SystemEnvironment::default()),
        &journal,
    )
    .unwrap();
    assert_eq!(
        progress,
        tether_core::Progress::Finished(tether_core::EventBody::RunCompleted { output: out })
    );
}

#[tokio::test]
async fn steps_retry_then_fail_fatally() {
    let db = TestDb::new();
    let calls = Arc::new(AtomicU32::new(0));
    let mut reg = Registry::new();
    let c = calls.clone();
    reg.workflow("flaky", move |ctx: Ctx, _: Value| {
        let c = c.clone();
        async move {
            let policy = RetryPolicy {
                maximum_attempts: 5,
                initial_interval: Duration::from_millis(5),
                ..RetryPolicy::default()
            };
            let v: u32 = ctx
                .step_with("flaky", policy, c.clone(), move |c| async move {
                    let n = c.fetch_add(1, Ordering::SeqCst) + 1;
                    if n < 3 {
                        Err(StepError::retryable(format!("attempt {n} failed")))
                    } else {
                        Ok(n)
                    }
                })
                .await?;
            let fatal: Result<u32, _> = ctx
                .step("fatal", (), |()| async {
                    Err(StepError::fatal("bad request"))
                })
                .await;
            match fatal {
                Err(WorkflowError::StepFailed { name, message }) => {
                    Ok(json!({"v": v, "fatal": name, "message": message}))
                }
                other => Err(WorkflowError::msg(format!("unexpected {other:?}"))),
            }
        }
    });
    let engine = db.engine(reg, fast_config()).await;
    let run = engine.start_run("flaky", json!(null)).await.unwrap();
    assert_eq!(
        output(&engine, &run).await,
        json!({"v": 3, "fatal": "fatal", "message": "bad request"})
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let attempts: Vec<u32> = engine
        .events(&run)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.body {
            tether_core::EventBody::StepCompleted { attempts, .. }
            | tether_core::EventBody::StepFailed { attempts, .. } => Some(attempts),
            _ => None,
        })
        .collect();
    assert_eq!(attempts, vec![3, 1]);
    engine.shutdown().await;
}

async fn journaled(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let now = ctx
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| WorkflowError::msg(e.to_string()))?
        .as_millis() as u64;
    let r = ctx.random();
    let u = ctx.uuid().to_string();
    let hook = ctx
        .create_hook::<Value>(HookOptions::new().token("journaled"))
        .await?;
    hook.await?;
    Ok(json!({"now": now, "random": r, "uuid": u}))
}

#[tokio::test]
async fn now_random_uuid_are_journaled_across_a_restart() {
    let db = TestDb::new();
    let mut reg = Registry::new();
    reg.workflow("journaled", journaled);
    let engine = db.engine(reg.clone(), fast_config()).await;
    let run = engine.start_run("journaled", json!(null)).await.unwrap();
    engine
        .wait_for_hook("journaled", Duration::from_secs(10))
        .await
        .unwrap();
    engine.shutdown().await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let engine = db.engine(reg, fast_config()).await;
    engine
        .resume_hook("journaled", json!(1), None)
        .await
        .unwrap();
    let out = output(&engine, &run).await;
    let events = engine.events(&run).await.unwrap();
    let mut now = None;
    let mut random = None;
    let mut uuid = None;
    for e in events {
        match e.body {
            tether_core::EventBody::Now { ms, .. } => now = Some(ms),
            tether_core::EventBody::Random { value, .. } => random = Some(value),
            tether_core::EventBody::Uuid { value, .. } => uuid = Some(value),
            _ => {}
        }
    }
    assert_eq!(
        out,
        json!({"now": now.unwrap(), "random": random.unwrap(), "uuid": uuid.unwrap()})
    );
    engine.shutdown().await;
}

async fn nd_v1(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let _: u32 = ctx.step("a", (), |()| async { Ok(1) }).await?;
    let hook = ctx
        .create_hook::<Value>(HookOptions::new().token("nd"))
        .await?;
    hook.await
}

async fn nd_v2(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let _: u32 = ctx.step("b", (), |()| async { Ok(1) }).await?;
    let hook = ctx
        .create_hook::<Value>(HookOptions::new().token("nd"))
        .await?;
    hook.await
}

#[tokio::test]
async fn changed_code_blocks_the_run_with_a_nondeterminism_error() {
    let db = TestDb::new();
    let mut v1 = Registry::new();
    v1.workflow("nd", nd_v1);
    let engine = db.engine(v1, fast_config()).await;
    let run = engine.start_run("nd", json!(null)).await.unwrap();
    engine
        .wait_for_hook("nd", Duration::from_secs(10))
        .await
        .unwrap();
    engine.shutdown().await;

    let mut v2 = Registry::new();
    v2.workflow("nd", nd_v2);
    let engine = db.engine(v2, fast_config()).await;
    // The payload is accepted (nothing is lost); the run cannot go on with this code.
    engine.resume_hook("nd", json!(1), None).await.unwrap();
    let mut blocked = None;
    for _ in 0..2000 {
        let r = engine.get_run(&run).await.unwrap();
        if r.error.is_some() {
            blocked = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let r = blocked.expect("run never marked");
    assert!(
        !r.status.is_terminal(),
        "a blocked run is not ended: {:?}",
        r.status
    );
    let err = r.error.unwrap();
    assert_eq!(err.code, "nondeterminism");
    assert!(
        err.message.contains("#1")
            && err.message.contains("\"a\"")
            && err.message.contains("\"b\""),
        "{}",
        err.message
    );
    engine.shutdown().await;

    // Deploying the original code again lets the run finish with the accepted payload.
    let mut v1 = Registry::new();
    v1.workflow("nd", nd_v1);
    let engine = db.engine(v1, fast_config()).await;
    engine.resume_hook("nd", json!(2), None).await.ok();
    let done = engine
        .wait_for_run(&run, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(done.status, RunStatus::Completed);
    assert_eq!(done.output, Some(json!(1)));
    engine.shutdown().await;
}

#[tokio::test]
async fn a_payload_accepted_just_before_a_crash_is_delivered_after_restart() {
    let db = TestDb::new();
    let engine = db.engine(examples(), fast_config()).await;
    let run = engine.start_run("collect", json!({})).await.unwrap();
    let token = hook_token(&engine, &run).await;
    // Let the live run checkpoint its journal, then stop.
    tokio::time::sleep(Duration::from_millis(50)).await;
    engine.shutdown().await;

    // The payload is committed, but no process is there to wake the run (a crash right after
    // the commit): only the store knows.
    let store = db.store().await;
    let res = store
        .commit(vec![tether_store::WriteOp::Resume {
            token: token.clone(),
            payload: json!({"done": true}),
            idempotency_key: None,
            expect: None,
            claim: None,
            at_ms: tether_engine::system_env::now_ms(),
        }])
        .await
        .unwrap();
    assert!(res[0].is_ok(), "{res:?}");

    let engine = db.engine(examples(), fast_config()).await;
    assert_eq!(
        output(&engine, &run).await,
        json!({"payloads": [{"done": true}]})
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn a_dead_nodes_runs_are_taken_over_after_its_lease() {
    let db = TestDb::new();
    let node = |id: &str, lease_ms: u64| EngineConfig {
        node_id: Some(id.into()),
        lease: Duration::from_millis(lease_ms),
        ..fast_config()
    };
    let a = db.engine(examples(), node("a", 400)).await;
    let run = a
        .start_run("timeout_approval", json!({"timeout_ms": 100}))
        .await
        .unwrap();
    assert_eq!(a.get_run(&run).await.unwrap().owner.as_deref(), Some("a"));
    // Node a dies holding the run (no release, no more heartbeats).
    a.halt().await;

    let b = db.engine(examples(), node("b", 10_000)).await;
    // The timer is due at once, but b must wait for a's lease to end before taking the run.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_ne!(
        b.get_run(&run).await.unwrap().status,
        RunStatus::Completed,
        "b took the run while a's lease was still alive"
    );
    assert_eq!(output(&b, &run).await, json!({"timed_out": true}));
    let fired = b
        .events(&run)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.body.kind() == "timer_fired")
        .count();
    assert_eq!(fired, 1, "the timer fired once");
    b.shutdown().await;
}

#[tokio::test]
async fn a_node_that_shuts_down_hands_its_runs_over_at_once() {
    let db = TestDb::new();
    let node = |id: &str| EngineConfig {
        node_id: Some(id.into()),
        lease: Duration::from_secs(600),
        ..fast_config()
    };
    let a = db.engine(examples(), node("a")).await;
    let run = a
        .start_run("timeout_approval", json!({"timeout_ms": 100}))
        .await
        .unwrap();
    a.shutdown().await;
    // With a's 10-minute lease still running this would wait; a gave its leases up.
    let b = db.engine(examples(), node("b")).await;
    assert_eq!(output(&b, &run).await, json!({"timed_out": true}));
    b.shutdown().await;
}
