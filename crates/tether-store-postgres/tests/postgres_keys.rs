//! Idempotency keys on a shared database: several store instances (standing for several
//! nodes) on one schema, one delivery per key, one of two payloads under one key, keys recorded
//! before digests existed. Ignored without `TETHER_TEST_POSTGRES`, run (and failing) under CI
//! (the rule: `tether-test-env`).

mod common;

use std::sync::Arc;

use common::*;
use serde_json::json;
use tether_core::event::EventBody;
use tether_store::{OpOutcome, OpRejected, Store, WriteOp};
use tether_store_postgres::PostgresStore;

/// The same delivery (token and idempotency key) arriving at two instances at once is
/// accepted once: one `HookReceived`, and the other answer is the first one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
)]
async fn one_delivery_per_idempotency_key_across_instances() {
    let url = test_url();
    let guard = SchemaGuard::new(&url);
    let a = Arc::new(guard.open().await);
    let b = Arc::new(guard.open().await);
    const TOKENS: u32 = 10;
    let hooks: Vec<EventBody> = (0..TOKENS)
        .map(|t| hook_created(t, &format!("k-{t}")))
        .collect();
    let results = commit(a.as_ref(), vec![create("r"), append("r", hooks)]).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let racer = |store: Arc<PostgresStore>| {
        let barrier = Arc::clone(&barrier);
        tokio::spawn(async move {
            let mut answers = Vec::new();
            for t in 0..TOKENS {
                barrier.wait().await;
                let op = WriteOp::Resume {
                    token: format!("k-{t}"),
                    payload: json!({ "t": t }),
                    idempotency_key: Some("same".into()),
                    expect: None,
                    claim: None,
                    at_ms: 3,
                };
                match commit_one(store.as_ref(), op).await {
                    Ok(OpOutcome::Resumed { run_id, event, .. }) => answers.push((run_id, event)),
                    other => panic!("expected Resumed, got {other:?}"),
                }
            }
            answers
        })
    };
    let (ra, rb) = (racer(Arc::clone(&a)), racer(Arc::clone(&b)));
    let (answers_a, answers_b) = (ra.await.expect("racer a"), rb.await.expect("racer b"));
    for t in 0..TOKENS as usize {
        let (x, y) = (&answers_a[t], &answers_b[t]);
        assert_eq!((x.0.as_str(), y.0.as_str()), ("r", "r"));
        assert!(
            x.1.is_some() != y.1.is_some(),
            "exactly one of two deliveries is written: {x:?} / {y:?}"
        );
    }
    let journal = a.load_journal("r", 0).await.expect("journal");
    let received = journal
        .iter()
        .filter(|e| matches!(e.body, EventBody::HookReceived { .. }))
        .count();
    assert_eq!(received, TOKENS as usize);
    assert_eq!(
        journal.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=journal.len() as u64).collect::<Vec<_>>()
    );
}

/// One idempotency key sent at once to two instances with two different payloads (issue
/// #17): one is written, the other is refused with `IdempotencyKeyReused` (not answered as a
/// retry of a payload it never stored).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
)]
async fn one_key_with_two_payloads_across_instances_accepts_one() {
    let url = test_url();
    let guard = SchemaGuard::new(&url);
    let a = Arc::new(guard.open().await);
    let b = Arc::new(guard.open().await);
    const TOKENS: u32 = 10;
    let hooks: Vec<EventBody> = (0..TOKENS)
        .map(|t| hook_created(t, &format!("p-{t}")))
        .collect();
    let results = commit(a.as_ref(), vec![create("r"), append("r", hooks)]).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let racer = |store: Arc<PostgresStore>, me: &'static str| {
        let barrier = Arc::clone(&barrier);
        tokio::spawn(async move {
            let mut answers = Vec::new();
            for t in 0..TOKENS {
                barrier.wait().await;
                let op = WriteOp::Resume {
                    token: format!("p-{t}"),
                    payload: json!({ "t": t, "from": me }),
                    idempotency_key: Some("same".into()),
                    expect: None,
                    claim: None,
                    at_ms: 3,
                };
                answers.push(commit_one(store.as_ref(), op).await);
            }
            answers
        })
    };
    let (ra, rb) = (racer(Arc::clone(&a), "a"), racer(Arc::clone(&b), "b"));
    let (answers_a, answers_b) = (ra.await.expect("racer a"), rb.await.expect("racer b"));
    let mut stored = Vec::new();
    for t in 0..TOKENS as usize {
        let pair = [(&answers_a[t], "a"), (&answers_b[t], "b")];
        let written: Vec<&str> = pair
            .iter()
            .filter(|(r, _)| matches!(r, Ok(OpOutcome::Resumed { event: Some(_), .. })))
            .map(|(_, me)| *me)
            .collect();
        let refused = pair
            .iter()
            .filter(|(r, _)| matches!(r, Err(OpRejected::IdempotencyKeyReused { .. })))
            .count();
        assert_eq!(
            (written.len(), refused),
            (1, 1),
            "one written, one refused: {pair:?}"
        );
        stored.push(json!({ "t": t, "from": written[0] }));
    }
    let received: Vec<serde_json::Value> = a
        .load_journal("r", 0)
        .await
        .expect("journal")
        .into_iter()
        .filter_map(|e| match e.body {
            EventBody::HookReceived { payload, .. } => Some(payload),
            _ => None,
        })
        .collect();
    assert_eq!(received, stored, "only the accepted payloads were stored");
}

/// A key recorded before the schema stored payload digests (its `payload_digest` is NULL)
/// matches any payload: it gets the first answer, as before the migration.
#[tokio::test]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
)]
async fn a_key_recorded_without_a_digest_matches_any_payload() {
    let url = test_url();
    let guard = SchemaGuard::new(&url);
    let store = guard.open().await;
    let results = commit(
        &store,
        vec![create("r"), append("r", vec![hook_created(1, "tok")])],
    )
    .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let driver = tokio::spawn(connection);
    client
        .execute(
            &format!(
                "INSERT INTO {}.idempotency (token, key, run_id, created_at) \
                 VALUES ('tok', 'old', 'r', 1)",
                guard.schema
            ),
            &[],
        )
        .await
        .expect("insert a key without a digest");
    drop(client);
    let _ = driver.await;
    let resume = |payload| WriteOp::Resume {
        token: "tok".into(),
        payload,
        idempotency_key: Some("old".into()),
        expect: None,
        claim: None,
        at_ms: 3,
    };
    for payload in [json!(1), json!("anything")] {
        match commit_one(&store, resume(payload)).await {
            Ok(OpOutcome::Resumed { run_id, event, .. }) => {
                assert_eq!((run_id.as_str(), event), ("r", None));
            }
            other => panic!("expected the first answer, got {other:?}"),
        }
    }
}
