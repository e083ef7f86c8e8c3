//! Conformance cases about expiring hooks and reserved tokens (the rules of
//! `tether_store::plan::hook_end`): an expiry releases the token and refuses later payloads as
//! expired, a payload journaled before the expiry is delivered, a reservation refuses other
//! runs' hooks and payloads until it ends, and retention removes old token ends.

use serde_json::json;
use tether_core::event::{EventBody, RunStatus};

use super::support::*;
use tether_store::{HookEnd, OpRejected, Store};

fn expired(hook_cmd: u32, token: &str) -> EventBody {
    EventBody::HookExpired {
        hook_cmd,
        token: token.to_owned(),
    }
}

fn completed() -> EventBody {
    EventBody::RunCompleted { output: json!(1) }
}

async fn hook_end(store: &dyn Store, token: &str) -> Option<HookEnd> {
    match store.get_hook_end(token).await {
        Ok(end) => end,
        Err(e) => panic!("get_hook_end({token:?}) failed: {e}"),
    }
}

/// `HookExpired` releases the token and records it as expired: a later `Resume` is refused
/// with `HookExpired` and writes nothing; a payload before it (even in the same batch, before
/// the append) is delivered. The hook record shows its expiry and reservation.
pub async fn an_expiry_releases_the_token_and_refuses_later_resumes(store: &dyn Store) {
    create_run(store, "r", "w", T0).await;
    let created = hook_created_with(1, "t", Some(T0 + 100), Some(50));
    append(store, "r", vec![created], T0 + 1).await;
    let record = hook(store, "t").await.expect("the hook holds its token");
    assert_eq!(record.expires_at_ms, Some(T0 + 100));
    assert_eq!(record.reserve_ms, Some(50));

    let [before, expiry, after] = commit_all(
        store,
        [
            resume_op("t", json!("early"), None, T0 + 100),
            append_op("r", vec![expired(1, "t")], T0 + 100),
            resume_op("t", json!("late"), Some("k"), T0 + 100),
        ],
    )
    .await;
    resumed(before, "a payload committed before the expiry");
    appended(expiry, "the expiry");
    assert_eq!(
        rejected(after, "a payload after the expiry"),
        OpRejected::HookExpired { token: "t".into() }
    );
    assert_eq!(
        hook(store, "t").await,
        None,
        "the expiry released the token"
    );
    assert_eq!(
        hook_end(store, "t").await,
        Some(HookEnd {
            token: "t".into(),
            run_id: "r".into(),
            hook_cmd: 1,
            expired: true,
            ended_at_ms: T0 + 100,
            reserved_until_ms: Some(T0 + 150),
        })
    );
    let kinds: Vec<&str> = journal(store, "r")
        .await
        .iter()
        .map(|e| e.body.kind())
        .collect();
    assert_eq!(
        kinds,
        [
            "run_started",
            "hook_created",
            "hook_received",
            "hook_expired"
        ]
    );
    // Long after the reservation, still expired (not "not found").
    assert_eq!(
        rejected(
            commit_one(store, resume_op("t", json!(1), None, T0 + 10_000)).await,
            "a payload long after the expiry",
        ),
        OpRejected::HookExpired { token: "t".into() }
    );
    // A hook registered with the token again takes payloads and clears the end.
    create_run(store, "s", "w", T0).await;
    let (_, written) = appended(
        commit_one(
            store,
            append_op("s", vec![hook_created(1, "t")], T0 + 10_000),
        )
        .await,
        "a new hook once the reservation is over",
    );
    assert!(matches!(written[0].body, EventBody::HookCreated { .. }));
    assert_eq!(hook_end(store, "t").await, None);
    resumed(
        commit_one(store, resume_op("t", json!(2), None, T0 + 10_001)).await,
        "a payload for the new holder",
    );
}

