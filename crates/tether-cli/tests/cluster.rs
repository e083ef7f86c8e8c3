//! Several real `tether dev` processes on one PostgreSQL database (a fresh schema per test):
//! resumes through any node, token conflicts across nodes, a node killed with SIGKILL whose
//! runs finish on another, nodes starting together on an empty schema.
//!
//! Needs `TETHER_TEST_POSTGRES` (e.g. `postgres://postgres@127.0.0.1:5432/test`); without it
//! the tests are ignored, except under CI where they fail (the rule: `tether-test-env`).

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tether_client::{Client, ClientError, RunInfo};
use tokio::sync::watch;

/// How long a run may take to end once its last payload is accepted, when only `LISTEN/NOTIFY`
/// can tell the node running it, and another node waiting for it (a correctness bound, far
/// above the expected time, not a measurement).
const NOTIFY_BOUND: Duration = Duration::from_secs(20);

/// A fresh schema on the test server.
fn cluster() -> PgSchema {
    PgSchema::new(&postgres_url())
}

/// Wait at most [`NOTIFY_BOUND`] for the run to end; panics if it has not.
async fn finished_within(client: Client, run_id: String) -> RunInfo {
    let run = client
        .wait_for_run(&run_id, NOTIFY_BOUND)
        .await
        .expect("wait for run");
    assert!(
        run.is_terminal(),
        "run {run_id} did not end in {NOTIFY_BOUND:?}: {run:?}"
    );
    run
}

/// Payload `k` of a stream of `last` payloads (the last one says `done`).
fn payload(k: u64, last: u64) -> Value {
    if k == last {
        json!({"i": k, "done": true})
    } else {
        json!({"i": k})
    }
}

