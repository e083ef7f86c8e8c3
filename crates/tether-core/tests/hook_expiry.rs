//! Expiring hooks: `HookOptions::expires_in` journals the expiry instant with the hook's
//! creation (`HookCreated.expires_at_ms`, from the run's clock), the host appends
//! `HookExpired` when it is due (like `TimerFired`), and the hook's next wait ends expired once
//! the payloads accepted before the expiry are taken. Each scenario runs three ways (fresh,
//! replayed to completion, replayed up to every suspension).

mod harness;

use std::time::Duration;

use harness::{assert_trio, workflow, START_MS};
use serde_json::{json, Value};
use tether_core::{Ctx, Deadline, EventBody, HookEvent, HookOptions, Progress, WorkflowError};

/// The bundled `expiring_approval`, in short: the payload, or `{"expired": true}`.
async fn approval(ctx: Ctx, input: Value) -> Result<Value, WorkflowError> {
    let ms = input["expires_ms"].as_u64().unwrap_or(1_000);
    let mut hook = ctx
        .create_hook::<Value>(
            HookOptions::new()
                .token("approval:1")
                .expires_in(Duration::from_millis(ms)),
        )
        .await?;
    Ok(match hook.recv_or_expired().await? {
        HookEvent::Payload(payload) => payload,
        HookEvent::Expired => json!({ "expired": true }),
    })
}

/// Every payload until the hook expires, with `next()` (a stream that ends at the expiry).
async fn until_expiry(ctx: Ctx, _: Value) -> Result<Vec<Value>, WorkflowError> {
    let mut hook = ctx
        .create_hook::<Value>(HookOptions::new().expires_in(Duration::from_secs(10)))
        .await?;
    let mut got = Vec::new();
    while let Some(payload) = hook.next().await {
        got.push(payload?);
    }
    Ok(got)
}

fn created_expiry(body: &EventBody) -> Option<u64> {
    match body {
        EventBody::HookCreated { expires_at_ms, .. } => *expires_at_ms,
        other => panic!("expected hook_created, got {other:?}"),
    }
}

#[test]
fn a_hook_without_a_payload_expires_at_its_journaled_time() {
    let wf = workflow(approval);
    let sim = assert_trio(&wf, json!({ "expires_ms": 1_000 }), |sim| {
        sim.settle();
        assert_eq!(sim.progress(), &Progress::Waiting);
        assert_eq!(
            sim.machine().pending_deadlines(),
            [Deadline {
                cmd: 1,
                at_ms: START_MS + 1_000,
                entry: EventBody::HookExpired {
                    hook_cmd: 1,
                    token: "approval:1".into()
                },
            }]
        );
        // Not due yet.
        assert_eq!(sim.fire_due_timers(999), Vec::<u32>::new());
        assert_eq!(sim.fire_due_timers(1), [1]);
    });
    assert_eq!(sim.output(), json!({ "expired": true }));
    assert_eq!(
        created_expiry(sim.entries("hook_created")[0]),
        Some(START_MS + 1_000)
    );
    // The expiry released the token: nothing to dispose when the hook is dropped.
    assert_eq!(
        sim.kinds(),
        [
            "run_started",
            "hook_created",
            "hook_expired",
            "run_completed"
        ]
    );
}

#[test]
fn a_payload_before_the_expiry_is_delivered_and_the_expiry_is_dropped() {
    let wf = workflow(approval);
    let sim = assert_trio(&wf, json!({ "expires_ms": 1_000 }), |sim| {
        sim.settle();
        sim.resume_token("approval:1", json!({ "approved": true }))
            .expect("the hook holds its token");
        sim.settle();
        assert!(sim.is_finished());
        assert!(sim.machine().pending_deadlines().is_empty());
    });
    assert_eq!(sim.output(), json!({ "approved": true }));
    assert_eq!(
        sim.kinds(),
        [
            "run_started",
            "hook_created",
            "hook_received",
            "hook_disposed",
            "run_completed"
        ]
    );
}

#[test]
fn payloads_journaled_before_the_expiry_come_out_first_then_the_stream_ends() {
    let wf = workflow(until_expiry);
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        let (cmd, _) = sim.hook();
        sim.resume(cmd, json!(1));
        sim.resume(cmd, json!(2));
        assert_eq!(sim.fire_due_timers(10_000), [cmd]);
    });
    assert_eq!(sim.output(), json!([1, 2]));
    assert_eq!(
        sim.kinds(),
        [
            "run_started",
            "hook_created",
            "hook_received",
            "hook_received",
            "hook_expired",
            "run_completed"
        ]
    );
}

