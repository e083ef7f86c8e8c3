//! The test kit end to end: virtual time, hooks, signals, cancellation, step back-off, runs
//! rebuilt after eviction, and replay checks. No test sleeps and no test asserts on real time.
#![allow(missing_docs, missing_debug_implementations)]

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tether_core::{
    define_hook, race, Ctx, Either, EventBody, HookDef, HookOptions, Registry, RetryPolicy,
    RunStatus, StepError, WorkflowError,
};
use tether_engine::EngineConfig;
use tether_testing::{TestEnv, TestError, START_MS};

const HOUR: Duration = Duration::from_secs(3600);
const HOUR_MS: u64 = 3_600_000;
const DAY: Duration = Duration::from_secs(24 * 3600);

/// Wait a day for an approval; time out otherwise.
async fn approval(ctx: Ctx, _: ()) -> Result<Value, WorkflowError> {
    let mut hook = ctx.create_hook::<Value>(HookOptions::new()).await?;
    match race(hook.recv(), ctx.sleep(DAY)).await {
        Either::Left(payload) => Ok(json!({ "approved": payload? })),
        Either::Right(timer) => {
            timer?;
            Ok(json!({ "timed_out": true }))
        }
    }
}

/// Sleep an hour, 24 times.
async fn hourly(ctx: Ctx, _: ()) -> Result<u32, WorkflowError> {
    let mut n = 0;
    for _ in 0..24 {
        ctx.sleep(HOUR).await?;
        n += 1;
    }
    Ok(n)
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Name {
    name: String,
}

fn name_hook() -> HookDef<Name> {
    define_hook::<Name>("name")
}

/// Greet whoever the hook names.
async fn greet(ctx: Ctx, _: ()) -> Result<String, WorkflowError> {
    let mut hook = name_hook()
        .create(&ctx, HookOptions::new().token("greet:1"))
        .await?;
    let who = hook.recv().await?;
    Ok(format!("hello {}", who.name))
}

/// Wait for the signal `go`.
async fn wait_go(ctx: Ctx, _: ()) -> Result<Value, WorkflowError> {
    let got: Value = ctx.wait_for("go").await?;
    Ok(json!({ "got": got }))
}

static FLAKY_ATTEMPTS: AtomicU32 = AtomicU32::new(0);

/// A step that fails twice, retried after 10 s then 20 s.
async fn flaky(ctx: Ctx, _: ()) -> Result<String, WorkflowError> {
    let policy = RetryPolicy {
        maximum_attempts: 5,
        initial_interval: Duration::from_secs(10),
        backoff_coefficient: 2.0,
        maximum_interval: Duration::from_secs(600),
    };
    ctx.step_with("call", policy, (), |()| async {
        let attempt = FLAKY_ATTEMPTS.fetch_add(1, Ordering::SeqCst) + 1;
        if attempt < 3 {
            Err(StepError::retryable(format!("attempt {attempt} failed")))
        } else {
            Ok(format!("ok after {attempt}"))
        }
    })
    .await
}

/// Sleep `hours` hours once.
async fn nap(ctx: Ctx, hours: u64) -> Result<u64, WorkflowError> {
    ctx.sleep(HOUR * hours as u32).await?;
    Ok(hours)
}

static WAIT_FOR_SIGNAL: AtomicBool = AtomicBool::new(false);

/// Not deterministic: what it waits for depends on a global the test flips.
async fn fickle(ctx: Ctx, _: ()) -> Result<(), WorkflowError> {
    if WAIT_FOR_SIGNAL.load(Ordering::SeqCst) {
        ctx.wait_for::<Value>("never").await.map(|_| ())
    } else {
        ctx.sleep(HOUR).await
    }
}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.workflow("approval", approval)
        .workflow("hourly", hourly)
        .workflow("greet", greet)
        .workflow("wait_go", wait_go)
        .workflow("flaky", flaky)
        .workflow("nap", nap)
        .workflow("fickle", fickle);
    r.hook(&name_hook());
    r
}

