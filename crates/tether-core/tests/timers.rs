//! Durable timers: `ctx.sleep` and `ctx.sleep_until` journal their deadline when they start
//! (`TimerStarted`), the host fires them (`TimerFired`), and replay reads the deadline from the
//! journal instead of computing it again.

mod harness;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use harness::{assert_trio, replay_with_env, workflow, Sim, SimEnv, START_MS};
use serde_json::{json, Value};
use tether_core::{join, Ctx, DueTimer, EventBody, Progress, WorkflowError};

fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

async fn nap(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let before = ms(ctx.now());
    ctx.sleep(Duration::from_secs(5)).await?;
    let after = ms(ctx.now());
    Ok(json!({ "before": before, "after": after }))
}

#[test]
fn sleep_waits_for_its_timer() {
    let wf = workflow(nap);
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        assert_eq!(
            sim.pending_timers(),
            [DueTimer {
                cmd: 2,
                fire_at_ms: START_MS + 5_000
            }]
        );
        assert_eq!(sim.fire_due_timers(5_000), [2]);
    });

    assert_eq!(
        sim.output(),
        json!({ "before": START_MS, "after": START_MS + 5_000 })
    );
    assert_eq!(
        sim.kinds(),
        [
            "run_started",
            "now",
            "timer_started",
            "timer_fired",
            "now",
            "run_completed"
        ]
    );
    assert_eq!(
        sim.journal()[2].body,
        EventBody::TimerStarted {
            cmd: 2,
            fire_at_ms: START_MS + 5_000
        }
    );
    assert_eq!(sim.journal()[3].body, EventBody::TimerFired { cmd: 2 });
}

#[test]
fn a_timer_is_not_due_before_its_deadline() {
    let wf = workflow(nap);
    let mut sim = Sim::start(&wf, Value::Null);
    // Not committed yet: nothing to fire.
    assert_eq!(sim.pending_timers(), []);
    sim.settle();
    assert_eq!(sim.fire_due_timers(4_999), Vec::<u32>::new());
    assert_eq!(sim.progress(), &Progress::Waiting);
    assert_eq!(sim.pending_timers().len(), 1);
    assert_eq!(sim.fire_due_timers(1), [2]);
    sim.settle();
    assert_eq!(sim.pending_timers(), []);
    assert_eq!(sim.output()["after"], json!(START_MS + 5_000));
}

#[test]
fn sleep_until_journals_the_exact_deadline() {
    let wf = workflow(|ctx: Ctx, input: Value| async move {
        let deadline = UNIX_EPOCH + Duration::from_millis(input["at"].as_u64().unwrap_or(0));
        ctx.sleep_until(deadline).await?;
        Ok(ms(ctx.now()))
    });
    let at = START_MS + 3_600_000;
    let sim = assert_trio(&wf, json!({ "at": at }), |sim| {
        sim.settle();
        assert_eq!(sim.fire_due_timers(3_599_999), Vec::<u32>::new());
        assert_eq!(sim.fire_next_timer(), Some(1));
    });
    assert_eq!(
        sim.journal()[1].body,
        EventBody::TimerStarted {
            cmd: 1,
            fire_at_ms: at
        }
    );
    assert_eq!(sim.output(), json!(at));
}

#[test]
fn replay_reads_the_deadline_from_the_journal() {
    let wf = workflow(nap);
    let mut sim = Sim::start(&wf, Value::Null);
    sim.settle();
    // A worker restarting an hour later, with a different clock: the deadline is the journaled
    // one, not "now + 5 s" again.
    let later = SimEnv::new(START_MS + 3_600_000);
    let r = replay_with_env(&wf, sim.journal(), later).expect("replay");
    assert_eq!(
        r.machine.pending_timers(),
        [DueTimer {
            cmd: 2,
            fire_at_ms: START_MS + 5_000
        }]
    );
    assert!(r.outbox.is_empty());
}

#[test]
fn a_dropped_sleep_is_abandoned() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let forgotten = ctx.sleep(Duration::from_secs(60));
        drop(forgotten);
        ctx.sleep(Duration::from_secs(1)).await?;
        Ok("woke")
    });
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        // Both timers were journaled, but only the awaited one is pending.
        assert_eq!(sim.entries("timer_started").len(), 2);
        assert_eq!(
            sim.pending_timers(),
            [DueTimer {
                cmd: 2,
                fire_at_ms: START_MS + 1_000
            }]
        );
        // Long after the first deadline, still only one fires.
        assert_eq!(sim.fire_due_timers(120_000), [2]);
    });
    assert_eq!(sim.output(), json!("woke"));
    assert_eq!(
        sim.entries("timer_fired"),
        [&EventBody::TimerFired { cmd: 2 }]
    );
}

#[test]
fn concurrent_timers_fire_in_deadline_order() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let (a, b) = join(
            ctx.sleep(Duration::from_secs(3)),
            ctx.sleep(Duration::from_secs(1)),
        )
        .await;
        a?;
        b?;
        Ok(ms(ctx.now()))
    });
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        let pending = sim.pending_timers();
        assert_eq!(
            pending,
            [
                DueTimer {
                    cmd: 2,
                    fire_at_ms: START_MS + 1_000
                },
                DueTimer {
                    cmd: 1,
                    fire_at_ms: START_MS + 3_000
                }
            ]
        );
        assert_eq!(sim.fire_next_timer(), Some(2));
        assert_eq!(sim.progress(), &Progress::Waiting);
        assert_eq!(sim.fire_next_timer(), Some(1));
    });
    assert_eq!(sim.output(), json!(START_MS + 3_000));
}

#[test]
fn a_zero_sleep_still_waits_for_the_host() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        ctx.sleep(Duration::ZERO).await?;
        Ok(1)
    });
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        assert_eq!(sim.progress(), &Progress::Waiting);
        assert_eq!(sim.fire_due_timers(0), [1]);
    });
    assert_eq!(
        sim.kinds(),
        [
            "run_started",
            "timer_started",
            "timer_fired",
            "run_completed"
        ]
    );
}
