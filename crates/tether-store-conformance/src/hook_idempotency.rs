//! Conformance cases about `Resume` idempotency keys: a repeated key gets the first answer,
//! before the hook is even looked at (after the run ended, the hook was disposed, or the token
//! moved on), if it comes with the same payload; with another payload it is refused
//! (`IdempotencyKeyReused`) and nothing is stored.

use serde_json::{json, Value};
use tether_core::event::{EventBody, RunStatus};

use super::support::*;
use tether_store::{HookRef, OpRejected, Store, WriteOp};

/// A second `Resume` with an idempotency key already used for the token, with the same
/// payload, writes nothing and answers with the first run and `event: None`; keys are scoped
/// to their token.
pub async fn idempotency_key_returns_first_answer(store: &dyn Store) {
    create_run(store, "a", "w", T0).await;
    create_run(store, "b", "w", T0).await;
    append(store, "a", vec![hook_created(1, "tok")], T0 + 1).await;
    append(store, "b", vec![hook_created(1, "other")], T0 + 1).await;

    let (run_id, first) = resumed(
        commit_one(store, resume_op("tok", json!(1), Some("k1"), T0 + 2)).await,
        "first Resume with k1",
    );
    assert_eq!(run_id, "a");
    assert_eq!(first.map(|e| e.seq), Some(3));
    let before = get_run(store, "a").await;

    let (run_id, again) = resumed(
        commit_one(store, resume_op("tok", json!(1), Some("k1"), T0 + 3)).await,
        "second Resume with k1",
    );
    assert_eq!(run_id, "a", "a repeated key answers with the first run");
    assert_eq!(again, None, "a repeated key writes no entry");
    assert_eq!(
        get_run(store, "a").await,
        before,
        "a repeated key touches nothing"
    );

    let [k2_first, k2_again] = commit_all(
        store,
        [
            resume_op("tok", json!(3), Some("k2"), T0 + 4),
            resume_op("tok", json!(3), Some("k2"), T0 + 4),
        ],
    )
    .await;
    assert_eq!(resumed(k2_first, "first k2").1.map(|e| e.seq), Some(4));
    assert_eq!(
        resumed(k2_again, "repeated k2 in the same batch"),
        ("a".into(), None),
        "a key used earlier in the same batch counts as used"
    );

    let (run_id, other) = resumed(
        commit_one(store, resume_op("other", json!(5), Some("k1"), T0 + 5)).await,
        "k1 on another token",
    );
    assert_eq!(run_id, "b");
    assert!(
        other.is_some(),
        "idempotency keys are scoped to their token"
    );

    for at in [T0 + 6, T0 + 7] {
        let (_, event) = resumed(
            commit_one(store, resume_op("tok", json!(6), None, at)).await,
            "Resume without a key",
        );
        assert!(
            event.is_some(),
            "Resumes without a key are never deduplicated"
        );
    }

    let payloads: Vec<Value> = journal(store, "a")
        .await
        .into_iter()
        .filter_map(|e| match e.body {
            EventBody::HookReceived { payload, .. } => Some(payload),
            _ => None,
        })
        .collect();
    assert_eq!(
        payloads,
        vec![json!(1), json!(3), json!(6), json!(6)],
        "exactly one entry per distinct key, plus the unkeyed ones"
    );
}

/// Once a run has ended its hooks are released, so a `Resume` of one of its tokens is refused
/// with `HookNotFound`, unless it repeats an idempotency key used while the hook was active:
/// that one gets the first answer.
pub async fn resume_after_run_finished_is_refused(store: &dyn Store) {
    create_run(store, "r", "w", T0).await;
    append(store, "r", vec![hook_created(1, "tok")], T0 + 1).await;
    resumed(
        commit_one(store, resume_op("tok", json!(1), Some("k"), T0 + 2)).await,
        "Resume while running",
    );
    append(
        store,
        "r",
        vec![EventBody::RunCompleted { output: json!(0) }],
        T0 + 3,
    )
    .await;
    let [plain, keyed_new, keyed_used] = commit_all(
        store,
        [
            resume_op("tok", json!(2), None, T0 + 4),
            resume_op("tok", json!(3), Some("k-new"), T0 + 4),
            resume_op("tok", json!(1), Some("k"), T0 + 4),
        ],
    )
    .await;
    let not_found = OpRejected::HookNotFound {
        token: "tok".into(),
    };
    assert_eq!(rejected(plain, "Resume after the run ended"), not_found);
    assert_eq!(
        rejected(keyed_new, "Resume with a new key after the run ended"),
        not_found
    );
    assert_eq!(
        resumed(
            keyed_used,
            "Resume repeating a used key after the run ended"
        ),
        ("r".into(), None),
        "a used key gets the first answer even after the hook was released"
    );
    let run = get_run(store, "r").await;
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.last_seq, 4);
}