#[tokio::test]
async fn a_hook_races_a_day_long_timer_in_virtual_time() {
    let env = TestEnv::new(registry()).await.unwrap();
    let run = env.start("approval", ()).await.unwrap();
    assert_eq!(env.status(&run).await.unwrap(), RunStatus::Suspended);
    assert_eq!(env.hooks(&run).await.unwrap().len(), 1);

    let started = Instant::now();
    env.advance(23 * HOUR).await.unwrap();
    assert_eq!(env.status(&run).await.unwrap(), RunStatus::Suspended);
    assert_eq!(env.now_ms(), START_MS + 23 * HOUR_MS);
    let err = env.output::<Value>(&run).await.unwrap_err();
    assert!(
        matches!(
            err,
            TestError::NotCompleted {
                status: RunStatus::Suspended,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("advance the clock"), "{err}");

    env.advance(HOUR).await.unwrap();
    println!(
        "advancing a day of virtual time took {:?}",
        started.elapsed()
    );
    assert_eq!(
        env.output::<Value>(&run).await.unwrap(),
        json!({ "timed_out": true })
    );
    // The timer fired exactly at its deadline, by the virtual clock.
    let journal = env.journal(&run).await.unwrap();
    let fired = journal
        .iter()
        .find(|e| matches!(e.body, EventBody::TimerFired { .. }))
        .expect("a timer_fired entry");
    assert_eq!(fired.at_ms, START_MS + 24 * HOUR_MS);
    env.replay(&run).await.unwrap();

    // The same workflow answered before the deadline takes the other branch.
    let run = env.start("approval", ()).await.unwrap();
    env.advance(12 * HOUR).await.unwrap();
    let token = env.hook_token(&run).await.unwrap();
    assert_eq!(env.resume(&token, json!("yes")).await.unwrap(), run);
    assert_eq!(
        env.output::<Value>(&run).await.unwrap(),
        json!({ "approved": "yes" })
    );
    env.replay(&run).await.unwrap();
    env.shutdown().await;
}

// Several worker threads: settling must be exact under real parallelism too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_advance_of_a_day_fires_24_hourly_timers_in_order() {
    let env = TestEnv::new(registry()).await.unwrap();
    let run = env.start("hourly", ()).await.unwrap();
    let started = Instant::now();
    env.advance(DAY).await.unwrap();
    println!("24 hourly timers took {:?}", started.elapsed());
    assert_eq!(env.output::<u32>(&run).await.unwrap(), 24);
    assert_eq!(env.now_ms(), START_MS + 24 * HOUR_MS);

    let journal = env.journal(&run).await.unwrap();
    let mut deadlines = std::collections::HashMap::new();
    let mut fired_at = Vec::new();
    for e in &journal {
        match &e.body {
            EventBody::TimerStarted { cmd, fire_at_ms } => {
                deadlines.insert(*cmd, *fire_at_ms);
            }
            EventBody::TimerFired { cmd } => {
                let due = deadlines[cmd];
                assert!(
                    e.at_ms >= due,
                    "timer {cmd} fired at {} before {due}",
                    e.at_ms
                );
                fired_at.push(e.at_ms);
            }
            _ => {}
        }
    }
    assert_eq!(fired_at.len(), 24);
    // Each at its own instant: an hour apart, in order.
    let expected: Vec<u64> = (1..=24).map(|h| START_MS + h * HOUR_MS).collect();
    assert_eq!(fired_at, expected);
    env.replay(&run).await.unwrap();
    env.shutdown().await;
}

#[tokio::test]
async fn a_hook_resume_reaches_the_output_at_once() {
    let env = TestEnv::new(registry()).await.unwrap();
    let run = env.start("greet", ()).await.unwrap();
    assert_eq!(env.hook_token(&run).await.unwrap(), "greet:1");
    // The hook's definition refuses a payload of the wrong shape; nothing is stored.
    let err = env
        .resume("greet:1", json!({"nom": "ana"}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("name"), "{err}");
    assert_eq!(env.status(&run).await.unwrap(), RunStatus::Suspended);
    let to = env
        .resume_typed(&name_hook(), "greet:1", &Name { name: "ana".into() })
        .await
        .unwrap();
    assert_eq!(to, run);
    assert_eq!(env.output::<String>(&run).await.unwrap(), "hello ana");
    assert!(env.hooks(&run).await.unwrap().is_empty());
    // Nothing holds the token any more.
    let err = env
        .resume("greet:1", json!({"name": "bo"}))
        .await
        .unwrap_err();
    assert!(matches!(err, TestError::Engine(_)), "{err}");
    env.replay(&run).await.unwrap();
    env.shutdown().await;
}

#[tokio::test]
async fn a_signal_wakes_its_waiting_run() {
    let env = TestEnv::new(registry()).await.unwrap();
    let run = env.start("wait_go", ()).await.unwrap();
    assert_eq!(env.status(&run).await.unwrap(), RunStatus::Suspended);
    let to = env.signal("go", json!({"n": 1})).await.unwrap();
    assert_eq!(to.as_deref(), Some(run.as_str()));
    assert_eq!(
        env.output::<Value>(&run).await.unwrap(),
        json!({ "got": {"n": 1} })
    );
    env.replay(&run).await.unwrap();
    env.shutdown().await;
}

#[tokio::test]
async fn a_cancelled_run_is_cancelled_when_cancel_returns() {
    let env = TestEnv::new(registry()).await.unwrap();
    let run = env.start("approval", ()).await.unwrap();
    env.cancel(&run).await.unwrap();
    assert_eq!(env.status(&run).await.unwrap(), RunStatus::Cancelled);
    let err = env.output::<Value>(&run).await.unwrap_err();
    assert!(err.to_string().contains("cancelled"), "{err}");
    env.shutdown().await;
}

// Several worker threads: settling must be exact under real parallelism too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_is_retried_with_back_off_on_the_virtual_clock() {
    let env = TestEnv::new(registry()).await.unwrap();
    let run = env.start("flaky", ()).await.unwrap();
    // First attempt failed; the retry waits 10 s of virtual time.
    assert_eq!(FLAKY_ATTEMPTS.load(Ordering::SeqCst), 1);
    assert_eq!(env.status(&run).await.unwrap(), RunStatus::Running);
    assert_eq!(env.clock().next_wait_ms(), Some(START_MS + 10_000));

    env.advance(Duration::from_millis(9_999)).await.unwrap();
    assert_eq!(FLAKY_ATTEMPTS.load(Ordering::SeqCst), 1);
    env.advance(Duration::from_millis(1)).await.unwrap();
    assert_eq!(FLAKY_ATTEMPTS.load(Ordering::SeqCst), 2);
    // Then 20 s.
    env.advance(Duration::from_secs(60)).await.unwrap();
    assert_eq!(FLAKY_ATTEMPTS.load(Ordering::SeqCst), 3);
    assert_eq!(env.output::<String>(&run).await.unwrap(), "ok after 3");

    let journal = env.journal(&run).await.unwrap();
    let done = journal
        .iter()
        .find(|e| matches!(e.body, EventBody::StepCompleted { .. }))
        .expect("step_completed");
    assert!(matches!(
        done.body,
        EventBody::StepCompleted { attempts: 3, .. }
    ));
    assert_eq!(done.at_ms, START_MS + 30_000);
    env.replay(&run).await.unwrap();
    env.shutdown().await;
}

// Several worker threads: settling must be exact under real parallelism too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advance_fires_the_timers_of_evicted_runs_on_time() {
    // One live run at most: starting the second evicts the first.
    let config = EngineConfig {
        max_live_runs: 1,
        ..EngineConfig::default()
    };
    let env = TestEnv::with_config(registry(), config).await.unwrap();
    let first = env.start("nap", 1).await.unwrap();
    let second = env.start("nap", 2).await.unwrap();
    let third = env.start("nap", 3).await.unwrap();
    assert!(env.engine().live_runs() <= 2);
    env.advance(4 * HOUR).await.unwrap();
    for (run, hours) in [(&first, 1u64), (&second, 2), (&third, 3)] {
        assert_eq!(env.output::<u64>(run).await.unwrap(), hours);
        let journal = env.journal(run).await.unwrap();
        let fired = journal
            .iter()
            .find(|e| matches!(e.body, EventBody::TimerFired { .. }))
            .expect("timer_fired");
        assert_eq!(fired.at_ms, START_MS + hours * HOUR_MS, "run of {hours} h");
        env.replay(run).await.unwrap();
    }
    env.shutdown().await;
}

