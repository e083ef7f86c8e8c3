//! Conformance cases about hooks: the token index, conflicts, disposal, and delivering
//! payloads with `Resume` (acceptance order, `expect`, idempotency keys).

use serde_json::{json, Value};
use tether_core::event::{Event, EventBody, RunStatus};

use super::support::*;
use crate::{HookRecord, HookRef, OpRejected, Store, WriteOp};

/// `HookCreated` registers the token: `get_hook` finds it with the run, command index, kind,
/// metadata, definition and creation time; `list_hooks` lists a run's hooks by creation time,
/// then command index.
pub async fn hook_created_is_indexed_by_token(store: &dyn Store) {
    create_run(store, "r", "w", T0).await;
    let written = append(store, "r", vec![hook_created(3, "t3")], T0 + 1).await;
    assert_eq!(bodies(&written), vec![hook_created(3, "t3")]);
    let rich = EventBody::HookCreated {
        cmd: 2,
        token: "t2".into(),
        kind: "hook".into(),
        metadata: json!({ "label": "approve", "limits": [1, 2] }),
        definition: Some("approval".into()),
        generated: true,
    };
    let written = append(
        store,
        "r",
        vec![rich.clone(), hook_created(1, "t1")],
        T0 + 2,
    )
    .await;
    assert_eq!(
        bodies(&written),
        vec![rich, hook_created(1, "t1")],
        "HookCreated entries are written as given when the token is free"
    );

    assert_eq!(
        hook(store, "t2").await,
        Some(HookRecord {
            token: "t2".into(),
            run_id: "r".into(),
            hook_cmd: 2,
            kind: "hook".into(),
            metadata: json!({ "label": "approve", "limits": [1, 2] }),
            definition: Some("approval".into()),
            created_at_ms: T0 + 2,
        }),
        "get_hook returns the hook as registered"
    );
    let t3 = hook(store, "t3").await;
    assert_eq!(t3.as_ref().map(|h| h.created_at_ms), Some(T0 + 1));
    assert_eq!(t3.as_ref().map(|h| h.definition.clone()), Some(None));
    let listed: Vec<(String, u32)> = hooks_of(store, "r")
        .await
        .into_iter()
        .map(|h| (h.token, h.hook_cmd))
        .collect();
    assert_eq!(
        listed,
        vec![("t3".into(), 3), ("t1".into(), 1), ("t2".into(), 2)],
        "list_hooks orders by creation time, then command index"
    );
    assert_eq!(hook(store, "missing").await, None);
    assert!(hooks_of(store, "no-such-run").await.is_empty());
}

/// Creating a hook on a token another active hook holds writes `HookConflict` naming the
/// holder, and leaves the holder's hook as it was.
pub async fn hook_conflict_across_runs_names_the_holder(store: &dyn Store) {
    create_run(store, "a", "w", T0).await;
    create_run(store, "b", "w", T0).await;
    let held = EventBody::HookCreated {
        cmd: 1,
        token: "shared".into(),
        kind: "hook".into(),
        metadata: json!({ "owner": "a" }),
        definition: None,
        generated: false,
    };
    append(store, "a", vec![held], T0 + 1).await;
    let before = hook(store, "shared").await;

    let contender = EventBody::HookCreated {
        cmd: 4,
        token: "shared".into(),
        kind: "hook".into(),
        metadata: json!({ "owner": "b" }),
        definition: Some("def".into()),
        generated: false,
    };
    let written = append(store, "b", vec![contender], T0 + 2).await;
    let conflict = Event {
        seq: 2,
        at_ms: T0 + 2,
        body: EventBody::HookConflict {
            cmd: 4,
            token: "shared".into(),
            holder_run: "a".into(),
        },
    };
    assert_eq!(
        written,
        vec![conflict.clone()],
        "a contested HookCreated is written as HookConflict with the holder run"
    );
    assert_eq!(journal(store, "b").await[1], conflict);
    assert_eq!(get_run(store, "b").await.last_seq, 2);
    assert_eq!(
        hook(store, "shared").await,
        before,
        "the holder's hook is untouched"
    );
    assert!(
        hooks_of(store, "b").await.is_empty(),
        "the loser holds no hook"
    );

    // Another hook of the holder run on the same token conflicts too.
    let written = append(store, "a", vec![hook_created(5, "shared")], T0 + 3).await;
    assert_eq!(
        bodies(&written),
        vec![EventBody::HookConflict {
            cmd: 5,
            token: "shared".into(),
            holder_run: "a".into(),
        }]
    );
    assert_eq!(hook(store, "shared").await, before);
}

