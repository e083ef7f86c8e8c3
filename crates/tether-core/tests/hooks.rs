//! Token hooks: a workflow creates a hook (`HookCreated`, or `HookConflict` when another active
//! hook holds the token), the outside world sends payloads to its token (`HookReceived`, in
//! acceptance order), and disposing or dropping the hook releases the token (`HookDisposed`).

mod harness;

use futures::StreamExt;
use harness::{assert_trio, workflow, Sim, RUN_ID};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tether_core::{define_hook, Ctx, EventBody, HookOptions, Progress, WorkflowError};

/// Wait for one payload on a hook with a generated token.
async fn one_payload(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let mut hook = ctx.create_hook::<Value>(HookOptions::new()).await?;
    let token = hook.token().to_string();
    let payload = hook.recv().await?;
    Ok(json!({ "token": token, "payload": payload }))
}

/// Receive `input.count` payloads, one `next()` at a time.
async fn collect(ctx: Ctx, input: Value) -> Result<Vec<Value>, WorkflowError> {
    let count = input["count"].as_u64().unwrap_or(0);
    let mut hook = ctx
        .create_hook::<Value>(HookOptions::new().token("inbox"))
        .await?;
    let mut got = Vec::new();
    for _ in 0..count {
        got.push(hook.recv().await?);
    }
    Ok(got)
}

#[test]
fn a_hook_receives_a_payload_sent_to_its_generated_token() {
    let wf = workflow(one_payload);
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        assert_eq!(sim.progress(), &Progress::Waiting);
        let (_, token) = sim.hook();
        assert_eq!(sim.resume_token(&token, json!({ "ok": true })), Ok(1));
    });

    let created = sim.entries("hook_created");
    let EventBody::HookCreated {
        cmd,
        token,
        kind,
        metadata,
        definition,
        generated,
        ..
    } = created[0]
    else {
        panic!("expected hook_created, got {created:?}");
    };
    assert_eq!(*cmd, 1);
    assert_eq!(kind, "hook");
    assert_eq!(metadata, &Value::Null);
    assert_eq!(definition, &None);
    assert!(generated);
    // At least 128 bits, as lowercase hex.
    assert!(token.len() * 4 >= 128, "token {token:?} is too short");
    assert!(
        token
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "token {token:?} is not hex"
    );

    assert_eq!(
        sim.output(),
        json!({ "token": token, "payload": { "ok": true } })
    );
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
fn generated_tokens_differ() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let a = ctx.create_hook::<Value>(HookOptions::new()).await?;
        let b = ctx.create_hook::<Value>(HookOptions::new()).await?;
        Ok(vec![a.token().to_string(), b.token().to_string()])
    });
    let sim = assert_trio(&wf, Value::Null, |_| {});
    let tokens: Vec<String> = serde_json::from_value(sim.output()).unwrap();
    assert_ne!(tokens[0], tokens[1]);
    assert!(tokens.iter().all(|t| t.len() >= 32));
    // Both hooks were dropped at the end, in reverse order of creation.
    assert_eq!(
        sim.entries("hook_disposed"),
        [
            &EventBody::HookDisposed {
                cmd: 3,
                hook_cmd: 2,
                token: tokens[1].clone()
            },
            &EventBody::HookDisposed {
                cmd: 4,
                hook_cmd: 1,
                token: tokens[0].clone()
            }
        ]
    );
}

#[test]
fn a_custom_token_and_metadata_are_journaled() {
    let wf = workflow(|ctx: Ctx, input: Value| async move {
        let channel = input["channel"].as_str().unwrap_or_default().to_string();
        let hook = ctx
            .create_hook::<String>(
                HookOptions::new()
                    .token(format!("slack:{channel}"))
                    .metadata(json!({ "channel": channel })),
            )
            .await?;
        let text = hook.await?;
        Ok(text)
    });
    let sim = assert_trio(&wf, json!({ "channel": "ops" }), |sim| {
        sim.settle();
        assert_eq!(sim.resume_token("slack:ops", json!("hello")), Ok(1));
    });
    assert_eq!(
        sim.journal()[1].body,
        EventBody::HookCreated {
            cmd: 1,
            token: "slack:ops".into(),
            kind: "hook".into(),
            metadata: json!({ "channel": "ops" }),
            definition: None,
            generated: false,
            expires_at_ms: None,
            reserve_ms: None,
        }
    );
    assert_eq!(sim.output(), json!("hello"));
}

