//! `ctx.now()`, `ctx.random()` and `ctx.uuid()`: the only non-deterministic values a workflow
//! may read. Each read is a command whose value is journaled (`Now`, `Random`, `Uuid`); replay
//! returns the journaled value, whatever the clock and the random source say.

mod harness;

use std::time::{Duration, UNIX_EPOCH};

use harness::{assert_trio, replay_with_env, workflow, Sim, SimEnv, START_MS};
use serde_json::{json, Value};
use tether_core::{Ctx, EventBody, Progress, WorkflowError};

/// Read each value, sleep, read each again.
async fn readings(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let read = |ctx: &Ctx| {
        let now = ctx.now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        json!({ "now": now, "random": ctx.random(), "uuid": ctx.uuid().to_string() })
    };
    let first = read(&ctx);
    ctx.sleep(Duration::from_secs(2)).await?;
    let second = read(&ctx);
    Ok(json!([first, second]))
}

#[test]
fn values_are_journaled_and_replayed() {
    let wf = workflow(readings);
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        sim.fire_due_timers(2_000);
    });

    assert_eq!(
        sim.kinds(),
        [
            "run_started",
            "now",
            "random",
            "uuid",
            "timer_started",
            "timer_fired",
            "now",
            "random",
            "uuid",
            "run_completed"
        ]
    );
    let out = sim.output();
    // The output is what the journal says was read.
    let j = sim.journal();
    assert_eq!(
        j[1].body,
        EventBody::Now {
            cmd: 1,
            ms: START_MS
        }
    );
    assert_eq!(
        j[2].body,
        EventBody::Random {
            cmd: 2,
            value: out[0]["random"].as_u64().unwrap()
        }
    );
    assert_eq!(
        j[3].body,
        EventBody::Uuid {
            cmd: 3,
            value: out[0]["uuid"].as_str().unwrap().to_string()
        }
    );
    assert_eq!(out[1]["now"], json!(START_MS + 2_000));
    assert_ne!(out[0]["random"], out[1]["random"]);
    assert_ne!(out[0]["uuid"], out[1]["uuid"]);
    let uuid: uuid::Uuid = out[0]["uuid"].as_str().unwrap().parse().unwrap();
    assert_eq!(uuid.get_version_num(), 4);
}

#[test]
fn replay_ignores_the_clock_and_the_random_source() {
    let wf = workflow(readings);
    let mut sim = Sim::start(&wf, Value::Null);
    sim.settle();
    sim.fire_due_timers(2_000);
    sim.settle();
    let output = sim.output();

    // A worker a day later, with its own randomness (already used for something else).
    let other = SimEnv::new(START_MS + 86_400_000);
    other.skip_to(12_345);
    let r = replay_with_env(&wf, sim.journal(), other).expect("replay");
    assert_eq!(
        r.progress,
        Progress::Finished(EventBody::RunCompleted { output })
    );
    assert!(r.outbox.is_empty());
}

#[test]
fn a_fresh_run_draws_from_the_environment() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        Ok(json!({ "now": ctx.now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64 }))
    });
    let mut sim = Sim::start(&wf, Value::Null);
    assert_eq!(
        sim.machine_mut().take_outbox(),
        [EventBody::Now {
            cmd: 1,
            ms: START_MS
        }]
    );
    // The value was handed to the workflow at once; the record is still appended before the end.
    assert!(matches!(sim.progress(), Progress::Finished(_)));
}

#[test]
fn a_value_read_but_lost_in_a_crash_is_read_again() {
    // A crash between reading `now` and committing it: the restarted run reads again (nothing
    // was journaled, so nothing was promised) and continues consistently.
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let t = ctx.now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        ctx.sleep(Duration::from_secs(1)).await?;
        Ok(t)
    });
    let mut sim = Sim::start(&wf, Value::Null);
    let _lost = sim.machine_mut().take_outbox();
    let later = SimEnv::new(START_MS + 500);
    let r = replay_with_env(&wf, &sim.journal()[..1], later).expect("replay");
    assert_eq!(
        r.outbox,
        [
            EventBody::Now {
                cmd: 1,
                ms: START_MS + 500
            },
            EventBody::TimerStarted {
                cmd: 2,
                fire_at_ms: START_MS + 1_500
            }
        ]
    );
}
