//! Conformance cases about delivering payloads to hooks with `Resume`: unknown tokens,
//! acceptance order, ops of one batch seeing each other around a run's end, and `expect`.

use serde_json::{json, Value};
use tether_core::event::{Event, EventBody, RunStatus};

use super::support::*;
use tether_store::{HookRef, OpRejected, Store, WriteOp};

/// `Resume` of a token no active hook holds is refused with `HookNotFound`, writes nothing and
/// does not consume its idempotency key.
pub async fn resume_unknown_token_is_refused_and_writes_nothing(store: &dyn Store) {
    create_run(store, "r", "w", T0).await;
    append(store, "r", vec![hook_created(1, "real")], T0 + 1).await;
    let before = get_run(store, "r").await;

    let result = commit_one(store, resume_op("nope", json!("x"), Some("k"), T0 + 2)).await;
    assert_eq!(
        rejected(result, "Resume of an unknown token"),
        OpRejected::HookNotFound {
            token: "nope".into()
        }
    );
    assert_eq!(
        get_run(store, "r").await,
        before,
        "a refused Resume touches no run"
    );
    assert_eq!(journal(store, "r").await.len(), 2);

    append(store, "r", vec![hook_created(2, "nope")], T0 + 3).await;
    let (run_id, event) = resumed(
        commit_one(store, resume_op("nope", json!("y"), Some("k"), T0 + 4)).await,
        "Resume once the token exists",
    );
    assert_eq!(run_id, "r");
    assert!(
        event.is_some(),
        "the refused Resume must not have recorded its idempotency key"
    );
}

fn received(payload: &Value, hook_cmd: u32) -> EventBody {
    EventBody::HookReceived {
        hook_cmd,
        payload: payload.clone(),
    }
}

/// `Resume` appends `HookReceived { hook_cmd, payload }` to the holder's journal, answering
/// with the entry; payloads keep their acceptance order within and across batches.
pub async fn resume_appends_hook_received_in_acceptance_order(store: &dyn Store) {
    create_run(store, "r", "w", T0).await;
    append(
        store,
        "r",
        vec![hook_created(1, "h1"), hook_created(2, "h2")],
        T0 + 1,
    )
    .await;
    let p: Vec<Value> = (1..=5).map(|i| json!({ "p": i })).collect();

    let results = commit_all(
        store,
        [
            resume_op("h1", p[0].clone(), None, T0 + 10),
            resume_op("h2", p[1].clone(), None, T0 + 10),
            resume_op("h1", p[2].clone(), None, T0 + 10),
        ],
    )
    .await;
    for ((result, (seq, hook_cmd)), payload) in
        results.into_iter().zip([(4, 1), (5, 2), (6, 1)]).zip(&p)
    {
        let (run_id, event) = resumed(result, "Resume in a batch");
        assert_eq!(run_id, "r");
        assert_eq!(
            event,
            Some(Event {
                seq,
                at_ms: T0 + 10,
                body: received(payload, hook_cmd),
            }),
            "Resume answers with the HookReceived entry as written"
        );
    }
    let (_, event) = resumed(
        commit_one(store, resume_op("h2", p[3].clone(), None, T0 + 11)).await,
        "Resume in its own batch",
    );
    assert_eq!(event.map(|e| e.seq), Some(7));
    let [now, last] = commit_all(
        store,
        [
            append_op("r", vec![EventBody::Now { cmd: 3, ms: 0 }], T0 + 12),
            resume_op("h1", p[4].clone(), None, T0 + 12),
        ],
    )
    .await;
    assert_eq!(seqs(&appended(now, "Append Now").1), vec![8]);
    assert_eq!(resumed(last, "last Resume").1.map(|e| e.seq), Some(9));

    let all = journal(store, "r").await;
    assert_eq!(seqs(&all), (1..=9).collect::<Vec<u64>>());
    let deliveries: Vec<EventBody> = all
        .iter()
        .filter(|e| matches!(e.body, EventBody::HookReceived { .. }))
        .map(|e| e.body.clone())
        .collect();
    assert_eq!(
        deliveries,
        vec![
            received(&p[0], 1),
            received(&p[1], 2),
            received(&p[2], 1),
            received(&p[3], 2),
            received(&p[4], 1),
        ],
        "payloads are journaled in acceptance order"
    );
    let run = get_run(store, "r").await;
    assert_eq!(run.last_seq, 9);
    assert_eq!(run.updated_at_ms, T0 + 12);
    assert_eq!(
        tokens_of(store, "r").await,
        strings(&["h1", "h2"]),
        "Resume does not release the hook"
    );
}

