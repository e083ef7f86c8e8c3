//! Conformance cases about `Signal` idempotency keys: a repeated key with the same payload
//! answers where the first send went (a waiting run, or kept) and stores nothing; with another
//! payload it is refused (`IdempotencyKeyReused`) and nothing is stored; keys are scoped to
//! their signal id; the idempotency window forgets them, and kept payloads no hook registered.

use serde_json::{json, Value};
use tether_core::event::{Event, EventBody};

use super::support::*;
use tether_store::{OpOutcome, OpRejected, Store, WriteOp};

/// `Signal` op with an optional key.
fn signal_op(signal_id: &str, payload: Value, key: Option<&str>, at_ms: u64) -> WriteOp {
    WriteOp::Signal {
        signal_id: signal_id.to_owned(),
        payload,
        idempotency_key: key.map(str::to_owned),
        at_ms,
    }
}

fn wait(cmd: u32, signal_id: &str) -> EventBody {
    EventBody::SignalWaited {
        cmd,
        signal_id: signal_id.into(),
    }
}

fn received(wait_cmd: u32, payload: Value) -> EventBody {
    EventBody::SignalReceived { wait_cmd, payload }
}

fn repeated(delivered_to: Option<&str>) -> OpOutcome {
    OpOutcome::SignalRepeated {
        delivered_to: delivered_to.map(str::to_owned),
    }
}

/// Append a wait and return what was written (a kept signal it takes follows it).
async fn wait_on(store: &dyn Store, run_id: &str, cmd: u32, signal_id: &str) -> Vec<Event> {
    appended(
        commit_one(
            store,
            append_op(run_id, vec![wait(cmd, signal_id)], T0 + 30),
        )
        .await,
        &format!("a wait of {run_id} on {signal_id}"),
    )
    .1
}

/// A signal delivered to a waiting run: the same key and payload again (later, or in the same
/// batch) answers that run again and appends nothing, even once another run waits.
pub async fn a_delivered_signals_key_answers_the_same_run(store: &dyn Store) {
    create_run(store, "a", "w", T0).await;
    create_run(store, "b", "w", T0).await;
    append(store, "a", vec![wait(1, "s")], T0 + 1).await;

    let (run_id, events) = appended(
        commit_one(store, signal_op("s", json!(1), Some("k"), T0 + 2)).await,
        "the first send with k",
    );
    assert_eq!(run_id, "a");
    assert_eq!(bodies(&events), vec![received(1, json!(1))]);

    append(store, "b", vec![wait(1, "s")], T0 + 3).await;
    let journal_of_b = journal(store, "b").await;
    let [again, in_batch] = commit_all(
        store,
        [
            signal_op("s", json!(1), Some("k"), T0 + 4),
            signal_op("s", json!(1), Some("k"), T0 + 4),
        ],
    )
    .await;
    assert_eq!(
        again,
        Ok(repeated(Some("a"))),
        "a repeated key answers the first run"
    );
    assert_eq!(in_batch, Ok(repeated(Some("a"))));
    assert_eq!(journal(store, "a").await.len(), 3, "a got the signal once");
    assert_eq!(
        journal(store, "b").await,
        journal_of_b,
        "the waiting run b gets nothing from a repeated key"
    );

    // Two sends with one new key in one batch: the first delivers, the second repeats it.
    let [first, second] = commit_all(
        store,
        [
            signal_op("s", json!(2), Some("k2"), T0 + 5),
            signal_op("s", json!(2), Some("k2"), T0 + 5),
        ],
    )
    .await;
    assert_eq!(appended(first, "the first send with k2").0, "b");
    assert_eq!(second, Ok(repeated(Some("b"))));
}

