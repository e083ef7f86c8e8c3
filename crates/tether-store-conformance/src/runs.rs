//! Conformance cases about runs: creation, listing, status and wake-up bookkeeping, the
//! selection of runs needing work, unknown runs and blocked runs.

use serde_json::json;
use tether_core::event::{ErrorInfo, Event, EventBody, RunStatus};

use super::support::*;
use tether_store::{
    OpOutcome, OpRejected, RunCursor, RunFilter, RunRecord, Store, WakeAt, WriteOp,
};

/// `CreateRun` makes a `pending` run whose journal entry 1 is `RunStarted`, visible through
/// `get_run`, `list_runs` and `load_journal`.
pub async fn create_run_then_read_it_back(store: &dyn Store) {
    let input = json!({ "name": "ada", "n": 3 });
    let result = commit_one(store, create_op("run-1", "greet", input.clone(), T0)).await;
    let (run_id, events) = appended(result, "CreateRun run-1");
    let started = Event {
        seq: 1,
        at_ms: T0,
        body: EventBody::RunStarted {
            workflow: "greet".into(),
            input: input.clone(),
            thread: None,
        },
    };
    assert_eq!(run_id, "run-1");
    assert_eq!(
        events,
        vec![started.clone()],
        "CreateRun must answer with the RunStarted entry at seq 1"
    );

    let expected = RunRecord {
        run_id: "run-1".into(),
        workflow: "greet".into(),
        status: RunStatus::Pending,
        input,
        output: None,
        error: None,
        created_at_ms: T0,
        updated_at_ms: T0,
        last_seq: 1,
        wake_at_ms: None,
        owner: None,
        parent_run_id: None,
        queue: tether_store::DEFAULT_QUEUE.into(),
    };
    assert_eq!(
        get_run(store, "run-1").await,
        expected,
        "get_run after CreateRun"
    );
    assert_eq!(
        journal(store, "run-1").await,
        vec![started],
        "journal entry 1 must be RunStarted"
    );
    let listed = store
        .list_runs(&RunFilter::default())
        .await
        .unwrap_or_else(|e| panic!("list_runs failed: {e}"));
    assert_eq!(listed, vec![expected], "list_runs after one CreateRun");
    assert!(
        !run_exists(store, "run-2").await,
        "get_run of an unknown id must be None"
    );
}

/// A second `CreateRun` with a taken id is refused with `RunExists` and changes nothing, in
/// separate batches and within one batch.
pub async fn duplicate_run_id_is_refused(store: &dyn Store) {
    create_run(store, "dup", "first", T0).await;
    let result = commit_one(store, create_op("dup", "second", json!(2), T0 + 5)).await;
    assert_eq!(
        rejected(result, "second CreateRun dup"),
        OpRejected::RunExists {
            run_id: "dup".into()
        }
    );
    let run = get_run(store, "dup").await;
    assert_eq!(
        run.workflow, "first",
        "a refused CreateRun must not touch the run"
    );
    assert_eq!(run.input, json!({ "run": "dup" }));
    assert_eq!(run.created_at_ms, T0);
    assert_eq!(run.updated_at_ms, T0);
    assert_eq!(run.last_seq, 1);
    assert_eq!(journal(store, "dup").await.len(), 1);

    let [first, second] = commit_all(
        store,
        [
            create_op("twice", "a", json!(1), T0 + 10),
            create_op("twice", "b", json!(2), T0 + 11),
        ],
    )
    .await;
    appended(first, "first CreateRun twice in one batch");
    assert_eq!(
        rejected(second, "second CreateRun twice in one batch"),
        OpRejected::RunExists {
            run_id: "twice".into()
        }
    );
    let run = get_run(store, "twice").await;
    assert_eq!(run.workflow, "a");
    assert_eq!(run.input, json!(1));
    assert_eq!(journal(store, "twice").await.len(), 1);
}

async fn list_ids(store: &dyn Store, filter: RunFilter) -> Vec<String> {
    match store.list_runs(&filter).await {
        Ok(runs) => runs.into_iter().map(|r| r.run_id).collect(),
        Err(e) => panic!("list_runs({filter:?}) failed: {e}"),
    }
}

