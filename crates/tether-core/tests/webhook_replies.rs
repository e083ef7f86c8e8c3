//! Manual webhook responses: `respond_with` journals the reply (request id and response) and
//! performs no I/O; journals of Tether 0.1, whose step output was `true`/`false`, replay.

mod harness;

use harness::{assert_trio, replay, workflow, Sim};
use serde_json::{json, Value};
use tether_core::{
    Ctx, EventBody, Progress, WebhookOptions, WebhookReply, WebhookRequest, WebhookResponse,
    WorkflowError, RESPOND_WITH_STEP,
};

/// Answers one webhook request with `200 {"echo": <body>}`.
async fn echo(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let mut webhook = ctx.create_webhook(WebhookOptions::manual()).await?;
    let request = webhook.recv().await?;
    let body = request.body.as_ref().map_or(Value::Null, |b| b.to_json());
    request
        .respond_with(&ctx, WebhookResponse::json(200, json!({ "echo": body })))
        .await?;
    Ok(json!({ "method": request.method }))
}

fn request(id: &str) -> Value {
    let request = WebhookRequest {
        request_id: id.into(),
        method: "POST".into(),
        path: "/.well-known/workflow/v1/webhook/t".into(),
        query: Default::default(),
        headers: Default::default(),
        body: Some(tether_core::WebhookBody::Json(json!({ "n": 1 }))),
    };
    serde_json::to_value(request).expect("encode")
}

/// The command index of the webhook's hook.
fn hook_cmd(sim: &Sim) -> u32 {
    sim.journal()
        .iter()
        .find_map(|e| match e.body {
            EventBody::HookCreated { cmd, .. } => Some(cmd),
            _ => None,
        })
        .expect("the webhook was created")
}

#[test]
fn respond_with_journals_the_reply_for_the_engine_to_deliver() {
    let wf = workflow(echo);
    let sim = assert_trio(&wf, json!(null), |sim: &mut Sim| {
        sim.settle();
        sim.resume(hook_cmd(sim), request("req-1"));
    });
    assert_eq!(sim.output(), json!({ "method": "POST" }));
    let replies: Vec<WebhookReply> = sim
        .journal()
        .iter()
        .filter_map(|e| WebhookReply::from_entry(&e.body))
        .collect();
    assert_eq!(
        replies,
        [WebhookReply {
            request_id: "req-1".into(),
            response: WebhookResponse::json(200, json!({ "echo": { "n": 1 } })),
        }]
    );
}

#[test]
fn a_journal_of_0_1_whose_reply_was_a_delivery_flag_replays() {
    let wf = workflow(echo);
    let mut sim = Sim::start(&wf, json!(null));
    sim.settle();
    sim.resume(hook_cmd(&sim), request("req-1"));
    sim.settle();
    assert!(sim.is_finished());
    for delivered in [true, false] {
        // What 0.1 wrote: whether a caller was waiting in that process.
        let journal: Vec<_> = sim
            .journal()
            .iter()
            .cloned()
            .map(|mut e| {
                if let EventBody::StepCompleted { name, output, .. } = &mut e.body {
                    if name == RESPOND_WITH_STEP {
                        *output = json!(delivered);
                    }
                }
                e
            })
            .collect();
        assert!(journal
            .iter()
            .all(|e| WebhookReply::from_entry(&e.body).is_none()));
        let replayed = replay(&wf, &journal).expect("a 0.1 journal replays");
        assert!(
            matches!(replayed.progress, Progress::Finished(_)),
            "{:?}",
            replayed.progress
        );
        assert!(replayed.outbox.is_empty() && replayed.step_tasks.is_empty());
    }
}