/// A signal kept (nobody waits): the same key and payload again answers "kept" again, keeps
/// nothing more, and still does once a wait has taken it.
pub async fn a_kept_signals_key_answers_kept(store: &dyn Store) {
    assert_eq!(
        commit_one(store, signal_op("s", json!(1), Some("k"), T0 + 1)).await,
        Ok(OpOutcome::Updated),
        "nobody waits: kept"
    );
    assert_eq!(
        commit_one(store, signal_op("s", json!(1), Some("k"), T0 + 2)).await,
        Ok(repeated(None))
    );
    create_run(store, "r", "w", T0).await;
    let events = wait_on(store, "r", 1, "s").await;
    assert_eq!(bodies(&events), vec![wait(1, "s"), received(1, json!(1))]);
    let events = wait_on(store, "r", 2, "s").await;
    assert_eq!(
        bodies(&events),
        vec![wait(2, "s")],
        "one signal was kept, not two"
    );
    assert_eq!(
        commit_one(store, signal_op("s", json!(1), Some("k"), T0 + 40)).await,
        Ok(repeated(None)),
        "the first answer stays `kept` after a wait took the signal"
    );
    assert_eq!(
        journal(store, "r").await.len(),
        4,
        "and the registered wait got nothing"
    );
}

/// The same key with another payload is refused and writes nothing (no delivery, nothing
/// kept); keys are scoped to their signal id; sends without a key are never deduplicated.
pub async fn a_signal_key_with_another_payload_is_refused(store: &dyn Store) {
    create_run(store, "r", "w", T0).await;
    append(store, "r", vec![wait(1, "s")], T0 + 1).await;
    assert_eq!(
        appended(
            commit_one(store, signal_op("s", json!(1), Some("k"), T0 + 1)).await,
            "the first send with k"
        )
        .0,
        "r"
    );
    append(store, "r", vec![wait(2, "s")], T0 + 2).await;
    let before = journal(store, "r").await;
    assert_eq!(
        rejected(
            commit_one(store, signal_op("s", json!(2), Some("k"), T0 + 3)).await,
            "k with another payload",
        ),
        OpRejected::IdempotencyKeyReused {
            token: "s".into(),
            key: "k".into(),
        }
    );
    assert_eq!(
        journal(store, "r").await,
        before,
        "a refused send delivers nothing to the waiting run"
    );

    // Signal ids are independent: k on "t" is a new key, and so is k2 on "s".
    assert_eq!(
        commit_one(store, signal_op("t", json!(2), Some("k"), T0 + 4)).await,
        Ok(OpOutcome::Updated),
        "keys are scoped to their signal id"
    );
    let (run_id, events) = appended(
        commit_one(store, signal_op("s", json!(3), Some("k2"), T0 + 5)).await,
        "a new key on s",
    );
    assert_eq!(run_id, "r");
    assert_eq!(bodies(&events), vec![received(2, json!(3))]);
    for at in [T0 + 6, T0 + 7] {
        assert_eq!(
            commit_one(store, signal_op("s", json!(3), None, at)).await,
            Ok(OpOutcome::Updated),
            "sends without a key are never deduplicated"
        );
    }
    create_run(store, "probe", "w", T0 + 8).await;
    let events = wait_on(store, "probe", 1, "t").await;
    assert_eq!(
        bodies(&events),
        vec![wait(1, "t"), received(1, json!(2))],
        "the refused send kept nothing on t"
    );
    let events = wait_on(store, "probe", 2, "s").await;
    assert_eq!(bodies(&events), vec![wait(2, "s"), received(2, json!(3))]);
    let events = wait_on(store, "probe", 3, "s").await;
    assert_eq!(bodies(&events), vec![wait(3, "s"), received(3, json!(3))]);
    let events = wait_on(store, "probe", 4, "s").await;
    assert_eq!(
        bodies(&events),
        vec![wait(4, "s")],
        "the two keyless sends were kept, nothing else"
    );
}