/// `list_runs` filters by status and workflow, returns newest first and honours `limit`.
pub async fn list_runs_filters_newest_first_and_limits(store: &dyn Store) {
    // Created out of order on purpose: the order must come from created_at.
    commit(
        store,
        vec![
            create_op("r3", "a", json!(3), T0 + 3),
            create_op("r1", "a", json!(1), T0 + 1),
            create_op("r5", "b", json!(5), T0 + 5),
            create_op("r2", "b", json!(2), T0 + 2),
            create_op("r4", "a", json!(4), T0 + 4),
        ],
    )
    .await
    .into_iter()
    .for_each(|r| {
        appended(r, "CreateRun");
    });
    set_status(store, "r3", Some(RunStatus::Running), WakeAt::Keep, T0 + 10).await;
    set_status(store, "r5", Some(RunStatus::Running), WakeAt::Keep, T0 + 11).await;

    let f = |status: Option<RunStatus>, workflow: Option<&str>, limit: usize| RunFilter {
        status,
        workflow: workflow.map(str::to_owned),
        limit,
        before: None,
    };
    assert_eq!(
        list_ids(store, f(None, None, 0)).await,
        strings(&["r5", "r4", "r3", "r2", "r1"]),
        "list_runs without filter: all runs, newest (created_at) first"
    );
    assert_eq!(
        list_ids(store, f(Some(RunStatus::Running), None, 0)).await,
        strings(&["r5", "r3"]),
        "list_runs filtered by status running"
    );
    assert_eq!(
        list_ids(store, f(Some(RunStatus::Pending), None, 0)).await,
        strings(&["r4", "r2", "r1"]),
        "list_runs filtered by status pending"
    );
    assert_eq!(
        list_ids(store, f(None, Some("a"), 0)).await,
        strings(&["r4", "r3", "r1"]),
        "list_runs filtered by workflow a"
    );
    assert_eq!(
        list_ids(store, f(Some(RunStatus::Running), Some("a"), 0)).await,
        strings(&["r3"]),
        "list_runs filtered by status and workflow"
    );
    assert_eq!(
        list_ids(store, f(Some(RunStatus::Completed), None, 0)).await,
        Vec::<String>::new(),
        "list_runs with a status no run has"
    );
    assert_eq!(
        list_ids(store, f(None, Some("zzz"), 0)).await,
        Vec::<String>::new(),
        "list_runs with an unknown workflow"
    );
    assert_eq!(
        list_ids(store, f(None, None, 2)).await,
        strings(&["r5", "r4"]),
        "list_runs with limit 2: the two newest"
    );
    assert_eq!(
        list_ids(store, f(None, Some("a"), 1)).await,
        strings(&["r4"]),
        "list_runs with a filter and limit 1"
    );
}

/// `list_runs` with limit 0 returns 100 runs, and never more than 1,000.
pub async fn list_runs_default_limit_and_cap(store: &dyn Store) {
    let ops: Vec<WriteOp> = (1..=1001u64)
        .map(|i| create_op(&format!("run-{i:04}"), "bulk", json!(i), T0 + i))
        .collect();
    for (i, result) in commit(store, ops).await.into_iter().enumerate() {
        appended(result, &format!("bulk CreateRun #{i}"));
    }
    let all = |limit| RunFilter {
        limit,
        ..RunFilter::default()
    };

    let page = list_ids(store, all(0)).await;
    assert_eq!(page.len(), 100, "limit 0 must mean 100");
    assert_eq!(page.first().map(String::as_str), Some("run-1001"));
    assert_eq!(page.last().map(String::as_str), Some("run-0902"));

    let page = list_ids(store, all(5000)).await;
    assert_eq!(page.len(), 1000, "the limit must be capped at 1,000");
    assert_eq!(page.first().map(String::as_str), Some("run-1001"));
    assert_eq!(page.last().map(String::as_str), Some("run-0002"));

    assert_eq!(list_ids(store, all(1000)).await.len(), 1000);
    assert_eq!(list_ids(store, all(1)).await, strings(&["run-1001"]));

    // Pages follow each other with a cursor: every run exactly once, in order.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let filter = RunFilter {
            limit: 300,
            before: before.clone(),
            ..RunFilter::default()
        };
        let page = store
            .list_runs(&filter)
            .await
            .expect("list_runs with a cursor");
        let Some(last) = page.last() else { break };
        before = Some(RunCursor::of(last));
        seen.extend(page.into_iter().map(|r| r.run_id));
    }
    let expected: Vec<String> = (1..=1001u64).rev().map(|i| format!("run-{i:04}")).collect();
    assert_eq!(
        seen, expected,
        "paging with RunFilter::before must list every run once"
    );
}

