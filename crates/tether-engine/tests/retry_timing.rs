//! Retries fire at their time (issue #15, point 1): the next attempt of a hook thread and of a
//! step starts neither before its `retry_at` (whatever wakes the run meanwhile: the poller, an
//! entry, a restart) nor long after it. With a manual clock: exactly at `retry_at`, not at
//! `retry_at - 1 ms`. With the system clock: never before (lateness printed, not asserted).
//! Also: `exec_hook` completed by a thread's return value, and a signal wait's timeout.
#![allow(missing_docs, missing_debug_implementations)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use parking_lot::Mutex;
use serde_json::{json, Value};
use tether_core::{
    Ctx, EventBody, Registry, RetryPolicy, RunStatus, SpawnOptions, StepError, WorkflowError,
};
use tether_engine::{Clock, Engine, EngineConfig};

const T0: u64 = 1_735_689_600_000; // 2025-01-01T00:00:00Z

/// 300 ms, ×2, at most 500 ms: attempts at +0, +300, +800.
fn policy() -> RetryPolicy {
    RetryPolicy {
        maximum_attempts: 3,
        initial_interval: Duration::from_millis(300),
        backoff_coefficient: 2.0,
        maximum_interval: Duration::from_millis(500),
    }
}

/// When each attempt started, by the engine's clock.
type Starts = Arc<Mutex<Vec<u64>>>;

/// `caller` exec_hooks `flaky_hook`, which fails its first two attempts; `stepper` runs a step
/// that fails twice. Both note when each attempt starts (in a step body: run once per attempt).
fn registry(clock: Clock, hook_starts: Starts, step_starts: Starts) -> Registry {
    let mut reg = Registry::new();
    reg.workflow("caller", |ctx: Ctx, _: Value| async move {
        let got: Value = ctx
            .exec_hook(SpawnOptions::new("flaky_hook").retry(policy()))
            .await?;
        Ok(got)
    });
    let c = clock.clone();
    reg.workflow("flaky_hook", move |ctx: Ctx, _: Value| {
        let (clock, starts) = (c.clone(), hook_starts.clone());
        async move {
            let n: usize = ctx
                .step("start", (), move |_| {
                    let (clock, starts) = (clock.clone(), starts.clone());
                    async move {
                        let mut s = starts.lock();
                        s.push(clock.now_ms());
                        Ok(s.len())
                    }
                })
                .await?;
            if n <= 2 {
                return Err(WorkflowError::with_code("flaky", format!("attempt {n}")));
            }
            // Returns without signalling: the return value completes exec_hook.
            Ok(json!({ "attempt": n }))
        }
    });
    reg.workflow("stepper", move |ctx: Ctx, _: Value| {
        let (clock, starts) = (clock.clone(), step_starts.clone());
        async move {
            let n: usize = ctx
                .step_with("flaky_step", policy(), (), move |_| {
                    let (clock, starts) = (clock.clone(), starts.clone());
                    async move {
                        let mut s = starts.lock();
                        s.push(clock.now_ms());
                        if s.len() <= 2 {
                            return Err(StepError::retryable(format!("attempt {}", s.len())));
                        }
                        Ok(s.len())
                    }
                })
                .await?;
            Ok(json!(n))
        }
    });
    reg.workflow("wait_timeout", |ctx: Ctx, _: Value| async move {
        let got: Option<Value> = ctx
            .wait_for_timeout("timeout-signal", Duration::from_secs(60))
            .await?;
        Ok(json!({ "got": got }))
    });
    reg
}

async fn manual(db: &TestDb) -> (Engine, Clock, Starts, Starts) {
    let clock = Clock::manual(T0);
    let (hooks, steps) = (Starts::default(), Starts::default());
    let config = EngineConfig {
        clock: clock.clone(),
        ..fast_config()
    };
    let engine = db
        .engine(
            registry(clock.clone(), hooks.clone(), steps.clone()),
            config,
        )
        .await;
    (engine, clock, hooks, steps)
}

/// Settle, with the poller's pass done at once too (it may wake the run: it must not start
/// the next attempt early).
async fn settle(engine: &Engine) {
    engine.settle().await;
    engine.wake_due_runs().await.unwrap();
    engine.settle().await;
}

#[tokio::test]
async fn a_hook_threads_next_attempt_starts_exactly_at_retry_at() {
    let db = TestDb::new();
    let (engine, clock, starts, _) = manual(&db).await;
    let run = engine.start_run("caller", Value::Null).await.unwrap();
    settle(&engine).await;
    assert_eq!(*starts.lock(), vec![T0]);
    let thread = format!("{run}.h1");
    let retry_at: Vec<u64> = engine
        .events(&thread)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.body {
            EventBody::AttemptFailed { retry_at_ms, .. } => Some(retry_at_ms),
            _ => None,
        })
        .collect();
    assert_eq!(retry_at, vec![T0 + 300]);

    for (at, attempts) in [(T0 + 300, 2), (T0 + 800, 3)] {
        clock.set_ms(at - 1);
        settle(&engine).await;
        assert_eq!(
            starts.lock().len(),
            attempts - 1,
            "not at {} - 1 ms",
            at - T0
        );
        clock.set_ms(at);
        settle(&engine).await;
        assert_eq!(starts.lock().len(), attempts, "at +{} ms", at - T0);
        assert_eq!(starts.lock()[attempts - 1], at);
    }
    let record = engine.get_run(&run).await.unwrap();
    assert_eq!(record.status, RunStatus::Completed, "{record:?}");
    // The thread returned without signalling: its return value completed exec_hook.
    assert_eq!(record.output, Some(json!({ "attempt": 3 })));
    engine.shutdown().await;
}

