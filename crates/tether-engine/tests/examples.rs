//! The bundled examples, run in-process on a real SQLite store.
#![allow(missing_docs, missing_debug_implementations)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use tether_core::RunStatus;
use tether_engine::EngineError;

#[tokio::test]
async fn approval_validates_at_resume_time_and_returns_the_payload() {
    let db = TestDb::new();
    let engine = db.engine(examples(), fast_config()).await;
    let run = engine
        .start_run("approval", json!({"order_id": "o-1"}))
        .await
        .unwrap();
    let token = hook_token(&engine, &run).await;
    assert!(token.len() >= 32, "generated token too short: {token}");
    let hooks = engine.hooks(&run).await.unwrap();
    assert_eq!(hooks[0].metadata, json!({"order_id": "o-1"}));

    let bad = engine
        .resume_hook(&token, json!({"approved": "yes"}), None)
        .await;
    match bad {
        Err(EngineError::InvalidPayload { message }) => {
            assert!(message.contains("approved"), "{message}")
        }
        other => panic!("expected InvalidPayload, got {other:?}"),
    }
    assert!(
        received(&engine, &run).await.is_empty(),
        "invalid payload reached the journal"
    );

    let payload = json!({"approved": true, "comment": "ship it", "by": "ana"});
    assert_eq!(
        engine
            .resume_hook(&token, payload.clone(), None)
            .await
            .unwrap(),
        run
    );
    assert_eq!(output(&engine, &run).await, payload);
    // The run ended: its token is released.
    assert_eq!(
        engine.resume_hook(&token, payload, None).await,
        Err(EngineError::HookNotFound)
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn collect_keeps_acceptance_order_under_concurrent_senders() {
    let db = TestDb::new();
    let engine = db.engine(examples(), fast_config()).await;
    let run = engine.start_run("collect", json!({})).await.unwrap();
    let token = hook_token(&engine, &run).await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let engine = engine.clone();
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            engine.resume_hook(&token, json!({"i": i}), None).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    engine
        .resume_hook(&token, json!({"done": true}), None)
        .await
        .unwrap();
    let out = output(&engine, &run).await;
    let journal = received(&engine, &run).await;
    assert_eq!(out["payloads"].as_array().unwrap(), &journal);
    assert_eq!(journal.len(), 41);
    let mut seen: Vec<i64> = journal.iter().filter_map(|p| p["i"].as_i64()).collect();
    seen.sort();
    assert_eq!(seen, (0..40).collect::<Vec<_>>());
    engine.shutdown().await;
}

#[tokio::test]
async fn slack_bot_custom_token_conflict_and_release() {
    let db = TestDb::new();
    let engine = db.engine(examples(), fast_config()).await;
    let first = engine
        .start_run("slack_bot", json!({"channel": "C1"}))
        .await
        .unwrap();
    engine
        .wait_for_hook("slack_messages:C1", Duration::from_secs(10))
        .await
        .unwrap();
    let second = engine
        .start_run("slack_bot", json!({"channel": "C1"}))
        .await
        .unwrap();
    let failed = engine
        .wait_for_run(&second, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(failed.status, RunStatus::Failed);
    let err = failed.error.unwrap();
    assert_eq!(err.code, "hook_conflict");
    assert!(err.message.contains("slack_messages:C1") && err.message.contains(&first));

    for text in ["hi", "there", "/stop"] {
        assert_eq!(
            engine
                .resume_hook("slack_messages:C1", json!({"text": text}), None)
                .await
                .unwrap(),
            first
        );
    }
    assert_eq!(
        output(&engine, &first).await,
        json!({"messages": ["hi", "there"]})
    );
    // Released at run end: a new run can take the token.
    let third = engine
        .start_run("slack_bot", json!({"channel": "C1"}))
        .await
        .unwrap();
    let h = engine
        .wait_for_hook("slack_messages:C1", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(h.run_id, third);
    engine.shutdown().await;
}

#[tokio::test]
async fn handoff_disposes_the_token_while_running() {
    let db = TestDb::new();
    let engine = db.engine(examples(), fast_config()).await;
    let run = engine
        .start_run("handoff", json!({"channel": "X"}))
        .await
        .unwrap();
    engine
        .wait_for_hook("channel:X", Duration::from_secs(10))
        .await
        .unwrap();
    engine
        .resume_hook("channel:X", json!({"message": "a"}), None)
        .await
        .unwrap();
    engine
        .resume_hook("channel:X", json!({"message": "b", "handoff": true}), None)
        .await
        .unwrap();
    // The run goes on with a second, generated hook; the channel token is free.
    let mut after_token = None;
    for _ in 0..2000 {
        let hooks = engine.hooks(&run).await.unwrap();
        if hooks.len() == 1 && hooks[0].token != "channel:X" {
            after_token = Some(hooks[0].token.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let after_token = after_token.expect("second hook");
    assert_eq!(
        engine
            .resume_hook("channel:X", json!({"message": "late"}), None)
            .await,
        Err(EngineError::HookNotFound)
    );
    let other = engine
        .start_run("handoff", json!({"channel": "X"}))
        .await
        .unwrap();
    let h = engine
        .wait_for_hook("channel:X", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(h.run_id, other);
    engine
        .resume_hook(&after_token, json!({"ok": 1}), None)
        .await
        .unwrap();
    assert_eq!(
        output(&engine, &run).await,
        json!({"messages": ["a", "b"], "after": {"ok": 1}})
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn timeout_approval_both_ways() {
    let db = TestDb::new();
    let engine = db.engine(examples(), fast_config()).await;
    let timed = engine
        .start_run("timeout_approval", json!({"timeout_ms": 50}))
        .await
        .unwrap();
    assert_eq!(output(&engine, &timed).await, json!({"timed_out": true}));

    let approved = engine
        .start_run("timeout_approval", json!({"timeout_ms": 60000}))
        .await
        .unwrap();
    let token = hook_token(&engine, &approved).await;
    engine
        .resume_hook(&token, json!({"ok": true}), None)
        .await
        .unwrap();
    assert_eq!(
        output(&engine, &approved).await,
        json!({"timed_out": false, "approval": {"ok": true}})
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn steps_run_in_sequence() {
    let db = TestDb::new();
    let engine = db.engine(examples(), fast_config()).await;
    let run = engine.start_run("steps", json!({"n": 25})).await.unwrap();
    assert_eq!(output(&engine, &run).await, json!({"steps": 25}));
    let completed = engine
        .events(&run)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.body.kind() == "step_completed")
        .count();
    assert_eq!(completed, 25);
    engine.shutdown().await;
}

#[tokio::test]
async fn start_errors_are_precise() {
    let db = TestDb::new();
    let engine = db.engine(examples(), fast_config()).await;
    match engine.start_run("nope", json!({})).await {
        Err(EngineError::WorkflowNotFound { name, known }) => {
            assert_eq!(name, "nope");
            assert!(known.contains("approval"));
        }
        other => panic!("{other:?}"),
    }
    match engine.start_run("approval", json!({"order": 1})).await {
        Err(EngineError::InvalidInput { message, .. }) => {
            assert!(message.contains("order_id"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let big = "x".repeat(2 * 1024 * 1024);
    assert!(matches!(
        engine.start_run("collect", json!({"big": big})).await,
        Err(EngineError::PayloadTooLarge { .. })
    ));
    assert!(matches!(
        engine.resume_hook("no-such-token", json!({}), None).await,
        Err(EngineError::HookNotFound)
    ));
    engine.shutdown().await;
}

#[tokio::test]
async fn a_hook_created_at_once_is_resumable_when_start_returns() {
    let db = TestDb::new();
    let engine = db.engine(examples(), fast_config()).await;
    for i in 0..20 {
        let channel = format!("c{i}");
        let run = engine
            .start_run("slack_bot", json!({ "channel": channel }))
            .await
            .unwrap();
        // No polling for the hook: start_run returned after the run's first suspension.
        let token = format!("slack_messages:{channel}");
        assert_eq!(
            engine
                .resume_hook(&token, json!({"text": "/stop"}), None)
                .await
                .unwrap(),
            run
        );
        assert_eq!(output(&engine, &run).await, json!({"messages": []}));
    }
    engine.shutdown().await;
}

#[tokio::test]
async fn hostile_ids_are_not_found_and_never_reach_the_store() {
    let db = TestDb::new();
    let mut reg = examples();
    reg.workflow(
        "bad_token",
        |ctx: tether_core::Ctx, token: String| async move {
            match ctx
                .create_hook::<serde_json::Value>(tether_core::HookOptions::new().token(token))
                .await
            {
                Ok(_) => Ok(json!("accepted")),
                Err(e) => Ok(json!(e.code())),
            }
        },
    );
    let engine = db.engine(reg, fast_config()).await;
    let long = "t".repeat(5000);
    for token in ["a\0b", "", long.as_str()] {
        assert_eq!(
            engine.resume_hook(token, json!({}), None).await,
            Err(EngineError::HookNotFound),
            "{token:?}"
        );
    }
    assert!(matches!(
        engine.get_run("run\0id").await,
        Err(EngineError::RunNotFound { .. })
    ));
    assert!(matches!(
        engine.cancel_run("run\0id", None).await,
        Err(EngineError::RunNotFound { .. })
    ));
    assert!(matches!(
        engine.signal("s\0", json!(1)).await,
        Err(EngineError::InvalidPayload { .. })
    ));
    for token in ["", "nul\0byte"] {
        let run = engine.start_run("bad_token", json!(token)).await.unwrap();
        assert_eq!(
            output(&engine, &run).await,
            json!("invalid_token"),
            "{token:?}"
        );
    }
    engine.shutdown().await;
}
