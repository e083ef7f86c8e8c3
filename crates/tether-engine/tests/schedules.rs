//! Durable cron schedules (#18 point 2) on a real SQLite file with a manual clock: every tick
//! starts exactly one run, through restarts; a tick missed while the engine was down runs
//! once (or is skipped), as the schedule's `catch_up` says; pause, resume, delete, overlap.

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::{json, Value};
use tether_core::{Ctx, HookOptions, Registry, RunStatus, WorkflowError};
use tether_engine::schedules::{CatchUp, Overlap, ScheduleSpec};
use tether_engine::{Clock, Engine, EngineConfig, EngineError, StartOptions};
use tether_store::RunFilter;

const T0: u64 = 1_735_689_600_000; // 2025-01-01T00:00:00Z
const S: u64 = 1_000;

async fn tick(_ctx: Ctx, input: Value) -> Result<Value, WorkflowError> {
    Ok(input)
}

async fn wait_for_go(ctx: Ctx, _input: Value) -> Result<Value, WorkflowError> {
    let mut hook = ctx.create_hook::<Value>(HookOptions::new()).await?;
    hook.recv().await
}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.workflow("tick", tick);
    r.workflow("wait_for_go", wait_for_go);
    r
}

fn every_second(id: &str, catch_up: CatchUp) -> ScheduleSpec {
    ScheduleSpec {
        id: id.into(),
        workflow: "tick".into(),
        cron: "*/1 * * * * *".into(),
        timezone: "UTC".into(),
        input: json!({ "from": id }),
        overlap: Overlap::Allow,
        catch_up,
    }
}

fn config(clock: &Clock) -> EngineConfig {
    EngineConfig {
        clock: clock.clone(),
        ..fast_config()
    }
}

/// Move the clock to `to`, stopping at every instant something waits for (each tick), and
/// settling after each move (as the test kit's `advance` does).
async fn advance_to(engine: &Engine, clock: &Clock, to: u64) {
    engine.settle().await;
    while let Some(next) = clock.next_wait_ms().filter(|t| *t > clock.now_ms()) {
        if next > to {
            break;
        }
        clock.set_ms(next);
        engine.settle().await;
    }
    clock.set_ms(to);
    engine.settle().await;
}

/// The ticks (ms) of the runs schedule `id` started.
async fn ticks_of(engine: &Engine, id: &str) -> BTreeSet<u64> {
    let runs = engine
        .store()
        .list_runs(&RunFilter {
            limit: 1000,
            ..RunFilter::default()
        })
        .await
        .unwrap();
    let mut ticks = BTreeSet::new();
    for run in runs {
        if let Some((schedule, tick)) = tether_store::schedule_of(&run.run_id) {
            if schedule == id {
                assert!(ticks.insert(tick), "one run per tick: {}", run.run_id);
            }
        }
    }
    ticks
}

fn seconds(range: std::ops::RangeInclusive<u64>) -> BTreeSet<u64> {
    range.map(|k| T0 + k * S).collect()
}