#[tokio::test]
async fn a_hook_thread_between_attempts_waits_after_a_restart_too() {
    let db = TestDb::new();
    let (engine, clock, starts, _) = manual(&db).await;
    let run = engine.start_run("caller", Value::Null).await.unwrap();
    settle(&engine).await;
    assert_eq!(starts.lock().len(), 1);
    engine.shutdown().await;

    // A new engine on the same store: the poller makes the thread live at once (its journal
    // is past its checkpoint, or its wake_at is due), and it must still wait.
    let config = EngineConfig {
        clock: clock.clone(),
        ..fast_config()
    };
    let engine = db
        .engine(
            registry(clock.clone(), starts.clone(), Starts::default()),
            config,
        )
        .await;
    settle(&engine).await;
    clock.set_ms(T0 + 299);
    settle(&engine).await;
    assert_eq!(starts.lock().len(), 1);
    clock.set_ms(T0 + 300);
    settle(&engine).await;
    assert_eq!(*starts.lock(), vec![T0, T0 + 300]);
    clock.set_ms(T0 + 800);
    settle(&engine).await;
    assert_eq!(
        engine.get_run(&run).await.unwrap().status,
        RunStatus::Completed
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn a_steps_next_attempt_starts_exactly_at_its_back_off() {
    let db = TestDb::new();
    let (engine, clock, _, starts) = manual(&db).await;
    let run = engine.start_run("stepper", Value::Null).await.unwrap();
    settle(&engine).await;
    assert_eq!(*starts.lock(), vec![T0]);
    for (at, attempts) in [(T0 + 300, 2), (T0 + 800, 3)] {
        clock.set_ms(at - 1);
        settle(&engine).await;
        assert_eq!(
            starts.lock().len(),
            attempts - 1,
            "not at {} - 1 ms",
            at - T0
        );
        clock.set_ms(at);
        settle(&engine).await;
        assert_eq!(starts.lock().len(), attempts, "at +{} ms", at - T0);
        assert_eq!(starts.lock()[attempts - 1], at);
    }
    assert_eq!(engine.get_run(&run).await.unwrap().output, Some(json!(3)));
    engine.shutdown().await;
}

#[tokio::test]
async fn a_wait_times_out_on_the_clock_and_a_late_signal_is_kept() {
    let db = TestDb::new();
    let (engine, clock, _, _) = manual(&db).await;
    let run = engine.start_run("wait_timeout", Value::Null).await.unwrap();
    settle(&engine).await;
    clock.set_ms(T0 + 59_999);
    settle(&engine).await;
    assert_eq!(
        engine.get_run(&run).await.unwrap().status,
        RunStatus::Suspended
    );
    clock.set_ms(T0 + 60_000);
    settle(&engine).await;
    let record = engine.get_run(&run).await.unwrap();
    assert_eq!(record.output, Some(json!({ "got": null })), "{record:?}");
    let kinds: Vec<&str> = engine
        .events(&run)
        .await
        .unwrap()
        .iter()
        .map(|e| e.body.kind())
        .collect();
    assert!(kinds.contains(&"signal_released"), "{kinds:?}");
    // The released wait is gone: the signal is kept for a future wait, not lost.
    let second = engine.start_run("wait_timeout", Value::Null).await.unwrap();
    settle(&engine).await;
    engine
        .signal("timeout-signal", json!("late"))
        .await
        .unwrap();
    settle(&engine).await;
    assert_eq!(
        engine.get_run(&second).await.unwrap().output,
        Some(json!({ "got": "late" }))
    );
    engine.shutdown().await;
}

/// With the system clock: every attempt starts at or after its `retry_at` (the journal's, for
/// hook threads; failure time + back-off, for steps). Lateness is printed, never asserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_system_clock_no_retry_starts_early() {
    let db = TestDb::new();
    let clock = Clock::system();
    let (hooks, steps) = (Starts::default(), Starts::default());
    let engine = db
        .engine(
            registry(clock.clone(), hooks.clone(), steps.clone()),
            fast_config(),
        )
        .await;
    let caller = engine.start_run("caller", Value::Null).await.unwrap();
    let stepper = engine.start_run("stepper", Value::Null).await.unwrap();
    assert_eq!(output(&engine, &caller).await, json!({ "attempt": 3 }));
    assert_eq!(output(&engine, &stepper).await, json!(3));

    let retry_at: Vec<u64> = engine
        .events(&format!("{caller}.h1"))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.body {
            EventBody::AttemptFailed { retry_at_ms, .. } => Some(retry_at_ms),
            _ => None,
        })
        .collect();
    let hooks = hooks.lock().clone();
    assert_eq!(hooks.len(), 3);
    assert_eq!(retry_at.len(), 2);
    for (i, at) in retry_at.iter().enumerate() {
        let started = hooks[i + 1];
        println!(
            "hook attempt {}: retry_at {at}, started {started}, lateness {} ms",
            i + 2,
            started as i64 - *at as i64
        );
        assert!(
            started >= *at,
            "attempt {} started {} ms early",
            i + 2,
            at - started
        );
    }
    let steps = steps.lock().clone();
    assert_eq!(steps.len(), 3);
    for (i, want) in [300u64, 500].iter().enumerate() {
        let gap = steps[i + 1] - steps[i];
        println!(
            "step attempt {}: gap {gap} ms for a back-off of {want} ms, lateness {} ms",
            i + 2,
            gap as i64 - *want as i64
        );
        // Each attempt starts after the previous one failed: the gap covers the back-off.
        assert!(
            gap >= *want,
            "step attempt {} started {} ms early",
            i + 2,
            want - gap
        );
    }
    engine.shutdown().await;
}
