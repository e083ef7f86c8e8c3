//! The starter's workflows, run in-process by Tether's test kit: a temporary SQLite store and
//! a virtual clock (a day of waiting takes microseconds, nothing really sleeps).

use std::collections::BTreeMap;
use std::time::Duration;

use tether::prelude::*;
use tether::testing::{TestEnv, TestError};
use tether::{EngineError, EventBody, RunStatus, WebhookBody, WebhookRequest};
use tether_starter::workflows::approval::{
    decision_hook, decision_token, Decision, Outcome, DECISION_HOOK,
};

/// A test environment running exactly what the binary serves.
async fn env() -> TestEnv {
    TestEnv::new(tether_starter::app().registry().clone())
        .await
        .expect("test environment")
}

#[tokio::test]
async fn approval_completes_with_the_decision_sent() {
    let env = env().await;
    let run = env
        .start("approval", json!({ "order_id": "o-1" }))
        .await
        .unwrap();
    assert_eq!(env.status(&run).await.unwrap(), RunStatus::Suspended);

    // The run waits on the token the sender rebuilds, created from the typed definition.
    let hooks = env.hooks(&run).await.unwrap();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].token, "approval:o-1");
    assert_eq!(hooks[0].definition.as_deref(), Some(DECISION_HOOK));
    assert_eq!(hooks[0].metadata, json!({ "order_id": "o-1" }));

    let decision = Decision {
        approved: true,
        comment: "ship it".into(),
    };
    let resumed = env
        .resume_typed(&decision_hook(), &decision_token("o-1"), &decision)
        .await
        .unwrap();
    assert_eq!(resumed, run);

    assert_eq!(
        env.output::<Outcome>(&run).await.unwrap(),
        Outcome::Decided(decision)
    );
    // The journal shows the notification step.
    let journal = env.journal(&run).await.unwrap();
    assert!(
        journal
            .iter()
            .any(|e| matches!(&e.body, EventBody::StepCompleted { name, .. } if name == "notify")),
        "{journal:#?}"
    );
    // The token is released with the run.
    assert!(env.hooks(&run).await.unwrap().is_empty());
    // The code replays its own journal: no non-determinism.
    env.replay(&run).await.unwrap();
    env.shutdown().await;
}

#[tokio::test]
async fn approval_refuses_a_payload_that_is_not_a_decision() {
    let env = env().await;
    let run = env
        .start("approval", json!({ "order_id": "o-2" }))
        .await
        .unwrap();

    let refused = env
        .resume("approval:o-2", json!({ "approved": "yes" }))
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            TestError::Engine(EngineError::InvalidPayload { .. })
        ),
        "{refused}"
    );

    // The run never saw it: still waiting on the same hook.
    assert_eq!(env.status(&run).await.unwrap(), RunStatus::Suspended);
    assert_eq!(env.hook_token(&run).await.unwrap(), "approval:o-2");
    let journal = env.journal(&run).await.unwrap();
    assert!(
        !journal
            .iter()
            .any(|e| matches!(e.body, EventBody::HookReceived { .. })),
        "{journal:#?}"
    );
    env.replay(&run).await.unwrap();
    env.shutdown().await;
}

#[tokio::test]
async fn approval_times_out_at_its_timeout_and_not_before() {
    let env = env().await;
    let run = env
        .start(
            "approval",
            json!({ "order_id": "o-3", "timeout_secs": 3600 }),
        )
        .await
        .unwrap();

    env.advance(Duration::from_secs(3599)).await.unwrap();
    assert_eq!(env.status(&run).await.unwrap(), RunStatus::Suspended);

    env.advance(Duration::from_secs(1)).await.unwrap();
    assert_eq!(
        env.output::<Outcome>(&run).await.unwrap(),
        Outcome::TimedOut { timed_out: true }
    );
    assert_eq!(
        env.output::<Value>(&run).await.unwrap(),
        json!({ "timed_out": true })
    );
    // A late decision finds no hook.
    let late = env
        .resume(
            "approval:o-3",
            json!({ "approved": true, "comment": "too late" }),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(late, TestError::Engine(EngineError::HookNotFound)),
        "{late}"
    );
    env.replay(&run).await.unwrap();
    env.shutdown().await;
}

#[tokio::test]
async fn approval_waits_a_day_by_default() {
    let env = env().await;
    let run = env
        .start("approval", json!({ "order_id": "o-4" }))
        .await
        .unwrap();

    env.advance(Duration::from_secs(24 * 3600 - 1))
        .await
        .unwrap();
    assert_eq!(env.status(&run).await.unwrap(), RunStatus::Suspended);
    env.advance(Duration::from_secs(1)).await.unwrap();
    assert_eq!(
        env.output::<Outcome>(&run).await.unwrap(),
        Outcome::TimedOut { timed_out: true }
    );
    env.shutdown().await;
}

/// What the server's webhook route delivers for a JSON `POST` to the webhook's URL
/// (`crates/tether-server/src/routes/webhooks.rs` builds it and calls `resume_hook`).
fn post_json(token: &str, request_id: &str, body: Value) -> WebhookRequest {
    WebhookRequest {
        request_id: request_id.to_string(),
        method: "POST".to_string(),
        path: format!("/.well-known/workflow/v1/webhook/{token}"),
        query: BTreeMap::new(),
        headers: BTreeMap::from([("content-type".to_string(), "application/json".to_string())]),
        body: Some(WebhookBody::Json(body)),
    }
}

#[tokio::test]
async fn webhook_collects_requests_until_one_is_done() {
    let env = env().await;
    let run = env.start("webhook", json!({})).await.unwrap();

    let hooks = env.hooks(&run).await.unwrap();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].kind, "webhook");
    let token = hooks[0].token.clone();

    env.resume(&token, post_json(&token, "r1", json!({ "n": 1 })))
        .await
        .unwrap();
    assert_eq!(env.status(&run).await.unwrap(), RunStatus::Suspended);

    env.resume(
        &token,
        post_json(&token, "r2", json!({ "n": 2, "done": true })),
    )
    .await
    .unwrap();

    assert_eq!(
        env.output::<Vec<Value>>(&run).await.unwrap(),
        vec![json!({ "n": 1 }), json!({ "n": 2, "done": true })]
    );
    assert!(env.hooks(&run).await.unwrap().is_empty());
    env.replay(&run).await.unwrap();
    env.shutdown().await;
}

#[tokio::test]
async fn webhook_stops_at_max_requests() {
    let env = env().await;
    let run = env
        .start("webhook", json!({ "max_requests": 1 }))
        .await
        .unwrap();
    let token = env.hook_token(&run).await.unwrap();
    env.resume(&token, post_json(&token, "r1", json!("just one")))
        .await
        .unwrap();
    assert_eq!(
        env.output::<Vec<Value>>(&run).await.unwrap(),
        vec![json!("just one")]
    );
    env.shutdown().await;
}