/// In one batch, an op sees what the ops before it wrote, however the backend gathers the
/// batch's writes: a run ends (disposing one hook and leaving another held until the end)
/// between resumes of its tokens, and another run takes a resume and an append around it.
pub async fn resumes_around_a_run_ending_in_the_same_batch(store: &dyn Store) {
    create_run(store, "a", "w", T0).await;
    append(
        store,
        "a",
        vec![hook_created(1, "a1"), hook_created(2, "a2")],
        T0 + 1,
    )
    .await;
    create_run(store, "b", "w", T0).await;
    append(store, "b", vec![hook_created(1, "b1")], T0 + 1).await;

    let [first, end, after_end, disposed, other, other_append, other_again] = commit_all(
        store,
        [
            resume_op("a1", json!("before"), None, T0 + 5),
            append_op(
                "a",
                vec![
                    hook_disposed(3, 2, "a2"),
                    EventBody::RunCompleted {
                        output: json!("done"),
                    },
                ],
                T0 + 6,
            ),
            resume_op("a1", json!("after"), None, T0 + 7),
            resume_op("a2", json!("after"), None, T0 + 7),
            resume_op("b1", json!(1), None, T0 + 7),
            append_op("b", vec![EventBody::Now { cmd: 2, ms: 9 }], T0 + 8),
            resume_op("b1", json!(2), None, T0 + 9),
        ],
    )
    .await;
    assert_eq!(
        resumed(first, "Resume before the end").1.map(|e| e.seq),
        Some(4)
    );
    assert_eq!(seqs(&appended(end, "Append ending the run").1), vec![5, 6]);
    for (result, token) in [(after_end, "a1"), (disposed, "a2")] {
        assert_eq!(
            rejected(result, "Resume after the run ended in the same batch"),
            OpRejected::HookNotFound {
                token: token.into()
            }
        );
    }
    assert_eq!(resumed(other, "Resume of b").1.map(|e| e.seq), Some(3));
    assert_eq!(seqs(&appended(other_append, "Append to b").1), vec![4]);
    assert_eq!(
        resumed(other_again, "second Resume of b").1.map(|e| e.seq),
        Some(5)
    );

    let run_a = get_run(store, "a").await;
    assert_eq!(run_a.status, RunStatus::Completed);
    assert_eq!(run_a.output, Some(json!("done")));
    assert_eq!(run_a.last_seq, 6);
    assert_eq!(run_a.updated_at_ms, T0 + 6);
    assert_eq!(
        seqs(&journal(store, "a").await),
        (1..=6).collect::<Vec<u64>>()
    );
    assert!(
        tokens_of(store, "a").await.is_empty(),
        "an ended run holds no token"
    );

    let run_b = get_run(store, "b").await;
    assert_eq!(run_b.status, RunStatus::Pending);
    assert_eq!(run_b.last_seq, 5);
    assert_eq!(run_b.updated_at_ms, T0 + 9);
    assert_eq!(
        bodies(&journal_after(store, "b", 2).await),
        vec![
            received(&json!(1), 1),
            EventBody::Now { cmd: 2, ms: 9 },
            received(&json!(2), 1),
        ]
    );
    assert_eq!(tokens_of(store, "b").await, strings(&["b1"]));
}

fn resume_expecting(token: &str, run_id: &str, hook_cmd: u32, at_ms: u64) -> WriteOp {
    WriteOp::Resume {
        token: token.into(),
        payload: json!({ "for": run_id }),
        idempotency_key: None,
        expect: Some(HookRef {
            run_id: run_id.into(),
            hook_cmd,
        }),
        claim: None,
        at_ms,
    }
}

/// `Resume` with an `expect` that does not match the hook holding the token now is refused
/// with `HookNotFound` and writes nothing.
pub async fn resume_with_mismatched_expect_is_refused(store: &dyn Store) {
    create_run(store, "a", "w", T0).await;
    create_run(store, "b", "w", T0).await;
    append(store, "a", vec![hook_created(1, "tok")], T0 + 1).await;
    let not_found = || OpRejected::HookNotFound {
        token: "tok".into(),
    };

    let [wrong_cmd, wrong_run, right] = commit_all(
        store,
        [
            resume_expecting("tok", "a", 2, T0 + 2),
            resume_expecting("tok", "b", 1, T0 + 2),
            resume_expecting("tok", "a", 1, T0 + 2),
        ],
    )
    .await;
    assert_eq!(rejected(wrong_cmd, "expect another hook_cmd"), not_found());
    assert_eq!(rejected(wrong_run, "expect another run"), not_found());
    let (run_id, event) = resumed(right, "expect matching the holder");
    assert_eq!(run_id, "a");
    assert_eq!(
        event.map(|e| e.seq),
        Some(3),
        "refused Resumes wrote nothing"
    );

    // The token changes hands: a payload validated against a's hook must not reach b's.
    append(store, "a", vec![hook_disposed(2, 1, "tok")], T0 + 3).await;
    append(store, "b", vec![hook_created(1, "tok")], T0 + 4).await;
    let result = commit_one(store, resume_expecting("tok", "a", 1, T0 + 5)).await;
    assert_eq!(rejected(result, "expect the previous holder"), not_found());
    assert_eq!(journal(store, "b").await.len(), 2, "nothing reached b");
    let (run_id, _) = resumed(
        commit_one(store, resume_expecting("tok", "b", 1, T0 + 6)).await,
        "expect the new holder",
    );
    assert_eq!(run_id, "b");
}
