//! Conformance cases about `ResumeOrKeep`: a payload for a token no hook holds yet is kept,
//! in order, and delivered as `HookReceived` right after the `HookCreated` of the first hook
//! registered with the token; its idempotency key counts while it is kept and after; with a
//! hook holding the token it is a `Resume`.

use serde_json::{json, Value};
use tether_core::event::EventBody;

use super::support::*;
use tether_store::{OpOutcome, OpRejected, Store, WriteOp};

/// `ResumeOrKeep` op.
fn keep_op(token: &str, payload: Value, key: Option<&str>, at_ms: u64) -> WriteOp {
    WriteOp::ResumeOrKeep {
        token: token.to_owned(),
        payload,
        idempotency_key: key.map(str::to_owned),
        at_ms,
    }
}

fn received(hook_cmd: u32, payload: Value) -> EventBody {
    EventBody::HookReceived { hook_cmd, payload }
}

/// Payloads kept for a token are written right after the `HookCreated` that registers it, in
/// the order they were kept, in the same append; a run whose hook conflicts gets none, and
/// once delivered they are gone.
pub async fn kept_payloads_follow_the_hook_that_registers_their_token(store: &dyn Store) {
    for (i, payload) in [json!(1), json!(2), json!(3)].into_iter().enumerate() {
        let result = commit_one(store, keep_op("tok", payload, None, T0 + i as u64)).await;
        assert_eq!(result, Ok(OpOutcome::Kept), "no hook holds the token yet");
    }
    let [first, second] = commit_all(
        store,
        [
            keep_op("tok", json!(4), Some("k"), T0 + 3),
            keep_op("other", json!(9), None, T0 + 3),
        ],
    )
    .await;
    assert_eq!(first, Ok(OpOutcome::Kept));
    assert_eq!(second, Ok(OpOutcome::Kept));

    create_run(store, "a", "w", T0 + 4).await;
    let (_, events) = appended(
        commit_one(store, append_op("a", vec![hook_created(1, "tok")], T0 + 5)).await,
        "the append registering the token",
    );
    assert_eq!(
        bodies(&events),
        vec![
            hook_created(1, "tok"),
            received(1, json!(1)),
            received(1, json!(2)),
            received(1, json!(3)),
            received(1, json!(4)),
        ],
        "kept payloads follow their hook, oldest first"
    );
    assert_eq!(seqs(&events), vec![2, 3, 4, 5, 6]);
    assert_eq!(journal(store, "a").await.len(), 6, "and are in the journal");

    // Another run's hook on the token conflicts and takes nothing.
    create_run(store, "b", "w", T0 + 6).await;
    let (_, events) = appended(
        commit_one(store, append_op("b", vec![hook_created(1, "tok")], T0 + 7)).await,
        "a conflicting hook",
    );
    assert!(matches!(&events[..], [e] if matches!(e.body, EventBody::HookConflict { .. })));

    // Delivered payloads are gone: a new hook of the token after a release gets none.
    append(store, "a", vec![hook_disposed(2, 1, "tok")], T0 + 8).await;
    let (_, events) = appended(
        commit_one(store, append_op("b", vec![hook_created(2, "tok")], T0 + 9)).await,
        "a later hook of the token",
    );
    assert_eq!(bodies(&events), vec![hook_created(2, "tok")]);

    // The key of a delivered payload answers with the run that took it.
    let (run_id, event) = resumed(
        commit_one(store, keep_op("tok", json!(4), Some("k"), T0 + 10)).await,
        "a delivered payload's key again",
    );
    assert_eq!((run_id.as_str(), event), ("a", None));
}

/// An idempotency key of a kept payload counts while it is kept: the same payload again is
/// answered `Kept` and kept once, another payload is refused.
pub async fn a_kept_payloads_key_is_deduplicated(store: &dyn Store) {
    let [first, again] = commit_all(
        store,
        [
            keep_op("tok", json!("p"), Some("k"), T0),
            keep_op("tok", json!("p"), Some("k"), T0),
        ],
    )
    .await;
    assert_eq!(first, Ok(OpOutcome::Kept));
    assert_eq!(again, Ok(OpOutcome::Kept), "the same key in the same batch");
    assert_eq!(
        commit_one(store, keep_op("tok", json!("p"), Some("k"), T0 + 1)).await,
        Ok(OpOutcome::Kept),
        "the same key in a later batch"
    );
    assert_eq!(
        rejected(
            commit_one(store, keep_op("tok", json!("q"), Some("k"), T0 + 2)).await,
            "the key with another payload",
        ),
        OpRejected::IdempotencyKeyReused {
            token: "tok".into(),
            key: "k".into()
        }
    );
    create_run(store, "a", "w", T0 + 3).await;
    let (_, events) = appended(
        commit_one(store, append_op("a", vec![hook_created(1, "tok")], T0 + 4)).await,
        "the hook",
    );
    assert_eq!(
        bodies(&events),
        vec![hook_created(1, "tok"), received(1, json!("p"))],
        "a payload kept once is delivered once"
    );
}

/// With a hook holding the token, `ResumeOrKeep` is a `Resume`: `HookReceived` appended now.
pub async fn resume_or_keep_to_an_active_hook_resumes(store: &dyn Store) {
    create_run(store, "a", "w", T0).await;
    append(store, "a", vec![hook_created(1, "tok")], T0 + 1).await;
    let (run_id, event) = resumed(
        commit_one(store, keep_op("tok", json!(7), Some("k"), T0 + 2)).await,
        "a payload for an active hook",
    );
    assert_eq!(run_id, "a");
    assert_eq!(
        event.map(|e| (e.seq, e.body)),
        Some((3, received(1, json!(7))))
    );
    let (_, again) = resumed(
        commit_one(store, keep_op("tok", json!(7), Some("k"), T0 + 3)).await,
        "the same key again",
    );
    assert_eq!(again, None);
    assert_eq!(
        rejected(
            commit_one(store, resume_op("tok", json!(8), Some("k"), T0 + 4)).await,
            "a Resume reusing the key with another payload",
        ),
        OpRejected::IdempotencyKeyReused {
            token: "tok".into(),
            key: "k".into()
        }
    );
}