/// A token reserved by its run (its hook disposed, expired or the run ended) makes another
/// run's hook with it a `HookConflict` naming the reserving run and refuses payloads with
/// `TokenReserved`, until the reservation ends; then the token is free. The reserving run may
/// take the token again meanwhile.
pub async fn a_reserved_token_refuses_other_runs_until_the_reservation_ends(store: &dyn Store) {
    create_run(store, "a", "w", T0).await;
    create_run(store, "b", "w", T0).await;
    let created = hook_created_with(1, "order:1", None, Some(1_000));
    append(store, "a", vec![created], T0 + 1).await;
    append(store, "a", vec![completed()], T0 + 10).await;
    assert_eq!(get_run(store, "a").await.status, RunStatus::Completed);
    assert_eq!(hook(store, "order:1").await, None);
    let end = hook_end(store, "order:1").await.expect("reserved");
    assert!(!end.expired);
    assert_eq!(end.reserved_until_ms, Some(T0 + 1_010));

    let (_, written) = appended(
        commit_one(
            store,
            append_op("b", vec![hook_created(1, "order:1")], T0 + 20),
        )
        .await,
        "a hook on a reserved token",
    );
    assert_eq!(
        written[0].body,
        EventBody::HookConflict {
            cmd: 1,
            token: "order:1".into(),
            holder_run: "a".into()
        }
    );
    assert_eq!(
        hook(store, "order:1").await,
        None,
        "the conflict holds nothing"
    );
    assert_eq!(
        rejected(
            commit_one(store, resume_op("order:1", json!(1), None, T0 + 20)).await,
            "a payload for a reserved token",
        ),
        OpRejected::TokenReserved {
            token: "order:1".into(),
            run_id: "a".into(),
            until_ms: T0 + 1_010
        }
    );

    // At the reservation's end the token is free: a payload is not found, a hook takes it.
    assert_eq!(
        rejected(
            commit_one(store, resume_op("order:1", json!(1), None, T0 + 1_010)).await,
            "a payload once the reservation ended",
        ),
        OpRejected::HookNotFound {
            token: "order:1".into()
        }
    );
    let (_, written) = appended(
        commit_one(
            store,
            append_op("b", vec![hook_created(2, "order:1")], T0 + 1_010),
        )
        .await,
        "a hook once the reservation ended",
    );
    assert!(matches!(written[0].body, EventBody::HookCreated { .. }));
    assert_eq!(hook_end(store, "order:1").await, None);

    // A disposal reserves too, and the reserving run may take its token again.
    create_run(store, "c", "w", T0).await;
    let created = hook_created_with(1, "mine", None, Some(1_000));
    append(
        store,
        "c",
        vec![created, hook_disposed(2, 1, "mine")],
        T0 + 30,
    )
    .await;
    let (_, written) = appended(
        commit_one(
            store,
            append_op("b", vec![hook_created(3, "mine")], T0 + 31),
        )
        .await,
        "another run during the reservation",
    );
    assert!(matches!(written[0].body, EventBody::HookConflict { .. }));
    let (_, written) = appended(
        commit_one(
            store,
            append_op("c", vec![hook_created(3, "mine")], T0 + 32),
        )
        .await,
        "the reserving run itself",
    );
    assert!(matches!(written[0].body, EventBody::HookCreated { .. }));
    resumed(
        commit_one(store, resume_op("mine", json!(1), None, T0 + 33)).await,
        "a payload for the reserving run's new hook",
    );
}

/// Retention removes token ends with their run's namespace, except a reservation still
/// running at the cutoff, which goes in a later call whose cutoff is past its end.
pub async fn retention_removes_old_token_ends(store: &dyn Store) {
    create_run(store, "x", "w", T0).await;
    let short = hook_created_with(1, "short", Some(T0 + 2), None);
    let long = hook_created_with(2, "long", None, Some(10_000));
    append(store, "x", vec![short, long], T0 + 1).await;
    append(store, "x", vec![expired(1, "short")], T0 + 2).await;
    append(store, "x", vec![completed()], T0 + 3).await;
    assert!(hook_end(store, "short").await.is_some());
    assert!(hook_end(store, "long").await.is_some());

    let deleted = store
        .delete_ended_before(T0 + 500, 10)
        .await
        .expect("delete_ended_before");
    assert_eq!(deleted, 1);
    assert_eq!(hook_end(store, "short").await, None, "gone with its run");
    assert!(
        hook_end(store, "long").await.is_some(),
        "a reservation running at the cutoff outlives its run"
    );
    // Still reserved after the run is deleted.
    assert!(matches!(
        rejected(
            commit_one(store, resume_op("long", json!(1), None, T0 + 600)).await,
            "a payload for a token reserved by a deleted run",
        ),
        OpRejected::TokenReserved { .. }
    ));
    store
        .delete_ended_before(T0 + 10_004, 10)
        .await
        .expect("delete_ended_before");
    assert_eq!(hook_end(store, "long").await, None, "gone once it ended");
}
