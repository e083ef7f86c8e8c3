//! Conformance cases about hook tokens: the token index, conflicts, and releasing a token by
//! disposal. Delivering payloads is in `hook_resume.rs`, idempotency keys in
//! `hook_idempotency.rs`.

use serde_json::json;
use tether_core::event::{Event, EventBody};

use super::support::*;
use tether_store::{HookRecord, Store};

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
        expires_at_ms: None,
        reserve_ms: None,
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
            expires_at_ms: None,
            reserve_ms: None,
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
        expires_at_ms: None,
        reserve_ms: None,
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
        expires_at_ms: None,
        reserve_ms: None,
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