#[test]
fn a_stream_of_payloads_arrives_in_order() {
    let wf = workflow(collect);
    let sim = assert_trio(&wf, json!({ "count": 3 }), |sim| {
        for i in 1..=3 {
            sim.settle();
            assert_eq!(sim.progress(), &Progress::Waiting);
            sim.resume_token("inbox", json!(i)).unwrap();
        }
    });
    assert_eq!(sim.output(), json!([1, 2, 3]));
}

#[test]
fn a_hook_is_a_stream() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let mut hook = ctx
            .create_hook::<u32>(HookOptions::new().token("numbers"))
            .await?;
        let first_three: Vec<Result<u32, WorkflowError>> = (&mut hook).take(3).collect().await;
        let first_three = first_three.into_iter().collect::<Result<Vec<_>, _>>()?;
        let fourth = StreamExt::next(&mut hook).await;
        Ok(json!({ "first": first_three, "fourth": fourth.transpose()? }))
    });
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        for i in [10, 20, 30, 40] {
            sim.resume_token("numbers", json!(i)).unwrap();
        }
    });
    assert_eq!(sim.output(), json!({ "first": [10, 20, 30], "fourth": 40 }));
}

#[test]
fn payloads_sent_before_the_workflow_awaits_are_buffered() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let mut hook = ctx
            .create_hook::<String>(HookOptions::new().token("early"))
            .await?;
        // Busy with a step while the payloads arrive.
        let prepared: String = ctx
            .step("prepare", (), |()| async { Ok("ready".into()) })
            .await?;
        let a = hook.recv().await?;
        let b = hook.recv().await?;
        let c = hook.recv().await?;
        Ok(vec![prepared, a, b, c])
    });
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.commit_outbox(); // the hook holds its token; the step is queued, not run
        assert_eq!(sim.queued_steps().len(), 1);
        for p in ["a", "b", "c"] {
            sim.resume_token("early", json!(p)).unwrap();
        }
        assert_eq!(sim.progress(), &Progress::Waiting);
        sim.run_steps();
    });
    assert_eq!(sim.output(), json!(["ready", "a", "b", "c"]));
    assert_eq!(
        sim.kinds(),
        [
            "run_started",
            "hook_created",
            "hook_received",
            "hook_received",
            "hook_received",
            "step_completed",
            "hook_disposed",
            "run_completed"
        ]
    );
}

#[test]
fn dispose_releases_the_token_at_once() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let mut hook = ctx
            .create_hook::<u32>(HookOptions::new().token("once"))
            .await?;
        let n = hook.recv().await?;
        hook.dispose();
        // The token is free: the same run may take it again.
        let mut again = ctx
            .create_hook::<u32>(HookOptions::new().token("once"))
            .await?;
        let m = again.recv().await?;
        again.dispose();
        ctx.sleep(std::time::Duration::from_secs(1)).await?;
        Ok(n + m)
    });
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        assert_eq!(sim.resume_token("once", json!(1)), Ok(1));
        sim.settle();
        assert_eq!(
            sim.entries("hook_disposed"),
            [&EventBody::HookDisposed {
                cmd: 2,
                hook_cmd: 1,
                token: "once".into()
            }]
        );
        assert_eq!(sim.resume_token("once", json!(2)), Ok(3));
        sim.settle();
        // Disposed and the workflow is asleep: the token is unknown now.
        assert!(sim.resume_token("once", json!(3)).is_err());
        sim.fire_due_timers(1_000);
    });
    assert_eq!(sim.output(), json!(3));
    assert_eq!(
        sim.entries("hook_disposed"),
        [
            &EventBody::HookDisposed {
                cmd: 2,
                hook_cmd: 1,
                token: "once".into()
            },
            &EventBody::HookDisposed {
                cmd: 4,
                hook_cmd: 3,
                token: "once".into()
            }
        ]
    );
}

#[test]
fn dropping_a_hook_disposes_it() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        {
            let _hook = ctx
                .create_hook::<Value>(HookOptions::new().token("scoped"))
                .await?;
        } // dropped here
        ctx.sleep(std::time::Duration::from_secs(1)).await?;
        Ok("done")
    });
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        assert_eq!(sim.active_hooks(), []);
        assert!(sim.resume_token("scoped", json!(1)).is_err());
        sim.fire_due_timers(1_000);
    });
    assert_eq!(
        sim.kinds(),
        [
            "run_started",
            "hook_created",
            "hook_disposed",
            "timer_started",
            "timer_fired",
            "run_completed"
        ]
    );
    assert_eq!(
        sim.journal()[2].body,
        EventBody::HookDisposed {
            cmd: 2,
            hook_cmd: 1,
            token: "scoped".into()
        }
    );
}