/// The idempotency window forgets signal keys recorded before the cutoff (within the one
/// budget of `max_keys`); a forgotten key is a new request, a younger one still answers.
/// A key delivered to a run goes with it when retention deletes the run's namespace.
pub async fn signal_keys_are_forgotten_after_the_window(store: &dyn Store) {
    for (key, at) in [("k1", T0 + 2), ("k2", T0 + 3), ("k3", T0 + 100)] {
        assert_eq!(
            commit_one(store, signal_op("s", json!(1), Some(key), at)).await,
            Ok(OpOutcome::Updated),
            "first send with {key}"
        );
    }
    let forget = |max| store.delete_keys_before(T0 + 50, max);
    assert_eq!(forget(1).await.expect("delete_keys_before"), 1);
    assert_eq!(forget(10).await.expect("delete_keys_before"), 1);
    assert_eq!(forget(10).await.expect("delete_keys_before"), 0);
    for key in ["k1", "k2"] {
        assert_eq!(
            commit_one(store, signal_op("s", json!(2), Some(key), T0 + 200)).await,
            Ok(OpOutcome::Updated),
            "a forgotten key with another payload is a new request"
        );
    }
    assert_eq!(
        rejected(
            commit_one(store, signal_op("s", json!(2), Some("k3"), T0 + 200)).await,
            "a remembered key with another payload",
        ),
        OpRejected::IdempotencyKeyReused {
            token: "s".into(),
            key: "k3".into(),
        }
    );

    // Retention: the key of a signal delivered to a deleted run goes with it.
    create_run(store, "old", "w", T0).await;
    append(store, "old", vec![wait(1, "x")], T0 + 1).await;
    assert_eq!(
        appended(
            commit_one(store, signal_op("x", json!(1), Some("kx"), T0 + 300)).await,
            "delivered to old",
        )
        .0,
        "old"
    );
    let done = EventBody::RunCompleted {
        output: json!(null),
    };
    append(store, "old", vec![done], T0 + 301).await;
    assert_eq!(
        store
            .delete_ended_before(T0 + 400, 10)
            .await
            .expect("delete_ended_before"),
        1
    );
    assert_eq!(
        commit_one(store, signal_op("x", json!(2), Some("kx"), T0 + 500)).await,
        Ok(OpOutcome::Updated),
        "the key went with the run its signal was delivered to"
    );
}

/// The idempotency window also drops payloads kept (`ResumeOrKeep`) for a token no hook
/// registered before the cutoff, with their keys; younger ones are still delivered.
pub async fn kept_payloads_are_dropped_after_the_window(store: &dyn Store) {
    let keep = |token: &str, payload: Value, key: Option<&str>, at_ms: u64| WriteOp::ResumeOrKeep {
        token: token.to_owned(),
        payload,
        idempotency_key: key.map(str::to_owned),
        at_ms,
    };
    for (token, key, at) in [
        ("never", Some("k"), T0 + 1),
        ("never", None, T0 + 2),
        ("late", None, T0 + 100),
    ] {
        assert_eq!(
            commit_one(store, keep(token, json!(at - T0), key, at)).await,
            Ok(OpOutcome::Kept),
            "no hook holds {token}"
        );
    }
    assert_eq!(
        store
            .delete_keys_before(T0 + 50, 10)
            .await
            .expect("delete_keys_before"),
        2,
        "both payloads kept for `never` before the cutoff are dropped"
    );
    create_run(store, "r", "w", T0 + 200).await;
    let (_, events) = appended(
        commit_one(
            store,
            append_op(
                "r",
                vec![hook_created(1, "never"), hook_created(2, "late")],
                T0 + 201,
            ),
        )
        .await,
        "the append registering both tokens",
    );
    assert_eq!(
        bodies(&events),
        vec![
            hook_created(1, "never"),
            hook_created(2, "late"),
            EventBody::HookReceived {
                hook_cmd: 2,
                payload: json!(100),
            },
        ],
        "only the payload kept within the window is delivered"
    );
    let (run_id, event) = resumed(
        commit_one(store, keep("never", json!(7), Some("k"), T0 + 202)).await,
        "the dropped payload's key with another payload",
    );
    assert_eq!(run_id, "r");
    assert!(event.is_some(), "its key went with it: a new request");
}