/// The idempotency key is checked first: a `Resume` repeating a key used for the token gets
/// the first answer and writes nothing even if the hook has been released since, the token
/// now belongs to another run, or `expect` names another hook. A new key follows the usual
/// rules.
pub async fn used_idempotency_key_is_checked_before_the_hook(store: &dyn Store) {
    create_run(store, "a", "w", T0).await;
    create_run(store, "b", "w", T0).await;
    append(store, "a", vec![hook_created(1, "tok")], T0 + 1).await;
    let (run_id, first) = resumed(
        commit_one(store, resume_op("tok", json!("first"), Some("k"), T0 + 2)).await,
        "first Resume with k",
    );
    assert_eq!(run_id, "a");
    assert_eq!(first.map(|e| e.seq), Some(3));

    append(store, "a", vec![hook_disposed(2, 1, "tok")], T0 + 3).await;
    let [used, fresh] = commit_all(
        store,
        [
            resume_op("tok", json!("first"), Some("k"), T0 + 4),
            resume_op("tok", json!("new"), Some("k2"), T0 + 4),
        ],
    )
    .await;
    assert_eq!(
        resumed(used, "repeated key after disposal"),
        ("a".into(), None),
        "a used key gets the first answer after the hook was released"
    );
    assert_eq!(
        rejected(fresh, "new key after disposal"),
        OpRejected::HookNotFound {
            token: "tok".into()
        }
    );

    append(store, "b", vec![hook_created(1, "tok")], T0 + 5).await;
    let b_before = get_run(store, "b").await;
    let [moved, moved_expect, to_b] = commit_all(
        store,
        [
            resume_op("tok", json!("first"), Some("k"), T0 + 6),
            WriteOp::Resume {
                token: "tok".into(),
                payload: json!("first"),
                idempotency_key: Some("k".into()),
                expect: Some(HookRef {
                    run_id: "b".into(),
                    hook_cmd: 1,
                }),
                claim: None,
                at_ms: T0 + 6,
            },
            resume_op("tok", json!("for b"), Some("k3"), T0 + 7),
        ],
    )
    .await;
    assert_eq!(
        resumed(moved, "repeated key after the token moved to b"),
        ("a".into(), None),
        "the first answer names the run that accepted the payload"
    );
    assert_eq!(
        resumed(moved_expect, "repeated key with expect naming b's hook"),
        ("a".into(), None),
        "the key is checked before expect"
    );
    let (run_id, event) = resumed(to_b, "new key to the new holder");
    assert_eq!(run_id, "b");
    assert_eq!(event.map(|e| e.seq), Some(b_before.last_seq + 1));

    let received: Vec<(String, Value)> = {
        let mut all = Vec::new();
        for run in ["a", "b"] {
            for e in journal(store, run).await {
                if let EventBody::HookReceived { payload, .. } = e.body {
                    all.push((run.to_owned(), payload));
                }
            }
        }
        all
    };
    assert_eq!(
        received,
        vec![
            ("a".to_owned(), json!("first")),
            ("b".to_owned(), json!("for b"))
        ],
        "repeated keys wrote nothing"
    );
}