#[test]
fn payloads_and_the_expiry_all_applied_before_the_workflow_waits_keep_their_order() {
    // The workflow is busy in a step while two payloads and the expiry are journaled.
    async fn busy_then_collect(ctx: Ctx, _: Value) -> Result<Vec<Value>, WorkflowError> {
        let mut hook = ctx
            .create_hook::<Value>(HookOptions::new().expires_in(Duration::from_secs(1)))
            .await?;
        ctx.step("work", (), |_: ()| async { Ok(0) }).await?;
        let mut got = Vec::new();
        while let Some(payload) = hook.next().await {
            got.push(payload?);
        }
        Ok(got)
    }
    let wf = workflow(busy_then_collect);
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.commit_outbox();
        let (cmd, _) = sim.hook();
        sim.resume(cmd, json!("a"));
        assert_eq!(sim.fire_due_timers(1_000), [cmd]);
        assert_eq!(sim.progress(), &Progress::Waiting);
        sim.settle();
    });
    assert_eq!(sim.output(), json!(["a"]));
}

#[test]
fn recv_on_an_expired_hook_fails_with_hook_expired() {
    async fn strict(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
        let hook = ctx
            .create_hook::<Value>(HookOptions::new().expires_in(Duration::from_millis(50)))
            .await?;
        let payload = hook.await?;
        Ok(payload)
    }
    let wf = workflow(strict);
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        assert_eq!(sim.fire_due_timers(50).len(), 1);
    });
    match sim.end() {
        EventBody::RunFailed { error } => assert_eq!(error.code, "hook_expired"),
        other => panic!("expected run_failed, got {other:?}"),
    }
}

#[test]
fn an_expiry_at_a_wall_clock_time_is_journaled_as_given() {
    async fn until(ctx: Ctx, _: Value) -> Result<bool, WorkflowError> {
        let at = std::time::UNIX_EPOCH + Duration::from_millis(START_MS + 7_000);
        let mut hook = ctx
            .create_hook::<Value>(HookOptions::new().expires_at(at))
            .await?;
        Ok(hook.recv_or_expired().await?.is_expired())
    }
    let wf = workflow(until);
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        assert_eq!(sim.fire_next_timer(), Some(1));
    });
    assert_eq!(sim.output(), json!(true));
    assert_eq!(
        created_expiry(sim.entries("hook_created")[0]),
        Some(START_MS + 7_000)
    );
}

#[test]
fn a_disposed_hook_has_no_expiry_left() {
    async fn dispose_early(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
        let hook = ctx
            .create_hook::<Value>(HookOptions::new().expires_in(Duration::from_secs(60)))
            .await?;
        hook.dispose();
        ctx.sleep(Duration::from_secs(1)).await?;
        Ok(Value::Null)
    }
    let wf = workflow(dispose_early);
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        let due = sim.machine().pending_deadlines();
        assert_eq!(due.len(), 1, "only the timer: {due:?}");
        assert!(matches!(due[0].entry, EventBody::TimerFired { .. }));
        sim.fire_next_timer();
    });
    assert!(sim.entries("hook_expired").is_empty());
}

#[test]
fn the_journaled_expiry_wins_over_the_code_on_replay() {
    // A replay reads the expiry from the journal even when the code now asks for another.
    let wf = workflow(approval);
    let sim = assert_trio(&wf, json!({ "expires_ms": 1_000 }), |sim| {
        sim.settle();
        sim.fire_due_timers(1_000);
    });
    let other_input = vec![tether_core::Event {
        seq: 1,
        at_ms: START_MS,
        body: EventBody::RunStarted {
            workflow: harness::WORKFLOW.into(),
            input: json!({ "expires_ms": 5_000 }),
            thread: None,
        },
    }];
    let mut journal = other_input;
    journal.extend(sim.journal()[1..].iter().cloned());
    let r = harness::replay_run(harness::RUN_ID, &wf, &journal).expect("replays");
    assert_eq!(
        r.progress,
        Progress::Finished(EventBody::RunCompleted {
            output: json!({ "expired": true })
        })
    );
}

#[test]
fn a_reservation_is_journaled_with_the_hook() {
    async fn reserved(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
        let mut hook = ctx
            .create_hook::<Value>(
                HookOptions::new()
                    .token("order:7")
                    .reserve_for(Duration::from_secs(3_600)),
            )
            .await?;
        hook.recv().await
    }
    let wf = workflow(reserved);
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        sim.resume_token("order:7", json!("paid")).expect("held");
    });
    match sim.entries("hook_created")[0] {
        EventBody::HookCreated {
            reserve_ms,
            expires_at_ms,
            ..
        } => {
            assert_eq!(*reserve_ms, Some(3_600_000));
            assert_eq!(*expires_at_ms, None);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn journals_without_expiry_fields_still_decode_and_new_ones_omit_them_when_unset() {
    let old = json!({"seq": 2, "at_ms": 1, "type": "hook_created", "cmd": 1, "token": "t",
        "kind": "hook", "metadata": null, "definition": null, "generated": false});
    let event: tether_core::Event = serde_json::from_value(old.clone()).expect("decodes");
    assert_eq!(created_expiry(&event.body), None);
    assert_eq!(serde_json::to_value(&event).expect("encodes"), old);
}
