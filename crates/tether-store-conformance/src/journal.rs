//! Conformance cases about journals: dense sequence numbers, reading after a position, ops
//! that see each other within a batch, every entry kind, and refusals that leave the rest of a
//! batch alone. The end of a run is in `endings.rs`.

use serde_json::json;
use tether_core::event::{ErrorInfo, EventBody, RunStatus};

use super::support::*;
use tether_store::{OpRejected, Store, WakeAt, WriteOp};

/// `Append` writes each entry at the next `seq` (dense, after `RunStarted` = 1), stamped with
/// the op's `at_ms`, answers with the entries as written and bumps `last_seq`.
pub async fn append_assigns_dense_seq_and_returns_events(store: &dyn Store) {
    create_run(store, "r", "w", T0).await;
    let first = vec![
        EventBody::Now { cmd: 1, ms: T0 + 1 },
        EventBody::Random { cmd: 2, value: 7 },
        EventBody::Uuid {
            cmd: 3,
            value: "00000000-0000-4000-8000-000000000000".into(),
        },
    ];
    let written = append(store, "r", first.clone(), T0 + 10).await;
    assert_eq!(
        seqs(&written),
        vec![2, 3, 4],
        "entries after RunStarted get seq 2, 3, 4"
    );
    assert!(
        written.iter().all(|e| e.at_ms == T0 + 10),
        "every entry is stamped with the op's at_ms: {written:?}"
    );
    assert_eq!(bodies(&written), first, "entries are written as given");
    let run = get_run(store, "r").await;
    assert_eq!(run.last_seq, 4);
    assert_eq!(run.updated_at_ms, T0 + 10);

    let second = vec![
        EventBody::TimerStarted {
            cmd: 4,
            fire_at_ms: T0 + 60_000,
        },
        EventBody::TimerFired { cmd: 4 },
    ];
    let written2 = append(store, "r", second.clone(), T0 + 20).await;
    assert_eq!(
        seqs(&written2),
        vec![5, 6],
        "seq continues densely across commits"
    );
    assert_eq!(get_run(store, "r").await.last_seq, 6);

    let all = journal(store, "r").await;
    assert_eq!(
        seqs(&all),
        vec![1, 2, 3, 4, 5, 6],
        "the journal is dense and ordered"
    );
    let mut expected = vec![all[0].clone()];
    expected.extend(written);
    expected.extend(written2);
    assert_eq!(all, expected, "load_journal returns the entries as written");

    let empty = append(store, "r", Vec::new(), T0 + 30).await;
    assert!(empty.is_empty());
    assert_eq!(
        get_run(store, "r").await.last_seq,
        6,
        "an empty Append writes nothing"
    );
}