/// The same key with the same payload (the same JSON value: object key order does not
/// matter) gets the first answer and writes nothing, however often it is sent, alone or
/// several times in one batch.
pub async fn idempotency_key_with_the_same_payload_gets_the_first_answer(store: &dyn Store) {
    create_run(store, "a", "w", T0).await;
    append(store, "a", vec![hook_created(1, "tok")], T0 + 1).await;
    let payload = json!({"a": 1, "b": [true, null], "c": {"x": 1.5, "y": "z"}});
    let (run_id, first) = resumed(
        commit_one(store, resume_op("tok", payload.clone(), Some("k"), T0 + 2)).await,
        "first Resume with k",
    );
    assert_eq!((run_id.as_str(), first.map(|e| e.seq)), ("a", Some(3)));
    let before = get_run(store, "a").await;
    let reordered: Value =
        serde_json::from_str(r#"{ "c": {"y": "z", "x": 1.5}, "b": [true, null], "a": 1 }"#)
            .expect("valid JSON");
    let again = commit_all(
        store,
        [
            resume_op("tok", payload.clone(), Some("k"), T0 + 3),
            resume_op("tok", reordered, Some("k"), T0 + 3),
        ],
    )
    .await;
    for answer in again {
        assert_eq!(
            resumed(answer, "the same key and payload again"),
            ("a".into(), None),
            "a retry gets the first answer and writes nothing"
        );
    }
    assert_eq!(get_run(store, "a").await, before, "a retry touches nothing");
    assert_eq!(received(store, "a").await, vec![payload]);
}

/// The same key with another payload is refused with `IdempotencyKeyReused` and writes
/// nothing: after it was accepted, in the same batch as the accepted one, and after the hook
/// was released (the key is still checked first). Keys stay scoped to their token.
pub async fn idempotency_key_with_another_payload_is_refused(store: &dyn Store) {
    create_run(store, "a", "w", T0).await;
    create_run(store, "b", "w", T0).await;
    append(store, "a", vec![hook_created(1, "tok")], T0 + 1).await;
    append(store, "b", vec![hook_created(1, "other")], T0 + 1).await;
    let reused = |key: &str| OpRejected::IdempotencyKeyReused {
        token: "tok".into(),
        key: key.into(),
    };

    resumed(
        commit_one(store, resume_op("tok", json!({"n": 1}), Some("k1"), T0 + 2)).await,
        "first Resume with k1",
    );
    let before = get_run(store, "a").await;
    assert_eq!(
        rejected(
            commit_one(store, resume_op("tok", json!({"n": 2}), Some("k1"), T0 + 3)).await,
            "k1 with another payload",
        ),
        reused("k1")
    );
    assert_eq!(
        get_run(store, "a").await,
        before,
        "a refused reuse touches nothing"
    );

    // In one batch: the first use wins, the other payload is refused, the retry is answered.
    let [first, other, retry] = commit_all(
        store,
        [
            resume_op("tok", json!({"n": 3}), Some("k2"), T0 + 4),
            resume_op("tok", json!({"n": 4}), Some("k2"), T0 + 4),
            resume_op("tok", json!({"n": 3}), Some("k2"), T0 + 4),
        ],
    )
    .await;
    assert_eq!(resumed(first, "first k2").1.map(|e| e.seq), Some(4));
    assert_eq!(rejected(other, "k2 with another payload"), reused("k2"));
    assert_eq!(resumed(retry, "k2 retried"), ("a".into(), None));

    // Another token: the key is new there.
    let (run_id, event) = resumed(
        commit_one(
            store,
            resume_op("other", json!({"n": 5}), Some("k1"), T0 + 5),
        )
        .await,
        "k1 on another token",
    );
    assert_eq!(run_id, "b");
    assert!(
        event.is_some(),
        "idempotency keys are scoped to their token"
    );

    // After the hook is released, the key is still checked first.
    append(store, "a", vec![hook_disposed(2, 1, "tok")], T0 + 6).await;
    let [other, retry] = commit_all(
        store,
        [
            resume_op("tok", json!({"n": 6}), Some("k1"), T0 + 7),
            resume_op("tok", json!({"n": 1}), Some("k1"), T0 + 7),
        ],
    )
    .await;
    assert_eq!(
        rejected(other, "k1 with another payload after the hook was released"),
        reused("k1")
    );
    assert_eq!(
        resumed(retry, "k1 retried after release"),
        ("a".into(), None)
    );

    assert_eq!(
        received(store, "a").await,
        vec![json!({"n": 1}), json!({"n": 3})],
        "only the first payload of each key was stored"
    );
    assert_eq!(received(store, "b").await, vec![json!({"n": 5})]);
}

/// The payloads of a run's `HookReceived` entries, in journal order.
async fn received(store: &dyn Store, run_id: &str) -> Vec<Value> {
    journal(store, run_id)
        .await
        .into_iter()
        .filter_map(|e| match e.body {
            EventBody::HookReceived { payload, .. } => Some(payload),
            _ => None,
        })
        .collect()
}
