//! The workflow API, second edition (issue #15): journals written before waits were
//! released (`SignalReleased`) replay unchanged, a journal ending where a release now comes
//! writes it from then on, and a release of another wait at its index is a divergence. The
//! rest of the second edition's signal behaviour is in `signals_second_edition.rs`.

#![allow(unused_imports)]

mod harness;
mod thread_support;

use std::time::Duration;

use harness::{assert_trio, replay, workflow, Sim, Store, RUN_ID, START_MS, WORKFLOW};
use serde_json::{json, Value};
use tether_core::{race, Ctx, Either, Event, EventBody, Progress, WorkflowError};

const HOUR: Duration = Duration::from_secs(3600);
const HOUR_MS: u64 = 3_600_000;

// ---------------------------------------------------------------------------------------------
// Journals of the first release (no releases) replay unchanged
// ---------------------------------------------------------------------------------------------

fn ev(seq: u64, body: EventBody) -> Event {
    Event {
        seq,
        at_ms: START_MS,
        body,
    }
}

async fn race_then_step(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let r = race(ctx.wait_for::<Value>("s"), ctx.sleep(HOUR)).await;
    let n: i32 = ctx.step("after", (), |_| async { Ok(5) }).await?;
    Ok(json!({ "timed_out": matches!(r, Either::Right(_)), "n": n }))
}

/// The journal 0.1 wrote for `race_then_step` when the timer won: no release after the race.
fn old_journal() -> Vec<Event> {
    vec![
        ev(
            1,
            EventBody::RunStarted {
                workflow: WORKFLOW.into(),
                input: Value::Null,
                thread: None,
            },
        ),
        ev(
            2,
            EventBody::SignalWaited {
                cmd: 1,
                signal_id: "s".into(),
            },
        ),
        ev(
            3,
            EventBody::TimerStarted {
                cmd: 2,
                fire_at_ms: START_MS + HOUR_MS,
            },
        ),
        ev(4, EventBody::TimerFired { cmd: 2 }),
        ev(
            5,
            EventBody::StepCompleted {
                cmd: 3,
                name: "after".into(),
                output: json!(5),
                attempts: 1,
            },
        ),
        ev(
            6,
            EventBody::RunCompleted {
                output: json!({ "timed_out": true, "n": 5 }),
            },
        ),
    ]
}

#[test]
fn an_old_journal_that_moved_on_without_a_release_replays_unchanged() {
    let wf = workflow(race_then_step);
    let journal = old_journal();
    let r = replay(&wf, &journal).expect("replays");
    assert_eq!(
        r.progress,
        Progress::Finished(journal[5].body.clone()),
        "same end"
    );
    assert!(r.outbox.is_empty(), "nothing new: {:?}", r.outbox);
    assert!(r.step_tasks.is_empty());
}

#[test]
fn an_old_journal_that_ends_where_a_release_comes_writes_it_from_then_on() {
    let wf = workflow(race_then_step);
    // Crash (or upgrade) right after the timer fired: the release is the live edge.
    let journal = &old_journal()[..4];
    let r = replay(&wf, journal).expect("replays");
    assert_eq!(r.progress, Progress::Waiting);
    assert_eq!(
        r.outbox,
        vec![EventBody::SignalReleased {
            cmd: 3,
            wait_cmd: 1,
            signal_id: "s".into(),
            returned: false,
            delivered_to: None
        }]
    );
    assert_eq!(r.step_tasks.len(), 1);
    assert_eq!(r.step_tasks[0].cmd, 4);
}

#[test]
fn the_new_journal_of_the_same_run_has_the_release_and_replays() {
    let wf = workflow(race_then_step);
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        sim.fire_next_timer();
        sim.settle();
    });
    assert_eq!(sim.output(), json!({ "timed_out": true, "n": 5 }));
    assert_eq!(
        sim.kinds(),
        [
            "run_started",
            "signal_waited",
            "timer_started",
            "timer_fired",
            "signal_released",
            "step_completed",
            "run_completed"
        ]
    );
}

#[test]
fn a_release_of_another_wait_at_its_index_is_a_divergence() {
    let wf = workflow(race_then_step);
    let mut journal = old_journal();
    journal[4] = ev(
        5,
        EventBody::SignalReleased {
            cmd: 3,
            wait_cmd: 9,
            signal_id: "s".into(),
            returned: false,
            delivered_to: None,
        },
    );
    journal.truncate(5);
    let err = replay(&wf, &journal).expect_err("diverges");
    assert_eq!(err.to_info().code, "nondeterminism", "{err}");
}