#[tokio::test]
async fn replay_reports_code_that_does_not_reproduce_its_journal() {
    let env = TestEnv::new(registry()).await.unwrap();
    let run = env.start("fickle", ()).await.unwrap();
    env.replay(&run).await.unwrap();
    WAIT_FOR_SIGNAL.store(true, Ordering::SeqCst);
    let err = env.replay(&run).await.unwrap_err();
    WAIT_FOR_SIGNAL.store(false, Ordering::SeqCst);
    assert!(matches!(err, TestError::ReplayDiverged { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("does not replay"), "{message}");
    println!("{message}");
    // Checking wrote nothing: the run still waits for its hour.
    assert_eq!(env.status(&run).await.unwrap(), RunStatus::Suspended);
    env.advance(HOUR).await.unwrap();
    assert_eq!(env.status(&run).await.unwrap(), RunStatus::Completed);
    env.shutdown().await;
}

#[tokio::test]
async fn errors_say_what_to_do() {
    let env = TestEnv::new(registry()).await.unwrap();
    let err = env.start("nope", ()).await.unwrap_err();
    assert!(err.to_string().contains("not registered"), "{err}");
    let run = env.start("nap", 1).await.unwrap();
    let err = env.hook_token(&run).await.unwrap_err();
    assert!(matches!(err, TestError::NoHook { .. }), "{err}");
    env.advance(HOUR).await.unwrap();
    let err = env.output::<String>(&run).await.unwrap_err();
    assert!(matches!(err, TestError::Output { .. }), "{err}");
    env.shutdown().await;
}
