//! Conformance cases about the end of a run: completion, failure and cancellation (what each
//! writes and releases), and cancellation requests.

use serde_json::json;
use tether_core::event::{ErrorInfo, Event, EventBody, RunStatus};

use super::support::*;
use tether_store::{OpOutcome, OpRejected, Store, WakeAt, WriteOp};

/// `RunCompleted` sets status `completed` and the output, clears `wake_at`, releases every
/// hook of the run (and only of that run) and ignores the op's `status`; afterwards the run
/// takes no more entries (`RunFinished`) and refused ops register nothing.
pub async fn completion_sets_output_releases_hooks_and_ends_the_run(store: &dyn Store) {
    create_run(store, "r", "w", T0).await;
    create_run(store, "other", "w", T0).await;
    append(store, "other", vec![hook_created(1, "other-tok")], T0 + 1).await;
    let result = commit_one(
        store,
        WriteOp::Append {
            run_id: "r".into(),
            events: vec![
                hook_created(1, "tok-a"),
                hook_created(2, "tok-b"),
                EventBody::TimerStarted {
                    cmd: 3,
                    fire_at_ms: T0 + 100,
                },
            ],
            status: Some(RunStatus::Suspended),
            wake_at: WakeAt::Set(Some(T0 + 100)),
            fence: None,
            at_ms: T0 + 1,
        },
    )
    .await;
    appended(result, "Append hooks and timer");
    assert_eq!(tokens_of(store, "r").await, strings(&["tok-a", "tok-b"]));

    let output = json!({ "ok": true, "items": [1, 2, 3] });
    let result = commit_one(
        store,
        WriteOp::Append {
            run_id: "r".into(),
            events: vec![EventBody::RunCompleted {
                output: output.clone(),
            }],
            status: Some(RunStatus::Running),
            wake_at: WakeAt::Keep,
            fence: None,
            at_ms: T0 + 2,
        },
    )
    .await;
    let (_, written) = appended(result, "Append RunCompleted");
    assert_eq!(seqs(&written), vec![5]);

    let run = get_run(store, "r").await;
    assert_eq!(
        run.status,
        RunStatus::Completed,
        "RunCompleted sets status completed (the op's status is ignored)"
    );
    assert_eq!(run.output, Some(output), "RunCompleted sets the output");
    assert_eq!(run.error, None);
    assert_eq!(run.wake_at_ms, None, "a terminal entry clears wake_at");
    assert_eq!(run.last_seq, 5);
    assert_eq!(run.updated_at_ms, T0 + 2);
    assert!(
        hooks_of(store, "r").await.is_empty(),
        "a terminal entry releases every hook of the run"
    );
    assert_eq!(hook(store, "tok-a").await, None);
    assert_eq!(hook(store, "tok-b").await, None);
    assert_eq!(
        tokens_of(store, "other").await,
        strings(&["other-tok"]),
        "hooks of other runs are not released"
    );

    let finished = OpRejected::RunFinished {
        run_id: "r".into(),
        status: RunStatus::Completed,
    };
    let [more, late_hook, status_only, cancel] = commit_all(
        store,
        [
            append_op("r", vec![EventBody::Now { cmd: 4, ms: 1 }], T0 + 3),
            append_op("r", vec![hook_created(5, "tok-late")], T0 + 3),
            status_op("r", Some(RunStatus::Running), WakeAt::Set(Some(T0)), T0 + 3),
            WriteOp::RequestCancel {
                run_id: "r".into(),
                reason: None,
                at_ms: T0 + 3,
            },
        ],
    )
    .await;
    assert_eq!(rejected(more, "Append to a completed run"), finished);
    assert_eq!(
        rejected(late_hook, "Append HookCreated to a completed run"),
        finished
    );
    assert_eq!(
        rejected(status_only, "status-only Append to a completed run"),
        finished
    );
    assert_eq!(
        rejected(cancel, "RequestCancel of a completed run"),
        finished
    );
    assert_eq!(
        hook(store, "tok-late").await,
        None,
        "a refused Append registers no hook"
    );
    let run = get_run(store, "r").await;
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.last_seq, 5);
    assert_eq!(run.wake_at_ms, None);
    assert_eq!(
        run.updated_at_ms,
        T0 + 2,
        "refused ops must not touch the run"
    );
    assert_eq!(journal(store, "r").await.len(), 5);
    assert!(!needing_work(store, u64::MAX / 2, 100)
        .await
        .contains(&"r".to_owned()));
}