#[tokio::test]
async fn an_every_second_schedule_starts_one_run_per_tick() {
    let db = TestDb::new();
    let clock = Clock::manual(T0);
    let engine = db.engine(registry(), config(&clock)).await;
    let created = engine
        .create_schedule(every_second("beat", CatchUp::One))
        .await
        .unwrap();
    assert!(created.created);
    assert_eq!(created.schedule.next_tick_ms, Some(T0 + S));
    advance_to(&engine, &clock, T0 + 20 * S).await;
    assert_eq!(
        ticks_of(&engine, "beat").await,
        seconds(1..=20),
        "20 s: 20 runs"
    );
    let run = engine.get_run("sched:beat:1735689620000").await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.output, Some(json!({ "from": "beat" })));
    let schedule = engine.get_schedule("beat").await.unwrap();
    assert_eq!(schedule.next_tick_ms, Some(T0 + 21 * S));
    assert_eq!(
        schedule.last_run_id.as_deref(),
        Some("sched:beat:1735689620000")
    );
    let metrics = engine.render_metrics().await;
    assert!(
        metrics.contains("tether_schedule_ticks_total{outcome=\"started\"} 20"),
        "{metrics}"
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn restarts_keep_one_run_per_tick_and_missed_ticks_follow_catch_up() {
    let db = TestDb::new();
    let clock = Clock::manual(T0);
    let engine = db.engine(registry(), config(&clock)).await;
    for spec in [
        every_second("one", CatchUp::One),
        every_second("skip", CatchUp::Skip),
    ] {
        engine.create_schedule(spec).await.unwrap();
    }
    advance_to(&engine, &clock, T0 + 10 * S).await;
    engine.halt().await; // as a crash: nothing handed over
    drop(engine);
    // A restart on the same second: nothing fires twice.
    let engine = db.engine(registry(), config(&clock)).await;
    engine.settle().await;
    assert_eq!(ticks_of(&engine, "one").await, seconds(1..=10));
    engine.halt().await;
    drop(engine);

    // Down for 5 minutes; the grace is 10 s: ticks 11..=299 were missed.
    let clock = Clock::manual(T0 + 310 * S);
    let engine = db.engine(registry(), config(&clock)).await;
    advance_to(&engine, &clock, T0 + 315 * S).await;
    let mut one = seconds(1..=10);
    one.insert(T0 + 299 * S); // the latest missed tick, once
    one.extend(seconds(300..=315)); // the ticks within the grace, and the next ones
    assert_eq!(ticks_of(&engine, "one").await, one, "catch_up one");
    let mut skip = seconds(1..=10);
    skip.extend(seconds(300..=315));
    assert_eq!(ticks_of(&engine, "skip").await, skip, "catch_up skip");
    engine.shutdown().await;
}

#[tokio::test]
async fn pause_resume_delete_and_overlap() {
    let db = TestDb::new();
    let clock = Clock::manual(T0);
    let engine = db.engine(registry(), config(&clock)).await;
    engine
        .create_schedule(every_second("p", CatchUp::One))
        .await
        .unwrap();
    let slow = ScheduleSpec {
        workflow: "wait_for_go".into(),
        overlap: Overlap::Skip,
        ..every_second("slow", CatchUp::One)
    };
    engine.create_schedule(slow).await.unwrap();
    advance_to(&engine, &clock, T0 + 2 * S).await;
    assert!(engine.pause_schedule("p").await.unwrap().paused);
    advance_to(&engine, &clock, T0 + 5 * S).await;
    assert_eq!(ticks_of(&engine, "p").await, seconds(1..=2), "paused");
    let resumed = engine.resume_schedule("p").await.unwrap();
    assert_eq!(
        resumed.next_tick_ms,
        Some(T0 + 6 * S),
        "no catch-up of paused ticks"
    );
    advance_to(&engine, &clock, T0 + 7 * S).await;
    assert_eq!(
        ticks_of(&engine, "p").await,
        [1, 2, 6, 7].map(|k| T0 + k * S).into()
    );
    engine.delete_schedule("p").await.unwrap();
    advance_to(&engine, &clock, T0 + 9 * S).await;
    assert_eq!(
        ticks_of(&engine, "p").await.len(),
        4,
        "deleted: no more ticks"
    );
    assert!(matches!(
        engine.get_schedule("p").await,
        Err(EngineError::ScheduleNotFound { .. })
    ));
    // `slow`'s first run waits for a payload: every later tick was skipped.
    assert_eq!(
        ticks_of(&engine, "slow").await,
        seconds(1..=1),
        "overlap skip"
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn creation_is_checked_and_idempotent() {
    let db = TestDb::new();
    let clock = Clock::manual(T0);
    let engine = db.engine(registry(), config(&clock)).await;
    let spec = every_second("c", CatchUp::One);
    assert!(engine.create_schedule(spec.clone()).await.unwrap().created);
    let again = engine.create_schedule(spec.clone()).await.unwrap();
    assert!(!again.created, "the same create again answers the schedule");
    let other = ScheduleSpec {
        cron: "0 * * * * *".into(),
        ..spec.clone()
    };
    assert!(matches!(
        engine.create_schedule(other).await,
        Err(EngineError::ScheduleExists { .. })
    ));
    let bad = [
        ScheduleSpec {
            cron: "every day".into(),
            ..every_second("b1", CatchUp::One)
        },
        ScheduleSpec {
            timezone: "Moon/Base".into(),
            ..every_second("b2", CatchUp::One)
        },
        ScheduleSpec {
            id: "has space".into(),
            ..every_second("b3", CatchUp::One)
        },
    ];
    for spec in bad {
        let e = engine.create_schedule(spec).await.unwrap_err();
        assert_eq!(e.code(), "invalid_schedule", "{e}");
    }
    let unknown = ScheduleSpec {
        workflow: "nope".into(),
        ..every_second("b4", CatchUp::One)
    };
    let e = engine.create_schedule(unknown).await.unwrap_err();
    assert_eq!(e.code(), "workflow_not_found");
    assert_eq!(engine.list_schedules().await.unwrap().len(), 1);
    // Run ids of schedules are kept for them.
    let taken = engine
        .start_run_with(
            "tick",
            json!(1),
            StartOptions {
                run_id: Some("sched:c:1".into()),
                ..StartOptions::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(taken.code(), "invalid_input");
    engine.shutdown().await;
}