/// Runs created in the same millisecond are ordered by id, and a cursor between them
/// resumes after the right one.
pub async fn list_runs_cursor_breaks_ties_by_id(store: &dyn Store) {
    let ops: Vec<WriteOp> = ["t-a", "t-b", "t-c"]
        .iter()
        .map(|id| create_op(id, "tie", json!(null), T0))
        .collect();
    for (i, result) in commit(store, ops).await.into_iter().enumerate() {
        appended(result, &format!("tie CreateRun #{i}"));
    }
    let filter = |before: Option<RunCursor>| RunFilter {
        workflow: Some("tie".into()),
        before,
        ..RunFilter::default()
    };
    assert_eq!(
        list_ids(store, filter(None)).await,
        strings(&["t-c", "t-b", "t-a"])
    );
    let cursor = RunCursor {
        created_at_ms: T0,
        run_id: "t-b".into(),
    };
    assert_eq!(
        list_ids(store, filter(Some(cursor))).await,
        strings(&["t-a"]),
        "a cursor at t-b must resume with the runs after it only"
    );
}

/// An `Append` without entries changes status and wake-up time (`WakeAt::Keep` keeps it,
/// `Set(None)` clears it) and stamps `updated_at`, without touching the journal.
pub async fn status_and_wake_at_updates(store: &dyn Store) {
    create_run(store, "r", "w", T0).await;

    set_status(store, "r", Some(RunStatus::Running), WakeAt::Keep, T0 + 10).await;
    let run = get_run(store, "r").await;
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(
        run.updated_at_ms,
        T0 + 10,
        "updated_at must be the op's at_ms"
    );
    assert_eq!(run.created_at_ms, T0, "created_at never changes");
    assert_eq!(run.last_seq, 1, "a status-only Append writes no entry");
    assert_eq!(run.wake_at_ms, None);

    let wake = T0 + 500;
    set_status(
        store,
        "r",
        Some(RunStatus::Suspended),
        WakeAt::Set(Some(wake)),
        T0 + 20,
    )
    .await;
    let run = get_run(store, "r").await;
    assert_eq!(run.status, RunStatus::Suspended);
    assert_eq!(
        run.wake_at_ms,
        Some(wake),
        "WakeAt::Set(Some) must set wake_at"
    );

    let timer = EventBody::TimerStarted {
        cmd: 1,
        fire_at_ms: wake,
    };
    append(store, "r", vec![timer], T0 + 30).await;
    let run = get_run(store, "r").await;
    assert_eq!(
        run.status,
        RunStatus::Suspended,
        "status None keeps the status"
    );
    assert_eq!(run.wake_at_ms, Some(wake), "WakeAt::Keep keeps wake_at");
    assert_eq!(run.last_seq, 2);
    assert_eq!(run.updated_at_ms, T0 + 30);

    set_status(
        store,
        "r",
        Some(RunStatus::Running),
        WakeAt::Set(None),
        T0 + 40,
    )
    .await;
    let run = get_run(store, "r").await;
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(run.wake_at_ms, None, "WakeAt::Set(None) must clear wake_at");
    assert_eq!(run.updated_at_ms, T0 + 40);
    assert_eq!(journal(store, "r").await.len(), 2);
}

