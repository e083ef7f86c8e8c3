//! What the fuzz targets (`fuzz/`) found in the core, kept as plain tests. The saved inputs
//! themselves run in `crates/tether-server/tests/fuzz_regressions.rs`.

mod harness;

use harness::{assert_trio, replay, workflow};
use serde_json::{json, Value};
use tether_core::{Ctx, Event, EventBody, WorkflowError};

/// `journal_replay` found: a state key holding `null` was read as `Some(null)` live, but its
/// journal record (`"value": null`) decodes as "absent", so a replay read `None`.
#[test]
fn a_null_in_shared_state_reads_the_same_live_and_after_the_journal_round_trip() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        ctx.set("k", &Value::Null).await?;
        let v: Option<Value> = ctx.get("k").await?;
        Ok::<_, WorkflowError>(json!({ "present": v.is_some() }))
    });
    let sim = assert_trio(&wf, Value::Null, |_| {});
    assert_eq!(sim.output(), json!({ "present": false }));
    // Through the store's encoding (JSON text), as a replay after a restart reads it.
    let stored: Vec<Event> = sim
        .journal()
        .iter()
        .map(|e| {
            let text = serde_json::to_string(e).expect("encode");
            serde_json::from_str(&text).expect("decode")
        })
        .collect();
    let r = replay(&wf, &stored).expect("replay");
    match r.progress {
        tether_core::Progress::Finished(EventBody::RunCompleted { output }) => {
            assert_eq!(output, json!({ "present": false }));
        }
        other => panic!("expected the run to complete, got {other:?}"),
    }
}

/// `journal_replay` found: a damaged journal whose entry after `run_started` has `seq` 0 made
/// replay subtract below zero (a panic in debug builds, a wrapped position in release).
#[test]
fn a_journal_with_a_zero_position_does_not_panic() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        ctx.sleep(std::time::Duration::from_secs(1)).await?;
        Ok::<_, WorkflowError>(Value::Null)
    });
    let journal = [
        Event {
            seq: 1,
            at_ms: 0,
            body: EventBody::RunStarted {
                workflow: "under_test".into(),
                input: Value::Null,
                thread: None,
            },
        },
        Event {
            seq: 0,
            at_ms: 0,
            body: EventBody::AttemptFailed {
                attempt: 1,
                error: tether_core::ErrorInfo::new("e", "m"),
                retry_at_ms: 0,
            },
        },
        Event {
            seq: 0,
            at_ms: 0,
            body: EventBody::TimerStarted {
                cmd: 1,
                fire_at_ms: 5,
            },
        },
    ];
    // Any answer but a panic.
    let _ = replay(&wf, &journal);
}

/// `webhook_request` found: without serde_json's `float_roundtrip`, a float parsed from a
/// request (what the live run sees) could read back from the journal's JSON text as a
/// neighbouring float (what a replay sees).
#[test]
fn floats_read_back_from_the_journal_exactly() {
    for text in [
        "1.7976931324311578e308",
        "2.2250738585072011e-308",
        "0.1000000000000000055511151231257827",
        "9007199254740993.0",
    ] {
        let live: Value = serde_json::from_str(text).expect("parse");
        let entry = Event {
            seq: 2,
            at_ms: 0,
            body: EventBody::HookReceived {
                hook_cmd: 1,
                payload: live.clone(),
            },
        };
        let stored = serde_json::to_string(&entry).expect("encode");
        let replayed: Event = serde_json::from_str(&stored).expect("decode");
        assert_eq!(replayed, entry, "{text} became {stored}");
    }
}
