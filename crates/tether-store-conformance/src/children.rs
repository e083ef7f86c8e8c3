//! Child runs: created in the parent's append, their end delivered to the parent in the same
//! transaction, a parent's cancel request passed on to its attached unfinished children.

use serde_json::json;
use tether_core::event::{ErrorInfo, EventBody, RunStatus};

use super::support::*;
use tether_store::{OpOutcome, Store, WriteOp};

fn started(cmd: u32, child: &str, detached: bool) -> EventBody {
    EventBody::ChildStarted {
        cmd,
        child_run_id: child.into(),
        workflow: "steps".into(),
        input: json!({ "n": cmd }),
        detached,
    }
}

async fn children_of(store: &dyn Store, run_id: &str) -> Vec<String> {
    store
        .list_children(run_id)
        .await
        .unwrap_or_else(|e| panic!("list_children({run_id}) failed: {e}"))
        .into_iter()
        .map(|r| r.run_id)
        .collect()
}

/// A `ChildStarted` creates the child run (pending, its own namespace, `parent_run_id` set,
/// entry 1 `RunStarted`) in the same append; the same start appended again creates nothing.
pub async fn a_child_is_created_once_in_its_parents_append(store: &dyn Store) {
    create_run(store, "p", "fan_out", T0).await;
    let written = append(store, "p", vec![started(1, "p.c1", false)], T0 + 1).await;
    assert_eq!(bodies(&written), vec![started(1, "p.c1", false)]);
    let child = get_run(store, "p.c1").await;
    assert_eq!(child.status, RunStatus::Pending, "a new child is pending");
    assert_eq!(child.workflow, "steps");
    assert_eq!(child.input, json!({ "n": 1 }));
    assert_eq!(child.parent_run_id.as_deref(), Some("p"));
    assert_eq!(get_run(store, "p").await.parent_run_id, None);
    assert_eq!(
        bodies(&journal(store, "p.c1").await),
        vec![EventBody::RunStarted {
            workflow: "steps".into(),
            input: json!({ "n": 1 }),
            thread: None,
        }]
    );
    // Journaled again (a repeated write): still one child, its journal untouched.
    append(store, "p", vec![started(1, "p.c1", false)], T0 + 2).await;
    assert_eq!(children_of(store, "p").await, strings(&["p.c1"]));
    assert_eq!(journal(store, "p.c1").await.len(), 1);
    // A child is a main run: listed with the runs, and with no hook threads of its parent.
    assert!(store
        .list_threads("p")
        .await
        .expect("list_threads")
        .is_empty());
    assert!(
        needing_work(store, T0 + 3, 10)
            .await
            .contains(&"p.c1".to_owned()),
        "a pending child has work"
    );
}

/// The append that ends a child appends `ChildEnded` to its parent in the same transaction:
/// output for a completed child, the error for a failed or cancelled one. A parent that has
/// ended gets nothing (and the child's end is not refused).
pub async fn a_childs_end_is_delivered_to_its_parent_in_the_same_transaction(store: &dyn Store) {
    create_run(store, "p", "fan_out", T0).await;
    append(
        store,
        "p",
        vec![
            started(1, "p.c1", false),
            started(2, "p.c2", false),
            started(3, "p.c3", true),
        ],
        T0 + 1,
    )
    .await;
    assert_eq!(
        children_of(store, "p").await,
        strings(&["p.c1", "p.c2", "p.c3"])
    );
    let p_seq = get_run(store, "p").await.last_seq;
    append(
        store,
        "p.c2",
        vec![EventBody::RunCompleted {
            output: json!({ "steps": 3 }),
        }],
        T0 + 2,
    )
    .await;
    let after = journal_after(store, "p", p_seq).await;
    assert_eq!(
        bodies(&after),
        vec![EventBody::ChildEnded {
            child_cmd: 2,
            status: RunStatus::Completed,
            output: Some(json!({ "steps": 3 })),
            error: None,
        }],
        "the parent's journal must have the child's end, in the child's transaction"
    );
    assert_eq!(after[0].at_ms, T0 + 2);
    assert_eq!(get_run(store, "p").await.last_seq, p_seq + 1);
    // A failed child: its error.
    let error = ErrorInfo::new("card_declined", "no money");
    append(
        store,
        "p.c1",
        vec![EventBody::RunFailed {
            error: error.clone(),
        }],
        T0 + 3,
    )
    .await;
    let last = journal_after(store, "p", p_seq + 1).await;
    assert_eq!(
        bodies(&last),
        vec![EventBody::ChildEnded {
            child_cmd: 1,
            status: RunStatus::Failed,
            output: None,
            error: Some(error),
        }]
    );
    // The parent ends; a child ending afterwards delivers nothing and still ends.
    append(
        store,
        "p",
        vec![EventBody::RunCompleted { output: json!(1) }],
        T0 + 4,
    )
    .await;
    let p_last = get_run(store, "p").await.last_seq;
    append(
        store,
        "p.c3",
        vec![EventBody::RunCompleted { output: json!(3) }],
        T0 + 5,
    )
    .await;
    assert_eq!(get_run(store, "p").await.last_seq, p_last);
    assert_eq!(get_run(store, "p.c3").await.status, RunStatus::Completed);
}

/// A cancel request to a parent (`RequestCancel`) appends `CancelRequested` to each of its
/// unfinished children not started detached, and to theirs, in the same transaction;
/// finished and detached children get nothing.
pub async fn a_parents_cancel_reaches_attached_unfinished_children_only(store: &dyn Store) {
    create_run(store, "p", "fan_out", T0).await;
    append(
        store,
        "p",
        vec![
            started(1, "p.c1", false),
            started(2, "p.c2", true),
            started(3, "p.c3", false),
        ],
        T0 + 1,
    )
    .await;
    append(store, "p.c1", vec![started(1, "p.c1.c1", false)], T0 + 2).await;
    append(
        store,
        "p.c3",
        vec![EventBody::RunCompleted { output: json!(0) }],
        T0 + 3,
    )
    .await;
    let before_c2 = journal(store, "p.c2").await.len();
    let result = commit_one(
        store,
        WriteOp::RequestCancel {
            run_id: "p".into(),
            reason: Some("stop".into()),
            at_ms: T0 + 4,
        },
    )
    .await;
    assert!(
        matches!(result, Ok(OpOutcome::Appended { .. })),
        "RequestCancel: {result:?}"
    );
    let cancel = EventBody::CancelRequested {
        reason: Some("stop".into()),
    };
    for run in ["p", "p.c1", "p.c1.c1"] {
        let last = journal(store, run).await.pop().map(|e| e.body);
        assert_eq!(
            last.as_ref(),
            Some(&cancel),
            "{run} must have the cancel request"
        );
    }
    assert_eq!(
        journal(store, "p.c2").await.len(),
        before_c2,
        "a detached child is not cancelled with its parent"
    );
    assert!(
        !bodies(&journal(store, "p.c3").await).contains(&cancel),
        "a finished child gets nothing"
    );
}