/// `load_journal(run, after_seq)` returns only the entries with `seq > after_seq`, in order,
/// and nothing from other runs.
pub async fn load_journal_after_seq(store: &dyn Store) {
    create_run(store, "a", "w", T0).await;
    create_run(store, "b", "w", T0).await;
    let timers: Vec<EventBody> = (1..=5).map(|cmd| EventBody::TimerFired { cmd }).collect();
    append(store, "a", timers.clone(), T0 + 1).await;
    append(store, "b", vec![EventBody::TimerFired { cmd: 99 }], T0 + 1).await;

    let all = journal(store, "a").await;
    assert_eq!(seqs(&all), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(
        journal_after(store, "a", 0).await,
        all,
        "after_seq 0 returns the whole journal"
    );
    let tail = journal_after(store, "a", 3).await;
    assert_eq!(seqs(&tail), vec![4, 5, 6], "after_seq 3 returns seq 4..");
    assert_eq!(tail, all[3..].to_vec());
    assert!(
        journal_after(store, "a", 6).await.is_empty(),
        "after the last seq there is nothing"
    );
    assert!(journal_after(store, "a", 1_000).await.is_empty());
    assert_eq!(
        bodies(&journal_after(store, "b", 1).await),
        vec![EventBody::TimerFired { cmd: 99 }],
        "journals of different runs are separate"
    );
}

/// `load_run` reads a run and its whole journal together: the same as `get_run` and then
/// `load_journal` from 0, and `None` for a run that does not exist.
pub async fn load_run_reads_the_run_and_its_journal(store: &dyn Store) {
    create_run(store, "a", "w", T0).await;
    create_run(store, "b", "w", T0).await;
    let timers: Vec<EventBody> = (1..=3).map(|cmd| EventBody::TimerFired { cmd }).collect();
    append(store, "a", timers, T0 + 1).await;

    let (run, all) = store
        .load_run("a")
        .await
        .expect("load_run")
        .expect("run a exists");
    assert_eq!(run, get_run(store, "a").await);
    assert_eq!(all, journal(store, "a").await);
    assert_eq!(seqs(&all), vec![1, 2, 3, 4]);
    let (_, other) = store.load_run("b").await.expect("load_run").expect("b");
    assert_eq!(
        seqs(&other),
        vec![1],
        "journals of different runs are separate"
    );
    assert!(store.load_run("nope").await.expect("load_run").is_none());
}

/// Ops in one batch are applied in order and each sees the effects of the ones before it.
pub async fn ops_in_one_batch_see_each_other(store: &dyn Store) {
    let [created, first, second, status] = commit_all(
        store,
        [
            create_op("r", "w", json!({}), T0),
            append_op("r", vec![EventBody::Now { cmd: 1, ms: 5 }], T0 + 1),
            append_op(
                "r",
                vec![
                    EventBody::Random { cmd: 2, value: 1 },
                    EventBody::Random { cmd: 3, value: 2 },
                ],
                T0 + 2,
            ),
            status_op("r", Some(RunStatus::Running), WakeAt::Keep, T0 + 3),
        ],
    )
    .await;
    assert_eq!(seqs(&appended(created, "CreateRun").1), vec![1]);
    assert_eq!(seqs(&appended(first, "first Append").1), vec![2]);
    assert_eq!(seqs(&appended(second, "second Append").1), vec![3, 4]);
    assert!(appended(status, "status-only Append").1.is_empty());
    let run = get_run(store, "r").await;
    assert_eq!(run.last_seq, 4);
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(run.updated_at_ms, T0 + 3);

    let [hooked, resume] = commit_all(
        store,
        [
            append_op("r", vec![hook_created(4, "tok")], T0 + 4),
            resume_op("tok", json!("hi"), None, T0 + 5),
        ],
    )
    .await;
    assert_eq!(seqs(&appended(hooked, "Append HookCreated").1), vec![5]);
    let (run_id, event) = resumed(resume, "Resume of a hook created earlier in the batch");
    assert_eq!(run_id, "r");
    assert_eq!(event.map(|e| e.seq), Some(6));
    assert_eq!(seqs(&journal(store, "r").await), vec![1, 2, 3, 4, 5, 6]);
}

/// Every kind of entry comes back from the journal exactly as it was written, JSON included.
pub async fn every_event_kind_round_trips(store: &dyn Store) {
    let input = json!({
        "text": "héllo ✓ \"quoted\"\n\ttab",
        "n": -42,
        "big": u64::MAX,
        "f": 1.5,
        "nested": { "a": [1, null, true, { "b": [] }] },
        "empty": {}
    });
    let result = commit_one(store, create_op("r", "kinds", input.clone(), T0)).await;
    appended(result, "CreateRun");
    let entries = vec![
        EventBody::StepCompleted {
            cmd: 1,
            name: "fetch".into(),
            output: input.clone(),
            attempts: 3,
        },
        EventBody::StepFailed {
            cmd: 2,
            name: "charge".into(),
            error: ErrorInfo::new("step_failed", "card declined: «insufficient»"),
            attempts: 5,
        },
        EventBody::TimerStarted {
            cmd: 3,
            fire_at_ms: T0 + 86_400_000,
        },
        EventBody::TimerFired { cmd: 3 },
        EventBody::HookCreated {
            cmd: 4,
            token: "approve/42".into(),
            kind: "hook".into(),
            metadata: json!({ "title": "Approve?", "amount": 12.5, "tags": ["a", "b"] }),
            definition: Some("approval".into()),
            generated: true,
            expires_at_ms: Some(T0 + 3_600_000),
            reserve_ms: Some(86_400_000),
        },
        EventBody::HookReceived {
            hook_cmd: 4,
            payload: json!({ "approved": true, "by": null }),
        },
        EventBody::HookDisposed {
            cmd: 5,
            hook_cmd: 4,
            token: "approve/42".into(),
        },
        EventBody::HookConflict {
            cmd: 6,
            token: "someone-elses".into(),
            holder_run: "other-run".into(),
        },
        EventBody::HookExpired {
            hook_cmd: 4,
            token: "approve/42".into(),
        },
        EventBody::Now { cmd: 7, ms: T0 + 7 },
        EventBody::Random {
            cmd: 8,
            value: u64::MAX,
        },
        EventBody::Uuid {
            cmd: 9,
            value: "0190c1a2-7b3e-7c4d-8e5f-0123456789ab".into(),
        },
        EventBody::ChildEnded {
            child_cmd: 3,
            status: RunStatus::Failed,
            output: None,
            error: Some(ErrorInfo::new("card_declined", "no money")),
        },
        EventBody::CancelRequested { reason: None },
        EventBody::CancelRequested {
            reason: Some("operator: \"stop\"".into()),
        },
        EventBody::RunCompleted {
            output: json!([input, "done"]),
        },
    ];
    let written = append(store, "r", entries.clone(), T0 + 1).await;
    assert_eq!(
        bodies(&written),
        entries,
        "entries must be written as given"
    );
    let all = journal(store, "r").await;
    assert_eq!(
        all[0].body,
        EventBody::RunStarted {
            workflow: "kinds".into(),
            input: input.clone(),
            thread: None,
        },
        "RunStarted must keep the input exactly"
    );
    assert_eq!(
        all[1..].to_vec(),
        written,
        "every entry must round-trip exactly"
    );
    assert_eq!(
        get_run(store, "r").await.input,
        input,
        "the run keeps its input exactly"
    );
}

/// A refused op writes nothing, and the ops around it in the same batch still apply.
pub async fn refused_op_does_not_stop_the_batch(store: &dyn Store) {
    let [created, ghost_append, now, duplicate, bad_resume, cancel, ghost_block, hooked] =
        commit_all(
            store,
            [
                create_op("a", "w", json!(1), T0),
                append_op("ghost", vec![hook_created(1, "ghost-tok")], T0),
                append_op("a", vec![EventBody::Now { cmd: 1, ms: 1 }], T0 + 1),
                create_op("a", "other", json!(2), T0 + 2),
                resume_op("nope", json!(null), Some("k"), T0 + 3),
                WriteOp::RequestCancel {
                    run_id: "a".into(),
                    reason: Some("why not".into()),
                    at_ms: T0 + 4,
                },
                WriteOp::MarkBlocked {
                    run_id: "ghost".into(),
                    error: ErrorInfo::new("nondeterminism", "x"),
                    fence: None,
                    at_ms: T0 + 5,
                },
                append_op("a", vec![hook_created(2, "tok")], T0 + 6),
            ],
        )
        .await;
    appended(created, "CreateRun a");
    assert_eq!(
        rejected(ghost_append, "Append to ghost"),
        OpRejected::RunNotFound {
            run_id: "ghost".into()
        }
    );
    assert_eq!(seqs(&appended(now, "Append Now to a").1), vec![2]);
    assert_eq!(
        rejected(duplicate, "second CreateRun a"),
        OpRejected::RunExists { run_id: "a".into() }
    );
    assert_eq!(
        rejected(bad_resume, "Resume of unknown token"),
        OpRejected::HookNotFound {
            token: "nope".into()
        }
    );
    assert_eq!(seqs(&appended(cancel, "RequestCancel a").1), vec![3]);
    assert_eq!(
        rejected(ghost_block, "MarkBlocked ghost"),
        OpRejected::RunNotFound {
            run_id: "ghost".into()
        }
    );
    assert_eq!(
        seqs(&appended(hooked, "Append HookCreated to a").1),
        vec![4]
    );

    let journal_a = journal(store, "a").await;
    assert_eq!(seqs(&journal_a), vec![1, 2, 3, 4]);
    assert_eq!(
        journal_a[2].body,
        EventBody::CancelRequested {
            reason: Some("why not".into())
        }
    );
    let run = get_run(store, "a").await;
    assert_eq!(run.workflow, "w");
    assert_eq!(run.last_seq, 4);
    assert_eq!(
        run.error, None,
        "the refused MarkBlocked must not touch other runs"
    );
    assert!(!run_exists(store, "ghost").await);
    assert_eq!(
        hook(store, "ghost-tok").await,
        None,
        "a refused Append registers no hook"
    );
    assert_eq!(hook(store, "tok").await.map(|h| h.run_id), Some("a".into()));
}
