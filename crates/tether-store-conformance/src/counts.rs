//! Conformance cases about [`Store::count_runs`], the per-workflow, per-status run counts a
//! metrics scrape reads.

use serde_json::json;
use tether_core::event::{EventBody, RunStatus};
use tether_core::RetryPolicy;

use super::support::*;
use tether_store::{RunCount, Store, WakeAt, WriteOp};

/// The counts, panicking on a backend error.
async fn counts(store: &dyn Store) -> Vec<RunCount> {
    store
        .count_runs()
        .await
        .unwrap_or_else(|e| panic!("count_runs failed: {e}"))
}

fn count(workflow: &str, status: RunStatus, count: u64) -> RunCount {
    RunCount {
        workflow: workflow.into(),
        status,
        count,
    }
}

/// `count_runs` groups every run (hook threads included) by workflow and status, ordered by
/// workflow then status name, and follows status changes and endings.
pub async fn count_runs_groups_by_workflow_and_status(store: &dyn Store) {
    assert_eq!(counts(store).await, vec![], "an empty store counts nothing");

    create_run(store, "a1", "alpha", T0).await;
    create_run(store, "a2", "alpha", T0 + 1).await;
    create_run(store, "a3", "alpha", T0 + 2).await;
    create_run(store, "b1", "beta", T0 + 3).await;
    set_status(
        store,
        "a2",
        Some(RunStatus::Suspended),
        WakeAt::Keep,
        T0 + 4,
    )
    .await;
    append(
        store,
        "a3",
        vec![EventBody::RunCompleted { output: json!(3) }],
        T0 + 5,
    )
    .await;
    let spawn = WriteOp::SpawnHook {
        queue: tether_store::DEFAULT_QUEUE.into(),
        run_id: "b1".into(),
        hook_id: "b1.t1".into(),
        workflow: "beta_thread".into(),
        args: json!({}),
        retry: RetryPolicy::default(),
        at_ms: T0 + 6,
    };
    appended(commit_one(store, spawn).await, "SpawnHook b1.t1");

    assert_eq!(
        counts(store).await,
        vec![
            count("alpha", RunStatus::Completed, 1),
            count("alpha", RunStatus::Pending, 1),
            count("alpha", RunStatus::Suspended, 1),
            count("beta", RunStatus::Pending, 1),
            count("beta_thread", RunStatus::Pending, 1),
        ],
        "count_runs after creating, suspending, completing and spawning"
    );

    append(
        store,
        "a1",
        vec![EventBody::RunCompleted { output: json!(1) }],
        T0 + 7,
    )
    .await;
    assert_eq!(
        counts(store).await,
        vec![
            count("alpha", RunStatus::Completed, 2),
            count("alpha", RunStatus::Suspended, 1),
            count("beta", RunStatus::Pending, 1),
            count("beta_thread", RunStatus::Pending, 1),
        ],
        "a status with no run left is not listed"
    );
}