/// `runs_needing_work` returns runs that are pending or running, or whose `wake_at` is due
/// (at or before `now`), never finished ones nor ones waking later, oldest first, at most
/// `limit`.
pub async fn runs_needing_work_selects_due_runs_oldest_first(store: &dyn Store) {
    let now = T0 + 1_000;
    // Created in scrambled order: the answer must be ordered by creation time.
    let ids = [
        ("due-early", 4),
        ("pending", 1),
        ("future", 6),
        ("idle", 3),
        ("running", 2),
        ("due-now", 5),
        ("completed", 7),
        ("failed", 8),
        ("cancelled", 9),
    ];
    let ops = ids
        .iter()
        .map(|(id, t)| create_op(id, "w", json!(null), T0 + t))
        .collect();
    for result in commit(store, ops).await {
        appended(result, "CreateRun");
    }
    let at = T0 + 100;
    let ops = vec![
        status_op("running", Some(RunStatus::Running), WakeAt::Keep, at),
        status_op("idle", Some(RunStatus::Suspended), WakeAt::Keep, at),
        status_op(
            "due-early",
            Some(RunStatus::Suspended),
            WakeAt::Set(Some(now - 1)),
            at,
        ),
        status_op(
            "due-now",
            Some(RunStatus::Suspended),
            WakeAt::Set(Some(now)),
            at,
        ),
        status_op(
            "future",
            Some(RunStatus::Suspended),
            WakeAt::Set(Some(now + 1)),
            at,
        ),
        status_op(
            "completed",
            Some(RunStatus::Suspended),
            WakeAt::Set(Some(now - 5)),
            at,
        ),
        append_op(
            "completed",
            vec![EventBody::RunCompleted { output: json!(1) }],
            at + 1,
        ),
        append_op(
            "failed",
            vec![EventBody::RunFailed {
                error: ErrorInfo::new("step_failed", "boom"),
            }],
            at,
        ),
        append_op(
            "cancelled",
            vec![EventBody::RunCancelled { reason: None }],
            at,
        ),
    ];
    for result in commit(store, ops).await {
        appended(result, "setting up runs");
    }
    // Every run has applied its journal: only status and timers decide.
    let ops = ids
        .iter()
        .map(|(id, _)| WriteOp::Checkpoint {
            run_id: id.to_string(),
            applied_seq: 1,
        })
        .collect();
    for result in commit(store, ops).await {
        assert!(result.is_ok(), "checkpoint refused: {result:?}");
    }

    assert_eq!(
        needing_work(store, now, 100).await,
        strings(&["pending", "running", "due-early", "due-now"]),
        "runs_needing_work: pending, running and due runs (wake_at <= now), oldest first"
    );
    assert_eq!(
        needing_work(store, now, 2).await,
        strings(&["pending", "running"]),
        "runs_needing_work honours limit, keeping the oldest"
    );
    assert_eq!(
        needing_work(store, now + 1, 100).await,
        strings(&["pending", "running", "due-early", "due-now", "future"]),
        "a wake_at equal to now is due"
    );
    assert_eq!(
        needing_work(store, T0, 100).await,
        strings(&["pending", "running"]),
        "before any wake_at, only pending and running runs"
    );
}

/// Ops naming an unknown run are refused with `RunNotFound` and create nothing.
pub async fn unknown_run_is_refused(store: &dyn Store) {
    let ghost = || "ghost".to_owned();
    let results = commit(
        store,
        vec![
            append_op("ghost", vec![EventBody::TimerFired { cmd: 1 }], T0),
            status_op("ghost", Some(RunStatus::Running), WakeAt::Keep, T0),
            WriteOp::RequestCancel {
                run_id: ghost(),
                reason: None,
                at_ms: T0,
            },
            WriteOp::MarkBlocked {
                run_id: ghost(),
                error: ErrorInfo::new("nondeterminism", "x"),
                fence: None,
                at_ms: T0,
            },
        ],
    )
    .await;
    for (i, result) in results.into_iter().enumerate() {
        assert_eq!(
            rejected(result, &format!("op #{i} on an unknown run")),
            OpRejected::RunNotFound { run_id: ghost() }
        );
    }
    assert!(
        !run_exists(store, "ghost").await,
        "a refused op must not create a run"
    );
    assert!(
        journal(store, "ghost").await.is_empty(),
        "load_journal of an unknown run must be empty"
    );
    assert!(hooks_of(store, "ghost").await.is_empty());
    let all = store
        .list_runs(&RunFilter::default())
        .await
        .unwrap_or_else(|e| panic!("list_runs failed: {e}"));
    assert!(all.is_empty(), "no run may exist, found {all:?}");
}

/// `MarkBlocked` records the error, keeps status and journal, and stamps `updated_at`.
pub async fn mark_blocked_sets_error_and_keeps_status(store: &dyn Store) {
    create_run(store, "r", "w", T0).await;
    set_status(store, "r", Some(RunStatus::Running), WakeAt::Keep, T0 + 1).await;
    let error = ErrorInfo::new("nondeterminism", "step 2 was `charge`, now `refund`");
    let result = commit_one(
        store,
        WriteOp::MarkBlocked {
            run_id: "r".into(),
            error: error.clone(),
            fence: None,
            at_ms: T0 + 2,
        },
    )
    .await;
    assert_eq!(
        result,
        Ok(OpOutcome::Updated),
        "MarkBlocked must answer Updated"
    );
    let run = get_run(store, "r").await;
    assert_eq!(run.error, Some(error), "MarkBlocked must record the error");
    assert_eq!(
        run.status,
        RunStatus::Running,
        "MarkBlocked must keep the status"
    );
    assert_eq!(run.last_seq, 1, "MarkBlocked must not append");
    assert_eq!(run.output, None);
    assert_eq!(run.updated_at_ms, T0 + 2);
    assert_eq!(journal(store, "r").await.len(), 1);
}