/// `RunFailed` sets status `failed` and its error; `RunCancelled` sets status `cancelled` and
/// the error `{code: "cancelled", message: reason or "run cancelled"}`. Both release hooks and
/// end the run.
pub async fn failure_and_cancellation_set_error(store: &dyn Store) {
    for id in ["failed", "cancelled", "cancelled-silently"] {
        create_run(store, id, "w", T0).await;
        append(
            store,
            id,
            vec![hook_created(1, &format!("{id}-tok"))],
            T0 + 1,
        )
        .await;
    }
    let error = ErrorInfo::new("step_failed", "boom");
    append(
        store,
        "failed",
        vec![EventBody::RunFailed {
            error: error.clone(),
        }],
        T0 + 2,
    )
    .await;
    append(
        store,
        "cancelled",
        vec![EventBody::RunCancelled {
            reason: Some("user asked".into()),
        }],
        T0 + 2,
    )
    .await;
    append(
        store,
        "cancelled-silently",
        vec![EventBody::RunCancelled { reason: None }],
        T0 + 2,
    )
    .await;

    let run = get_run(store, "failed").await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.error, Some(error), "RunFailed sets the error");
    assert_eq!(run.output, None);

    let run = get_run(store, "cancelled").await;
    assert_eq!(run.status, RunStatus::Cancelled);
    assert_eq!(
        run.error,
        Some(ErrorInfo::new("cancelled", "user asked")),
        "RunCancelled sets error code `cancelled` with the reason as message"
    );
    let run = get_run(store, "cancelled-silently").await;
    assert_eq!(run.status, RunStatus::Cancelled);
    assert_eq!(
        run.error,
        Some(ErrorInfo::new("cancelled", "run cancelled")),
        "RunCancelled without a reason sets message `run cancelled`"
    );

    for (id, status) in [
        ("failed", RunStatus::Failed),
        ("cancelled", RunStatus::Cancelled),
        ("cancelled-silently", RunStatus::Cancelled),
    ] {
        assert!(
            hooks_of(store, id).await.is_empty(),
            "{id}: hooks must be released"
        );
        assert_eq!(hook(store, &format!("{id}-tok")).await, None);
        let result = commit_one(
            store,
            append_op(id, vec![EventBody::TimerFired { cmd: 9 }], T0 + 3),
        )
        .await;
        assert_eq!(
            rejected(result, &format!("Append to {id}")),
            OpRejected::RunFinished {
                run_id: id.into(),
                status
            }
        );
        assert_eq!(journal(store, id).await.len(), 3);
    }
}

/// `RequestCancel` appends `CancelRequested { reason }` at the next seq and answers
/// `Appended`; it is refused with `RunFinished` once the run has ended.
pub async fn request_cancel_appends_cancel_requested(store: &dyn Store) {
    create_run(store, "r", "w", T0).await;
    set_status(store, "r", Some(RunStatus::Suspended), WakeAt::Keep, T0 + 1).await;
    let result = commit_one(
        store,
        WriteOp::RequestCancel {
            run_id: "r".into(),
            reason: Some("stop".into()),
            at_ms: T0 + 5,
        },
    )
    .await;
    let expected = Event {
        seq: 2,
        at_ms: T0 + 5,
        body: EventBody::CancelRequested {
            reason: Some("stop".into()),
        },
    };
    assert_eq!(
        result,
        Ok(OpOutcome::Appended {
            run_id: "r".into(),
            events: vec![expected.clone()],
        }),
        "RequestCancel answers Appended with the CancelRequested entry"
    );
    let result = commit_one(
        store,
        WriteOp::RequestCancel {
            run_id: "r".into(),
            reason: None,
            at_ms: T0 + 6,
        },
    )
    .await;
    let (_, written) = appended(result, "second RequestCancel");
    assert_eq!(seqs(&written), vec![3]);
    assert_eq!(
        bodies(&written),
        vec![EventBody::CancelRequested { reason: None }]
    );
    let run = get_run(store, "r").await;
    assert_eq!(run.last_seq, 3);
    assert_eq!(run.updated_at_ms, T0 + 6);
    assert!(
        !run.status.is_terminal(),
        "RequestCancel does not end the run by itself"
    );
    assert_eq!(journal(store, "r").await[1], expected);

    append(
        store,
        "r",
        vec![EventBody::RunCancelled {
            reason: Some("stop".into()),
        }],
        T0 + 7,
    )
    .await;
    let result = commit_one(
        store,
        WriteOp::RequestCancel {
            run_id: "r".into(),
            reason: None,
            at_ms: T0 + 8,
        },
    )
    .await;
    assert_eq!(
        rejected(result, "RequestCancel of a cancelled run"),
        OpRejected::RunFinished {
            run_id: "r".into(),
            status: RunStatus::Cancelled
        }
    );
    assert_eq!(journal(store, "r").await.len(), 4);
}
