//! Durability under SIGKILL: the real binary is killed mid-work and restarted on the same
//! database file; nothing accepted is lost, nothing is delivered twice, timers and steps go on.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use serde_json::{json, Value};
use tether_client::{Client, ClientError};
use tokio::sync::watch;

fn payload(k: u64) -> Value {
    if k == 30 {
        json!({"i": 30, "done": true})
    } else {
        json!({"i": k})
    }
}

/// Send payloads `from..=to` in order, each with idempotency key `p-k`. Reports each answered
/// `k` on `answered`. Stops at the first request that got no answer and returns its `k`
/// (`None` when all were answered).
async fn send_in_order(
    client: Client,
    token: String,
    run_id: String,
    from: u64,
    to: u64,
    answered: watch::Sender<u64>,
) -> Option<u64> {
    for k in from..=to {
        match client
            .resume_hook(&token, &payload(k), Some(&format!("p-{k}")))
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
async fn stream_survives_sigkill_mid_request() {
    let (_dir, db) = temp_db();
    let mut server = Server::start(&db);
    let run_id = server
        .client
        .start_run("collect", &json!({}))
        .await
        .unwrap();
    let token = hooks_of(&server.client, &run_id).await[0].token.clone();

    // One sender, in order; kill the server as soon as payload 15 is answered, while the
    // sender is already sending the next one.
    let (tx, mut rx) = watch::channel(0);
    let sender = tokio::spawn(send_in_order(
        server.client.clone(),
        token.clone(),
        run_id.clone(),
        1,
        29,
        tx,
    ));
    rx.wait_for(|k| *k >= 15).await.unwrap();
    server.kill();
    let unanswered = sender.await.unwrap();
    let last_answered = *rx.borrow();
    assert!(last_answered >= 15);

    // Restart on the same file; re-send whatever got no answer (same keys), then the rest.
    let server = Server::start(&db);
    let resume_from = unanswered.unwrap_or(30);
    assert_eq!(resume_from, last_answered + 1);
    // Every answered payload survived; the one in flight may or may not have been committed.
    let events = server.client.events(&run_id).await.unwrap();
    let kept = of_type(&events, "hook_received").len() as u64;
    assert!(
        kept == last_answered || kept == last_answered + 1,
        "{kept} payloads kept, {last_answered} answered"
    );
    let (tx, _rx) = watch::channel(0);
    let left = send_in_order(
        server.client.clone(),
        token.clone(),
        run_id.clone(),
        resume_from,
        30,
        tx,
    )
    .await;
    assert_eq!(left, None, "the restarted server dropped a request");

    let run = finished(&server.client, &run_id).await;
    assert_eq!(run.status, "completed", "{run:?}");
    let expected: Vec<Value> = (1..=30).map(payload).collect();
    assert_eq!(run.output, Some(json!({ "payloads": expected })));
    let events = server.client.events(&run_id).await.unwrap();
    assert_eq!(of_type(&events, "hook_received").len(), 30);
    eprintln!(
        "killed after payload {last_answered}; payload {resume_from} was in flight; \
         {kept} were kept through the crash"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_fire_after_a_restart() {
    let (_dir, db) = temp_db();
    let mut server = Server::start(&db);
    let c = server.client.clone();
    let run_id = c
        .start_run("timeout_approval", &json!({"timeout_ms": 1500}))
        .await
        .unwrap();
    // Kill as soon as the timer is in the journal.
    let fire_at_ms = poll("the timer to start", || async {
        let events = c.events(&run_id).await.unwrap();
        of_type(&events, "timer_started")
            .first()
            .and_then(|e| e["fire_at_ms"].as_u64())
    })
    .await;
    server.kill();

    // Stay down until the deadline has passed.
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let wait = fire_at_ms.saturating_sub(now_ms) + 100;
    tokio::time::sleep(Duration::from_millis(wait)).await;

    let server = Server::start(&db);
    let run = finished(&server.client, &run_id).await;
    assert_eq!(run.status, "completed", "{run:?}");
    assert_eq!(run.output, Some(json!({"timed_out": true})));
    let events = server.client.events(&run_id).await.unwrap();
    assert_eq!(of_type(&events, "timer_started").len(), 1, "{events:?}");
    assert_eq!(of_type(&events, "timer_fired").len(), 1, "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_continue_after_a_restart() {
    let (_dir, db) = temp_db();
    let mut server = Server::start(&db);
    let c = server.client.clone();
    let run_id = c.start_run("steps", &json!({"n": 200})).await.unwrap();
    let seen = poll("some steps to complete", || async {
        let events = c.events(&run_id).await.unwrap();
        let n = of_type(&events, "step_completed").len();
        (n >= 10).then_some(n)
    })
    .await;
    server.kill();
    assert!(seen < 200, "the run finished before it could be killed");

    let server = Server::start(&db);
    let run = finished(&server.client, &run_id).await;
    assert_eq!(run.status, "completed", "{run:?}");
    assert_eq!(run.output, Some(json!({"steps": 200})));
    let events = server.client.events(&run_id).await.unwrap();
    let names: Vec<String> = of_type(&events, "step_completed")
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<String> = (0..200).map(|i| format!("step-{i}")).collect();
    assert_eq!(names, expected, "each step journaled once, in order");
    eprintln!("killed after {seen} steps had been seen");
}
