//! Retention: which ended runs [`Store::delete_ended_before`] deletes (the rule of
//! [`tether_store::retention`]), everything that goes with them, and the idempotency window
//! of [`Store::delete_keys_before`].

use serde_json::json;
use tether_core::event::{EventBody, RunStatus};
use tether_core::RetryPolicy;

use super::support::*;
use tether_store::retention::namespace_may_be_deleted;
use tether_store::{OpRejected, Store, WakeAt, WriteOp};

/// The cutoff of the retention cases: runs ended before it are old enough.
const CUTOFF: u64 = T0 + 500;

fn spawned(cmd: u32, hook_id: &str, fail_signal: Option<&str>) -> EventBody {
    EventBody::HookSpawned {
        cmd,
        hook_id: hook_id.into(),
        workflow: "hook_fn".into(),
        task_queue: "default".into(),
        args: json!({}),
        retry: RetryPolicy::default(),
        fail_signal: fail_signal.map(str::to_owned),
    }
}

fn completed() -> EventBody {
    EventBody::RunCompleted {
        output: json!("done"),
    }
}

async fn delete_ended(store: &dyn Store, cutoff_ms: u64, max: usize) -> u64 {
    match store.delete_ended_before(cutoff_ms, max).await {
        Ok(n) => n,
        Err(e) => panic!("delete_ended_before({cutoff_ms}, {max}) failed: {e}"),
    }
}

async fn signal(store: &dyn Store, signal_id: &str) {
    let result = commit_one(
        store,
        WriteOp::Signal {
            signal_id: signal_id.into(),
            payload: json!({ "to": signal_id }),
            idempotency_key: None,
            at_ms: T0 + 20,
        },
    )
    .await;
    if let Err(e) = result {
        panic!("Signal {signal_id} was refused: {e:?}");
    }
}

/// Whether a kept signal `signal_id` is still there: a new run's wait takes it at once.
async fn signal_kept(store: &dyn Store, probe: &str, signal_id: &str) -> bool {
    create_run(store, probe, "w", T0 + 900).await;
    let result = commit_one(
        store,
        append_op(
            probe,
            vec![EventBody::SignalWaited {
                cmd: 1,
                signal_id: signal_id.into(),
            }],
            T0 + 901,
        ),
    )
    .await;
    appended(result, "wait on a signal").1.len() > 1
}