/// When several runs create the same token in one batch (or one run twice in one op), the
/// first in order wins and the others get `HookConflict`.
pub async fn hook_conflict_in_one_batch_has_one_winner(store: &dyn Store) {
    let [_, _, first, second] = commit_all(
        store,
        [
            create_op("a", "w", json!(1), T0),
            create_op("b", "w", json!(2), T0),
            append_op("a", vec![hook_created(1, "race")], T0 + 1),
            append_op("b", vec![hook_created(1, "race")], T0 + 1),
        ],
    )
    .await;
    assert_eq!(
        bodies(&appended(first, "first HookCreated race").1),
        vec![hook_created(1, "race")],
        "the first op in the batch wins"
    );
    assert_eq!(
        bodies(&appended(second, "second HookCreated race").1),
        vec![EventBody::HookConflict {
            cmd: 1,
            token: "race".into(),
            holder_run: "a".into(),
        }],
        "the second op in the batch loses to the first"
    );
    assert_eq!(
        hook(store, "race").await.map(|h| h.run_id),
        Some("a".into())
    );

    let [b_first, a_second] = commit_all(
        store,
        [
            append_op("b", vec![hook_created(2, "race-2")], T0 + 2),
            append_op("a", vec![hook_created(2, "race-2")], T0 + 2),
        ],
    )
    .await;
    assert_eq!(
        bodies(&appended(b_first, "b first").1),
        vec![hook_created(2, "race-2")]
    );
    assert_eq!(
        bodies(&appended(a_second, "a second").1),
        vec![EventBody::HookConflict {
            cmd: 2,
            token: "race-2".into(),
            holder_run: "b".into(),
        }]
    );
    assert_eq!(
        hook(store, "race-2").await.map(|h| h.run_id),
        Some("b".into())
    );

    let written = append(
        store,
        "a",
        vec![hook_created(3, "dup"), hook_created(4, "dup")],
        T0 + 3,
    )
    .await;
    assert_eq!(
        bodies(&written),
        vec![
            hook_created(3, "dup"),
            EventBody::HookConflict {
                cmd: 4,
                token: "dup".into(),
                holder_run: "a".into(),
            }
        ],
        "the same token twice in one Append: the first wins"
    );
    assert_eq!(hook(store, "dup").await.map(|h| h.hook_cmd), Some(3));
}

/// `HookDisposed` by the holding hook releases the token: it is gone from `get_hook` and
/// `list_hooks`, and another run (or the same one) can take it.
pub async fn dispose_releases_the_token(store: &dyn Store) {
    create_run(store, "a", "w", T0).await;
    create_run(store, "b", "w", T0).await;
    append(
        store,
        "a",
        vec![hook_created(1, "tok"), hook_created(2, "keep")],
        T0 + 1,
    )
    .await;
    let written = append(store, "a", vec![hook_disposed(3, 1, "tok")], T0 + 2).await;
    assert_eq!(
        bodies(&written),
        vec![hook_disposed(3, 1, "tok")],
        "HookDisposed is written as given"
    );
    assert_eq!(
        hook(store, "tok").await,
        None,
        "disposal releases the token"
    );
    assert_eq!(tokens_of(store, "a").await, strings(&["keep"]));

    let written = append(store, "b", vec![hook_created(1, "tok")], T0 + 3).await;
    assert_eq!(
        bodies(&written),
        vec![hook_created(1, "tok")],
        "a released token can be taken by another run"
    );
    assert_eq!(hook(store, "tok").await.map(|h| h.run_id), Some("b".into()));
    let (run_id, _) = resumed(
        commit_one(store, resume_op("tok", json!(1), None, T0 + 4)).await,
        "Resume of the re-taken token",
    );
    assert_eq!(run_id, "b", "payloads go to the new holder");

    // Dispose and re-create in one op.
    let written = append(
        store,
        "a",
        vec![hook_disposed(4, 2, "keep"), hook_created(5, "keep")],
        T0 + 5,
    )
    .await;
    assert_eq!(bodies(&written)[1], hook_created(5, "keep"));
    assert_eq!(hook(store, "keep").await.map(|h| h.hook_cmd), Some(5));
}

/// `HookDisposed` naming a hook that does not hold the token (another command index, another
/// run) is journaled but releases nothing.
pub async fn dispose_with_wrong_hook_does_nothing(store: &dyn Store) {
    create_run(store, "a", "w", T0).await;
    create_run(store, "b", "w", T0).await;
    append(store, "a", vec![hook_created(1, "tok")], T0 + 1).await;
    let before = hook(store, "tok").await;
    assert!(before.is_some());

    let written = append(store, "a", vec![hook_disposed(2, 7, "tok")], T0 + 2).await;
    assert_eq!(bodies(&written), vec![hook_disposed(2, 7, "tok")]);
    assert_eq!(
        hook(store, "tok").await,
        before,
        "disposing with another hook_cmd must not release the token"
    );

    let written = append(store, "b", vec![hook_disposed(1, 1, "tok")], T0 + 3).await;
    assert_eq!(bodies(&written), vec![hook_disposed(1, 1, "tok")]);
    assert_eq!(
        hook(store, "tok").await,
        before,
        "another run disposing must not release the token"
    );
    assert_eq!(tokens_of(store, "a").await, strings(&["tok"]));
}

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

/// A second `Resume` with an idempotency key already used for the token writes nothing and
/// answers with the first run and `event: None`; keys are scoped to their token.
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
        commit_one(store, resume_op("tok", json!(2), Some("k1"), T0 + 3)).await,
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
            resume_op("tok", json!(4), Some("k2"), T0 + 4),
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
            resume_op("tok", json!(4), Some("k"), T0 + 4),
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
            resume_op("tok", json!("retry"), Some("k"), T0 + 4),
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
            resume_op("tok", json!("retry"), Some("k"), T0 + 6),
            WriteOp::Resume {
                token: "tok".into(),
                payload: json!("retry"),
                idempotency_key: Some("k".into()),
                expect: Some(HookRef {
                    run_id: "b".into(),
                    hook_cmd: 1,
                }),
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
