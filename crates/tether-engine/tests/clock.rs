//! The engine on a manual clock: timers fire when the clock is moved past them (in deadline
//! order), `settle` returns once nothing is in flight, and a big jump does not make the node
//! take its own live runs again.
#![allow(missing_docs, missing_debug_implementations)]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tether_core::{join, Ctx, EventBody, HookOptions, Registry, RunStatus, WorkflowError};
use tether_engine::{Clock, Engine, EngineConfig};

const T0: u64 = 1_735_689_600_000; // 2025-01-01T00:00:00Z
const HOUR: Duration = Duration::from_secs(3600);
const HOUR_MS: u64 = 3_600_000;

async fn nap(ctx: Ctx, _: Value) -> Result<u64, WorkflowError> {
    ctx.sleep(HOUR).await?;
    Ok(ctx
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64)
}

/// Two timers started in one go, the later deadline first in command order.
async fn two_timers(ctx: Ctx, _: Value) -> Result<(), WorkflowError> {
    let (a, b) = join(ctx.sleep(2 * HOUR), ctx.sleep(HOUR)).await;
    a?;
    b
}

static STEP_RUNS: AtomicU32 = AtomicU32::new(0);

async fn step_then_hook(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let n: u32 = ctx
        .step("count", (), |()| async {
            Ok(STEP_RUNS.fetch_add(1, Ordering::SeqCst) + 1)
        })
        .await?;
    let mut hook = ctx
        .create_hook::<Value>(HookOptions::new().token("lease-test"))
        .await?;
    let got = hook.recv().await?;
    Ok(json!({ "step": n, "got": got }))
}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.workflow("nap", nap)
        .workflow("two_timers", two_timers)
        .workflow("step_then_hook", step_then_hook);
    r
}

async fn manual_engine(db: &TestDb) -> (Engine, Clock) {
    let clock = Clock::manual(T0);
    let config = EngineConfig {
        clock: clock.clone(),
        ..fast_config()
    };
    (db.engine(registry(), config).await, clock)
}

#[tokio::test]
async fn the_manual_clock_drives_a_runs_timer() {
    let db = TestDb::new();
    let (engine, clock) = manual_engine(&db).await;
    assert_eq!(engine.clock(), &clock);
    engine.settle().await; // nothing at all in flight
    let run = engine.start_run("nap", Value::Null).await.unwrap();
    engine.settle().await;
    let record = engine.get_run(&run).await.unwrap();
    assert_eq!(record.status, RunStatus::Suspended);
    assert_eq!(record.created_at_ms, T0);
    assert_eq!(record.wake_at_ms, Some(T0 + HOUR_MS));
    assert_eq!(clock.next_wait_ms(), Some(T0 + HOUR_MS));

    clock.advance(HOUR - Duration::from_millis(1));
    engine.settle().await;
    assert_eq!(
        engine.get_run(&run).await.unwrap().status,
        RunStatus::Suspended
    );
    clock.advance(Duration::from_millis(1));
    engine.settle().await;
    let record = engine.get_run(&run).await.unwrap();
    assert_eq!(record.status, RunStatus::Completed, "{record:?}");
    // The workflow read the virtual time too.
    assert_eq!(record.output, Some(json!(T0 + HOUR_MS)));
    let journal = engine.events(&run).await.unwrap();
    assert_eq!(journal[0].at_ms, T0);
    let fired = journal
        .iter()
        .find(|e| matches!(e.body, EventBody::TimerFired { .. }))
        .unwrap();
    assert_eq!(fired.at_ms, T0 + HOUR_MS);
    assert_eq!(clock.next_wait_ms(), None);
    engine.shutdown().await;
}

#[tokio::test]
async fn due_timers_fire_in_deadline_order() {
    let db = TestDb::new();
    let (engine, clock) = manual_engine(&db).await;
    let run = engine.start_run("two_timers", Value::Null).await.unwrap();
    engine.settle().await;
    // Both come due in one move: the earlier deadline (the second command) fires first.
    clock.advance(3 * HOUR);
    engine.settle().await;
    let record = engine.get_run(&run).await.unwrap();
    assert_eq!(record.status, RunStatus::Completed, "{record:?}");
    let journal = engine.events(&run).await.unwrap();
    let mut deadline = std::collections::HashMap::new();
    let mut fired = Vec::new();
    for e in &journal {
        match e.body {
            EventBody::TimerStarted { cmd, fire_at_ms } => {
                deadline.insert(cmd, fire_at_ms);
            }
            EventBody::TimerFired { cmd } => fired.push(deadline[&cmd]),
            _ => {}
        }
    }
    assert_eq!(fired, vec![T0 + HOUR_MS, T0 + 2 * HOUR_MS]);
    engine.shutdown().await;
}

#[tokio::test]
async fn a_day_long_jump_does_not_make_the_node_take_its_own_runs_again() {
    let db = TestDb::new();
    let (engine, clock) = manual_engine(&db).await;
    let run = engine
        .start_run("step_then_hook", Value::Null)
        .await
        .unwrap();
    engine.settle().await;
    let before = engine.events(&run).await.unwrap().len();
    assert_eq!(STEP_RUNS.load(Ordering::SeqCst), 1);

    // Every lease of this node is long over by the clock.
    clock.advance(Duration::from_secs(24 * 3600));
    engine.settle().await;
    // The run is live here: the poller's pass does not start a second actor for it.
    assert_eq!(engine.wake_due_runs().await.unwrap(), 0);
    engine.settle().await;
    assert_eq!(engine.live_runs(), 1);
    assert_eq!(engine.events(&run).await.unwrap().len(), before);

    engine
        .resume_hook("lease-test", json!("hi"), None)
        .await
        .unwrap();
    engine.settle().await;
    let record = engine.get_run(&run).await.unwrap();
    assert_eq!(record.status, RunStatus::Completed, "{record:?}");
    assert_eq!(record.output, Some(json!({ "step": 1, "got": "hi" })));
    assert_eq!(STEP_RUNS.load(Ordering::SeqCst), 1);
    engine.shutdown().await;
}