/// Only namespaces whose root and threads all ended before the cutoff are deleted, with their
/// journals, hooks, keys, waits, state and the kept `/done` signals of their threads; a thread
/// of a live root, a root with a live or recently ended thread, a live or recent run stay.
/// Batches are capped, and a later call deletes the rest.
pub async fn retention_deletes_ended_namespaces_only(store: &dyn Store) {
    // old: ended long ago, with a key, state and a released hook. Deleted.
    create_run(store, "old", "w", T0).await;
    append(store, "old", vec![hook_created(1, "tok-old")], T0 + 1).await;
    resumed(
        commit_one(store, resume_op("tok-old", json!(1), Some("k"), T0 + 2)).await,
        "Resume old",
    );
    let state = EventBody::StateSet {
        cmd: 2,
        key: "s".into(),
        value: json!(1),
    };
    append(store, "old", vec![state, completed()], T0 + 10).await;
    // recent: ended after the cutoff. Kept.
    create_run(store, "recent", "w", T0).await;
    append(store, "recent", vec![completed()], CUTOFF).await;
    // alive: still waiting. Kept.
    create_run(store, "alive", "w", T0).await;
    set_status(
        store,
        "alive",
        Some(RunStatus::Suspended),
        WakeAt::Keep,
        T0 + 1,
    )
    .await;
    // live-thread: ended root, thread still pending. Both kept.
    create_run(store, "lt", "w", T0).await;
    append(
        store,
        "lt",
        vec![spawned(1, "lt.h1", None), completed()],
        T0 + 10,
    )
    .await;
    // done-ns: ended root and thread (an exec thread whose reply was never taken). Deleted.
    create_run(store, "dn", "w", T0).await;
    append(
        store,
        "dn",
        vec![spawned(1, "dn.h1", Some("dn.h1/done"))],
        T0 + 5,
    )
    .await;
    append(store, "dn.h1", vec![completed()], T0 + 6).await;
    signal(store, "dn.h1/done").await;
    signal(store, "unrelated").await;
    append(store, "dn", vec![completed()], T0 + 10).await;
    // live-root: its thread ended long ago, the root waits. Both kept.
    create_run(store, "lr", "w", T0).await;
    append(store, "lr", vec![spawned(1, "lr.h1", None)], T0 + 5).await;
    append(store, "lr.h1", vec![completed()], T0 + 6).await;

    // The Rust statement of the rule agrees with what the backend is about to do.
    for (root, threads, expected) in [("old", vec![], true), ("lt", vec!["lt.h1"], false)] {
        let root = get_run(store, root).await;
        let mut records = Vec::new();
        for t in threads {
            records.push(get_run(store, t).await);
        }
        assert_eq!(namespace_may_be_deleted(&root, &records, CUTOFF), expected);
    }

    assert_eq!(
        delete_ended(store, CUTOFF, 500).await,
        3,
        "old, dn and its thread dn.h1 are deleted (runs, threads included)"
    );
    for gone in ["old", "dn", "dn.h1"] {
        assert!(!run_exists(store, gone).await, "{gone} must be deleted");
        assert!(
            journal(store, gone).await.is_empty(),
            "{gone}'s journal must go"
        );
    }
    for kept in ["recent", "alive", "lt", "lt.h1", "lr", "lr.h1"] {
        assert!(run_exists(store, kept).await, "{kept} must be kept");
        assert!(
            !journal(store, kept).await.is_empty(),
            "{kept} keeps its journal"
        );
    }
    assert_eq!(
        delete_ended(store, CUTOFF, 500).await,
        0,
        "nothing left to delete"
    );

    // The key went with its run: the token, held again, takes "k" with another payload.
    create_run(store, "old", "w", T0 + 800).await;
    assert_eq!(
        store.get_state("old").await.ok().flatten(),
        Some(serde_json::Map::new()),
        "the shared state of a deleted namespace must go with it"
    );
    append(store, "old", vec![hook_created(1, "tok-old")], T0 + 801).await;
    resumed(
        commit_one(store, resume_op("tok-old", json!(2), Some("k"), T0 + 802)).await,
        "Resume with the key of a deleted run",
    );
    assert!(
        !signal_kept(store, "probe1", "dn.h1/done").await,
        "the kept reply signal of a deleted thread must go"
    );
    assert!(
        signal_kept(store, "probe2", "unrelated").await,
        "signals of no deleted thread are kept"
    );
}

/// One call deletes at most `max_runs` namespaces, oldest first; the next takes the rest.
pub async fn retention_deletes_in_capped_batches(store: &dyn Store) {
    for (i, id) in ["b1", "b2", "b3"].into_iter().enumerate() {
        create_run(store, id, "w", T0).await;
        append(store, id, vec![completed()], T0 + 10 + i as u64).await;
    }
    assert_eq!(delete_ended(store, CUTOFF, 2).await, 2);
    assert!(
        run_exists(store, "b3").await,
        "the most recently ended goes last"
    );
    assert_eq!(delete_ended(store, CUTOFF, 2).await, 1);
    assert_eq!(delete_ended(store, CUTOFF, 2).await, 0);
}

/// Keys recorded before the cutoff are forgotten (at most `max_keys` per call, oldest
/// first); a forgotten key is a new request, a younger one still answers as before.
pub async fn idempotency_keys_are_forgotten_after_the_window(store: &dyn Store) {
    create_run(store, "r", "w", T0).await;
    append(store, "r", vec![hook_created(1, "tok")], T0 + 1).await;
    for (key, at) in [("k1", T0 + 2), ("k2", T0 + 3), ("k3", T0 + 100)] {
        resumed(
            commit_one(store, resume_op("tok", json!(1), Some(key), at)).await,
            "first Resume",
        );
    }
    let forget = |max| store.delete_keys_before(T0 + 50, max);
    assert_eq!(forget(1).await.expect("delete_keys_before"), 1);
    assert_eq!(forget(10).await.expect("delete_keys_before"), 1);
    assert_eq!(forget(10).await.expect("delete_keys_before"), 0);
    for key in ["k1", "k2"] {
        resumed(
            commit_one(store, resume_op("tok", json!(2), Some(key), T0 + 200)).await,
            "a forgotten key with another payload is a new request",
        );
    }
    assert_eq!(
        rejected(
            commit_one(store, resume_op("tok", json!(2), Some("k3"), T0 + 200)).await,
            "a remembered key with another payload",
        ),
        OpRejected::IdempotencyKeyReused {
            token: "tok".into(),
            key: "k3".into(),
        }
    );
}