#[test]
fn awaiting_a_hook_takes_one_payload_then_disposes_it() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let hook = ctx
            .create_hook::<u32>(HookOptions::new().token("single"))
            .await?;
        let n = hook.await?;
        // The hook is gone before the workflow does anything else.
        ctx.sleep(std::time::Duration::from_secs(1)).await?;
        Ok(n)
    });
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        sim.resume_token("single", json!(7)).unwrap();
        sim.settle();
        assert_eq!(sim.active_hooks(), []);
        sim.fire_due_timers(1_000);
    });
    assert_eq!(sim.output(), json!(7));
    assert_eq!(
        sim.kinds(),
        [
            "run_started",
            "hook_created",
            "hook_received",
            "hook_disposed",
            "timer_started",
            "timer_fired",
            "run_completed"
        ]
    );
}

#[derive(Debug, Serialize, Deserialize)]
struct Decision {
    approved: bool,
    comment: String,
}

#[test]
fn a_hook_definition_types_payloads_and_is_journaled_by_name() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let def = define_hook::<Decision>("decision");
        let hook = def
            .create(&ctx, HookOptions::new().token("order:1"))
            .await?;
        let d = hook.await?;
        Ok(d)
    });
    let decision = json!({ "approved": true, "comment": "fine" });
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        sim.resume_token("order:1", decision.clone()).unwrap();
    });
    match &sim.journal()[1].body {
        EventBody::HookCreated { definition, .. } => {
            assert_eq!(definition.as_deref(), Some("decision"))
        }
        other => panic!("expected hook_created, got {other:?}"),
    }
    assert_eq!(sim.output(), decision);
}

#[test]
fn an_undecodable_payload_is_a_decode_error_and_is_consumed() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let mut hook = ctx
            .create_hook::<Decision>(HookOptions::new().token("d"))
            .await?;
        let first = match hook.recv().await {
            Err(WorkflowError::Decode { message }) => message,
            other => return Err(WorkflowError::msg(format!("unexpected {other:?}"))),
        };
        let second = hook.recv().await?;
        Ok(json!({ "error": first, "approved": second.approved }))
    });
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        sim.resume_token("d", json!({ "approved": "maybe" }))
            .unwrap();
        sim.resume_token("d", json!({ "approved": false, "comment": "no" }))
            .unwrap();
    });
    let out = sim.output();
    assert!(
        out["error"]
            .as_str()
            .unwrap()
            .contains("payload for hook \"d\""),
        "{out}"
    );
    assert_eq!(out["approved"], json!(false));
}

// --- conflicts -------------------------------------------------------------------------------

#[test]
fn a_token_held_elsewhere_is_a_conflict_the_workflow_can_handle() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let hook = match ctx
            .create_hook::<String>(HookOptions::new().token("shared"))
            .await
        {
            Ok(h) => h,
            Err(WorkflowError::HookConflict { token, holder_run }) => {
                // Fall back to a token of our own.
                let h = ctx
                    .create_hook::<String>(HookOptions::new().token(format!("{token}:2")))
                    .await?;
                ctx.step(
                    "log_conflict",
                    holder_run.clone(),
                    move |holder_run| async move { Ok(holder_run) },
                )
                .await?;
                h
            }
            Err(e) => return Err(e),
        };
        let token = hook.token().to_string();
        let text = hook.await?;
        Ok(json!({ "token": token, "text": text }))
    });
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.conflict("shared", "run-other");
        sim.settle();
        assert!(sim.resume_token("shared", json!("lost")).is_err());
        sim.resume_token("shared:2", json!("hi")).unwrap();
    });
    assert_eq!(
        sim.journal()[1].body,
        EventBody::HookConflict {
            cmd: 1,
            token: "shared".into(),
            holder_run: "run-other".into()
        }
    );
    assert_eq!(
        sim.entries("step_completed"),
        [&EventBody::StepCompleted {
            cmd: 3,
            name: "log_conflict".into(),
            output: json!("run-other"),
            attempts: 1
        }]
    );
    assert_eq!(sim.output(), json!({ "token": "shared:2", "text": "hi" }));
    // Nothing was held, so only the second hook was disposed.
    assert_eq!(
        sim.entries("hook_disposed"),
        [&EventBody::HookDisposed {
            cmd: 4,
            hook_cmd: 2,
            token: "shared:2".into()
        }]
    );
}

