//! Conformance cases about checkpoints: the mark of how much of a run's journal its live
//! writer has applied, which decides whether a run needs work after a crash.

use serde_json::json;
use tether_core::event::{EventBody, RunStatus};

use super::support::*;
use tether_store::{OpOutcome, OpRejected, Store, WakeAt, WriteOp};

/// A run with journal entries past its checkpoint needs work (a payload accepted just before a
/// crash must not wait for the next one); the mark never goes down; finished runs never need
/// work; an unknown run is refused.
pub async fn checkpoint_marks_the_applied_journal(store: &dyn Store) {
    let now = T0 + 1_000;
    appended(
        commit(store, vec![create_op("r", "w", json!(null), T0)])
            .await
            .remove(0),
        "CreateRun",
    );
    let cp = |seq: u64| WriteOp::Checkpoint {
        run_id: "r".into(),
        applied_seq: seq,
    };
    let r = commit(
        store,
        vec![
            status_op("r", Some(RunStatus::Suspended), WakeAt::Keep, T0 + 1),
            cp(1),
        ],
    )
    .await;
    assert!(r.iter().all(|x| x.is_ok()), "{r:?}");
    assert!(
        needing_work(store, now, 10).await.is_empty(),
        "a suspended run that applied its whole journal needs no work"
    );
    appended(
        commit(
            store,
            vec![append_op(
                "r",
                vec![EventBody::TimerFired { cmd: 9 }],
                T0 + 2,
            )],
        )
        .await
        .remove(0),
        "append",
    );
    assert_eq!(
        needing_work(store, now, 10).await,
        strings(&["r"]),
        "an entry past the checkpoint means work"
    );
    let r = commit(store, vec![cp(2), cp(1)]).await;
    assert_eq!(r, vec![Ok(OpOutcome::Updated), Ok(OpOutcome::Updated)]);
    assert!(
        needing_work(store, now, 10).await.is_empty(),
        "checkpoint 2 covers the journal, and a lower mark does not undo it"
    );
    appended(
        commit(
            store,
            vec![append_op(
                "r",
                vec![EventBody::RunCompleted { output: json!(1) }],
                T0 + 3,
            )],
        )
        .await
        .remove(0),
        "complete",
    );
    assert!(
        needing_work(store, now, 10).await.is_empty(),
        "finished runs never need work"
    );
    assert_eq!(
        commit(store, vec![cp(3)]).await,
        vec![Ok(OpOutcome::Updated)]
    );
    assert_eq!(
        commit(
            store,
            vec![WriteOp::Checkpoint {
                run_id: "ghost".into(),
                applied_seq: 1
            }]
        )
        .await,
        vec![Err(OpRejected::RunNotFound {
            run_id: "ghost".into()
        })]
    );
}