/// Send payloads `from..=to` (of a stream of `last`) in order, each with idempotency key `p-k`,
/// each answered before the next. Reports each answered `k` on `answered`. Stops at the first
/// request that got no answer and returns its `k` (`None` when all were answered).
async fn send_in_order(
    client: Client,
    token: String,
    run_id: String,
    (from, to, last): (u64, u64, u64),
    answered: watch::Sender<u64>,
) -> Option<u64> {
    for k in from..=to {
        match client
            .resume_hook(&token, &payload(k, last), Some(&format!("p-{k}")))
            .await
        {
            Ok(id) => {
                assert_eq!(id, run_id);
                let _ = answered.send(k);
            }
            Err(ClientError::Transport(_)) => return Some(k),
            Err(e) => panic!("payload {k}: {e:?}"),
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
)]
async fn resume_through_any_node() {
    let schema = cluster();
    // Polling every ten minutes: only LISTEN/NOTIFY can tell the node holding a run that
    // another node accepted a payload for it.
    let quiet = ["--poll-interval-ms", "600000"];
    let a = schema.node(&quiet);
    let b = schema.node(&quiet);

    // A run on A, fed through B, stopped through A.
    let token = "slack_messages:X";
    let bot = a
        .client
        .start_run("slack_bot", &json!({"channel": "X"}))
        .await
        .unwrap();
    hook_held_by(&b.client, token, &bot).await;
    // Its end is awaited through B (a long-poll in flight before it ends).
    let bot_end = tokio::spawn(finished_within(b.client.clone(), bot.clone()));
    for (via, text) in [(&b, "first"), (&b, "second"), (&a, "/stop")] {
        let message = json!({"text": text});
        let answer = via.client.resume_hook(token, &message, None).await;
        assert_eq!(answer.unwrap(), bot, "{text}");
    }
    let run = bot_end.await.unwrap();
    assert_eq!(run.status, "completed", "{run:?}");
    assert_eq!(run.output, Some(json!({"messages": ["first", "second"]})));

    // A stream on B, fed alternately through A and B, each payload accepted before the next;
    // its end awaited through A.
    let stream = b.client.start_run("collect", &json!({})).await.unwrap();
    let token = hooks_of(&a.client, &stream).await[0].token.clone();
    let stream_end = tokio::spawn(finished_within(a.client.clone(), stream.clone()));
    for k in 1..=20 {
        let (via, other) = if k % 2 == 1 { (&a, &b) } else { (&b, &a) };
        let (body, key) = (payload(k, 20), format!("s-{k}"));
        let answer = via.client.resume_hook(&token, &body, Some(&key));
        assert_eq!(answer.await.unwrap(), stream, "payload {k}");
        if k == 7 {
            // A retry through the other node: the first answer again, nothing stored twice.
            let again = other.client.resume_hook(&token, &body, Some(&key));
            assert_eq!(again.await.unwrap(), stream, "payload {k} again");
        }
    }
    let run = stream_end.await.unwrap();
    assert_eq!(run.status, "completed", "{run:?}");
    let expected: Vec<Value> = (1..=20).map(|k| payload(k, 20)).collect();
    assert_eq!(run.output, Some(json!({ "payloads": expected })));
    let events = a.client.events(&stream).await.unwrap();
    assert_eq!(of_type(&events, "hook_received").len(), 20, "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
)]
async fn token_conflict_across_nodes() {
    let schema = cluster();
    let a = schema.node(&[]);
    let b = schema.node(&[]);
    let token = "slack_messages:Y";

    let holder = a
        .client
        .start_run("slack_bot", &json!({"channel": "Y"}))
        .await
        .unwrap();
    hook_held_by(&b.client, token, &holder).await;
    let loser = b
        .client
        .start_run("slack_bot", &json!({"channel": "Y"}))
        .await
        .unwrap();
    let run = finished(&b.client, &loser).await;
    assert_eq!(run.status, "failed", "{run:?}");
    let error = run.error.expect("a failed run has an error");
    assert_eq!(error.code, "hook_conflict", "{error:?}");
    assert!(error.message.contains(token), "{error:?}");
    assert!(error.message.contains(&holder), "{error:?}");

    // The holder is not disturbed: it keeps its token and goes on, fed through both nodes.
    assert_eq!(b.client.get_run(&holder).await.unwrap().status, "suspended");
    hook_held_by(&b.client, token, &holder).await;
    for (via, text) in [(&b, "still here"), (&a, "/stop")] {
        let message = json!({"text": text});
        let answer = via.client.resume_hook(token, &message, None).await;
        assert_eq!(answer.unwrap(), holder, "{text}");
    }
    let run = finished(&a.client, &holder).await;
    assert_eq!(run.status, "completed", "{run:?}");
    assert_eq!(run.output, Some(json!({"messages": ["still here"]})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
)]
async fn runs_of_a_killed_node_finish_on_another() {
    let schema = cluster();
    let mut a = schema.node(&["--lease-ms", "2000"]);
    let b = schema.node(&["--lease-ms", "2000", "--poll-interval-ms", "100"]);
    let ca = a.client.clone();
    let cb = b.client.clone();

    // Three runs on A: a stream, a timer, a long chain of steps.
    let stream = ca.start_run("collect", &json!({})).await.unwrap();
    let timer = ca
        .start_run("timeout_approval", &json!({"timeout_ms": 1500}))
        .await
        .unwrap();
    let token = hooks_of(&ca, &stream).await[0].token.clone();
    let steps = ca.start_run("steps", &json!({"n": 300})).await.unwrap();

    // Once the steps are under way, payloads 1..=5 through A; A is killed as soon as the
    // third is answered, the fourth on its way.
    poll("the steps to be under way on A", || async {
        let events = ca.events(&steps).await.unwrap();
        (of_type(&events, "step_completed").len() >= 5).then_some(())
    })
    .await;
    let (answered_tx, mut answered) = watch::channel(0);
    let sender = tokio::spawn(send_in_order(
        ca.clone(),
        token.clone(),
        stream.clone(),
        (1, 5, 10),
        answered_tx,
    ));
    answered
        .wait_for(|k| *k >= 3)
        .await
        .expect("payloads answered");
    a.kill();
    let seen = of_type(&cb.events(&steps).await.unwrap(), "step_completed").len();
    assert!(seen < 300, "the steps ended before A could be killed");
    let unanswered = sender.await.unwrap();
    let last_answered = *answered.borrow();
    // Every answered payload is kept; the one in flight may or may not have been committed.
    let kept_from_a = of_type(&cb.events(&stream).await.unwrap(), "hook_received").len() as u64;
    assert!(
        kept_from_a == last_answered || kept_from_a == last_answered + 1,
        "{kept_from_a} payloads kept, {last_answered} answered"
    );

    // Through B: whatever A did not answer (same keys), then payloads 6..=10.
    let resume_from = unanswered.unwrap_or(6);
    assert_eq!(resume_from, last_answered + 1);
    let (tx, _rx) = watch::channel(0);
    let left = send_in_order(
        cb.clone(),
        token.clone(),
        stream.clone(),
        (resume_from, 10, 10),
        tx,
    )
    .await;
    assert_eq!(left, None, "B dropped a request");

    // All three end on B.
    let run = finished(&cb, &steps).await;
    assert_eq!(run.status, "completed", "{run:?}");
    assert_eq!(run.output, Some(json!({"steps": 300})));
    let steps_events = cb.events(&steps).await.unwrap();
    let names: Vec<&str> = of_type(&steps_events, "step_completed")
        .iter()
        .map(|e| e["name"].as_str().expect("a step name"))
        .collect();
    let expected: Vec<String> = (0..300).map(|i| format!("step-{i}")).collect();
    assert_eq!(names, expected, "each step journaled once, in order");

    let run = finished(&cb, &timer).await;
    assert_eq!(run.status, "completed", "{run:?}");
    assert_eq!(run.output, Some(json!({"timed_out": true})));
    let timer_events = cb.events(&timer).await.unwrap();
    assert_eq!(of_type(&timer_events, "timer_started").len(), 1);
    assert_eq!(of_type(&timer_events, "timer_fired").len(), 1);

    let run = finished(&cb, &stream).await;
    assert_eq!(run.status, "completed", "{run:?}");
    let expected: Vec<Value> = (1..=10).map(|k| payload(k, 10)).collect();
    assert_eq!(run.output, Some(json!({ "payloads": expected })));
    let stream_events = cb.events(&stream).await.unwrap();
    assert_eq!(of_type(&stream_events, "hook_received").len(), 10);
    eprintln!(
        "A killed after {seen} steps; {last_answered} payloads answered by A; \
         payload {resume_from} went to B first; {} kept before B's",
        kept_from_a
    );

    // A comes back (a new process on the same schema): it works, and changes nothing done.
    let a = schema.node(&["--lease-ms", "2000"]);
    let more = a.client.start_run("steps", &json!({"n": 5})).await.unwrap();
    let run = finished(&a.client, &more).await;
    assert_eq!(run.output, Some(json!({"steps": 5})), "{run:?}");
    for (run_id, before) in [
        (&steps, &steps_events),
        (&timer, &timer_events),
        (&stream, &stream_events),
    ] {
        let run = a.client.get_run(run_id).await.unwrap();
        assert_eq!(run.status, "completed", "{run:?}");
        assert_eq!(&a.client.events(run_id).await.unwrap(), before, "{run_id}");
    }
    assert_eq!(
        a.client.get_run(&stream).await.unwrap().output,
        Some(json!({ "payloads": expected }))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
)]
async fn nodes_starting_together_on_an_empty_schema() {
    let schema = cluster();
    // All three spawned before any is waited for: their migrations race.
    let starting: Vec<Starting> = ["n1", "n2", "n3"]
        .iter()
        .map(|id| schema.spawn_node(&["--node-id", id]))
        .collect();
    let nodes: Vec<Server> = starting.into_iter().map(Starting::ready).collect();
    for node in &nodes {
        assert_eq!(
            node.client.health().await.unwrap(),
            json!({"ok": true, "backend": "postgres"})
        );
    }

    // One database: a run started on the first is seen and fed through the others.
    let run_id = nodes[0]
        .client
        .start_run("approval", &json!({"order_id": "o-1"}))
        .await
        .unwrap();
    let token = hooks_of(&nodes[1].client, &run_id).await[0].token.clone();
    let decision = json!({"approved": true, "comment": "ok"});
    let answer = nodes[2].client.resume_hook(&token, &decision, None).await;
    assert_eq!(answer.unwrap(), run_id);
    let run = finished(&nodes[0].client, &run_id).await;
    assert_eq!(run.output, Some(decision));
}