#[test]
fn create_hook_returns_the_conflict_error() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let r = ctx
            .create_hook::<Value>(HookOptions::new().token("taken"))
            .await
            .map(|_| ());
        Ok(format!("{r:?}"))
    });
    let sim = assert_trio(&wf, Value::Null, |sim| sim.conflict("taken", "run-a"));
    let expected: Result<(), WorkflowError> = Err(WorkflowError::HookConflict {
        token: "taken".into(),
        holder_run: "run-a".into(),
    });
    assert_eq!(sim.output(), json!(format!("{expected:?}")));
}

#[test]
fn an_unhandled_conflict_fails_the_run() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let hook = ctx
            .create_hook::<Value>(HookOptions::new().token("taken"))
            .await?;
        hook.await
    });
    let sim = assert_trio(&wf, Value::Null, |sim| sim.conflict("taken", "run-a"));
    match sim.end() {
        EventBody::RunFailed { error } => {
            assert_eq!(error.code, "hook_conflict");
            assert!(error.message.contains("run-a"), "{}", error.message);
        }
        other => panic!("expected run_failed, got {other:?}"),
    }
    assert_eq!(sim.kinds(), ["run_started", "hook_conflict", "run_failed"]);
}

#[test]
fn a_run_conflicts_with_its_own_active_hook_until_it_disposes_it() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let first = ctx
            .create_hook::<Value>(HookOptions::new().token("mine"))
            .await?;
        let second = ctx
            .create_hook::<Value>(HookOptions::new().token("mine"))
            .await;
        let holder = match second {
            Err(WorkflowError::HookConflict { holder_run, .. }) => holder_run,
            other => return Err(WorkflowError::msg(format!("unexpected {other:?}"))),
        };
        first.dispose();
        let third = ctx
            .create_hook::<Value>(HookOptions::new().token("mine"))
            .await?;
        let v = third.await?;
        Ok(json!({ "holder": holder, "value": v }))
    });
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        sim.resume_token("mine", json!("x")).unwrap();
    });
    assert_eq!(sim.output(), json!({ "holder": RUN_ID, "value": "x" }));
    assert_eq!(
        sim.kinds(),
        [
            "run_started",
            "hook_created",
            "hook_conflict",
            "hook_disposed",
            "hook_created",
            "hook_received",
            "hook_disposed",
            "run_completed"
        ]
    );
}

#[test]
fn create_hook_waits_for_the_commit() {
    let wf = workflow(one_payload);
    let mut sim = Sim::start(&wf, Value::Null);
    // The creation is issued but not committed: the workflow cannot use the hook yet.
    assert_eq!(sim.progress(), &Progress::Waiting);
    assert_eq!(sim.active_hooks(), []);
    let outbox = sim.machine_mut().take_outbox();
    assert_eq!(outbox.len(), 1);
    assert!(matches!(outbox[0], EventBody::HookCreated { cmd: 1, .. }));
}

#[test]
fn a_run_rebuilt_at_its_suspension_point_continues_like_the_original() {
    // (c) by hand: the journal of a finished run, cut where the run waited for its payload.
    let wf = workflow(collect);
    let mut sim = Sim::start(&wf, json!({ "count": 2 }));
    sim.settle();
    sim.resume_token("inbox", json!("a")).unwrap();
    let cut = sim.journal().len(); // waiting for the second payload
    sim.resume_token("inbox", json!("b")).unwrap();
    sim.settle();
    let journal = sim.journal().to_vec();
    assert_eq!(
        sim.kinds(),
        [
            "run_started",
            "hook_created",
            "hook_received",
            "hook_received",
            "hook_disposed",
            "run_completed"
        ]
    );

    // A worker restarted at the cut: everything it did is journaled, nothing to redo.
    let mut restarted = sim.replay_prefix(cut).expect("replay");
    assert_eq!(restarted.progress, Progress::Waiting);
    assert!(restarted.outbox.is_empty());
    assert!(restarted.step_tasks.is_empty());

    // Continue live with the rest of the journal: the second payload ends the run, which
    // disposes its hook exactly as the original did.
    let progress = restarted.machine.feed(&journal[3]).expect("feed");
    assert_eq!(
        progress,
        Progress::Finished(EventBody::RunCompleted {
            output: json!(["a", "b"])
        })
    );
    assert_eq!(restarted.machine.take_outbox(), [journal[4].body.clone()]);
    assert_eq!(Progress::Finished(journal[5].body.clone()), progress);
}
