//! Task queues: a node never gets a run of a queue it does not serve (neither from
//! `runs_needing_work` nor by a claim), a run's first claim admits it under its queue's
//! limits (concurrency, rate), counted in the claim's transaction, and the runs waiting for
//! admission are counted per queue.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::json;
use tether_core::event::{EventBody, RunStatus};
use tether_core::RetryPolicy;

use super::support::*;
use tether_store::{
    OpOutcome, OpRejected, OpResult, QueueDepth, QueueLimit, QueuePolicy, QueueRate, Store, WakeAt,
    WriteOp,
};

fn create_on(run_id: &str, queue: &str, at_ms: u64) -> WriteOp {
    WriteOp::CreateRun {
        run_id: run_id.into(),
        workflow: "w".into(),
        input: json!({ "run": run_id }),
        at_ms,
        claim: None,
        queue: queue.into(),
    }
}

fn serving(queues: &[&str]) -> Arc<QueuePolicy> {
    Arc::new(QueuePolicy {
        serves: Some(
            queues
                .iter()
                .map(|q| (*q).to_owned())
                .collect::<BTreeSet<_>>(),
        ),
        limits: BTreeMap::new(),
    })
}

fn limited(queue: &str, limit: QueueLimit) -> Arc<QueuePolicy> {
    Arc::new(QueuePolicy {
        serves: None,
        limits: BTreeMap::from([(queue.to_owned(), limit)]),
    })
}

fn claim_op(run_id: &str, node: &str, now_ms: u64, queues: &Arc<QueuePolicy>) -> WriteOp {
    WriteOp::Claim {
        run_id: run_id.into(),
        node: node.into(),
        lease_until_ms: now_ms + 10_000,
        now_ms,
        queues: Arc::clone(queues),
    }
}

async fn claim(
    store: &dyn Store,
    run_id: &str,
    node: &str,
    now: u64,
    q: &Arc<QueuePolicy>,
) -> OpResult {
    commit_one(store, claim_op(run_id, node, now, q)).await
}

#[track_caller]
fn claimed(result: OpResult, what: &str) {
    assert!(
        matches!(result, Ok(OpOutcome::Claimed { .. })),
        "{what}: expected Claimed, got {result:?}"
    );
}

async fn needing(store: &dyn Store, queues: Option<&[String]>) -> Vec<String> {
    match store.runs_needing_work(T0 + 5_000, NODE, queues, 100).await {
        Ok(ids) => ids,
        Err(e) => panic!("runs_needing_work with queues {queues:?} failed: {e}"),
    }
}

async fn depths(store: &dyn Store) -> Vec<(String, u64)> {
    match store.queue_depths().await {
        Ok(d) => d
            .into_iter()
            .map(|QueueDepth { queue, waiting }| (queue, waiting))
            .collect(),
        Err(e) => panic!("queue_depths failed: {e}"),
    }
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// A run is on the queue it was created on (`default` unless another was named); a node
/// gets from `runs_needing_work` only the runs of the queues it serves, and a claim by a node
/// not serving the run's queue is refused with `NotServed`, writing nothing. Unadmitted runs
/// are counted per queue.
pub async fn a_node_never_gets_runs_of_a_queue_it_does_not_serve(store: &dyn Store) {
    let created = commit(
        store,
        vec![
            create_on("a1", "a", T0),
            create_on("b1", "b", T0 + 1),
            create_on("d1", tether_store::DEFAULT_QUEUE, T0 + 2),
        ],
    )
    .await;
    assert!(created.iter().all(Result::is_ok), "creates: {created:?}");
    assert_eq!(
        get_run(store, "b1").await.queue,
        "b",
        "a run keeps its queue"
    );
    assert_eq!(get_run(store, "d1").await.queue, "default");
    assert_eq!(needing(store, None).await, names(&["a1", "b1", "d1"]));
    assert_eq!(
        needing(store, Some(&names(&["a"]))).await,
        names(&["a1"]),
        "a node serving only `a` gets only its runs"
    );
    assert_eq!(
        needing(store, Some(&names(&["b", "default"]))).await,
        names(&["b1", "d1"])
    );
    assert!(
        needing(store, Some(&[])).await.is_empty(),
        "no queue, no runs"
    );
    assert_eq!(
        depths(store).await,
        vec![("a".into(), 1), ("b".into(), 1), ("default".into(), 1)],
        "every run waits for its first claim"
    );

    assert_eq!(
        claim(store, "b1", "node-a", T0 + 10, &serving(&["a"])).await,
        Err(OpRejected::NotServed {
            run_id: "b1".into(),
            queue: "b".into()
        }),
        "a node not serving `b` is refused a run of `b`"
    );
    let run = get_run(store, "b1").await;
    assert_eq!(
        (run.status, run.owner),
        (RunStatus::Pending, None),
        "refused: nothing written"
    );
    claimed(
        claim(store, "b1", "node-b", T0 + 11, &serving(&["b"])).await,
        "a node serving `b`",
    );
    assert_eq!(get_run(store, "b1").await.owner.as_deref(), Some("node-b"));
    assert_eq!(
        depths(store).await,
        vec![("a".into(), 1), ("default".into(), 1)],
        "an admitted run no longer waits"
    );
}

/// With a concurrency limit of 2, the third admission is refused with `QueueFull` until one
/// of the admitted runs ends; an admitted run keeps its slot while suspended and is claimed
/// again (a take-over, a restart) without counting twice; two claims in one batch see each
/// other.
pub async fn a_concurrency_limit_refuses_admissions_until_a_run_ends(store: &dyn Store) {
    let q = limited(
        "q",
        QueueLimit {
            concurrency: Some(2),
            rate: None,
        },
    );
    for (i, id) in ["r1", "r2", "r3", "r4"].iter().enumerate() {
        commit_one(store, create_on(id, "q", T0 + i as u64))
            .await
            .unwrap_or_else(|e| panic!("create {id}: {e}"));
    }
    claimed(
        claim(store, "r1", "n1", T0 + 10, &q).await,
        "first admission",
    );
    claimed(
        claim(store, "r2", "n2", T0 + 11, &q).await,
        "second admission",
    );
    let suspend = status_op("r2", Some(RunStatus::Suspended), WakeAt::Keep, T0 + 12);
    commit_one(store, suspend)
        .await
        .unwrap_or_else(|e| panic!("suspend r2: {e}"));
    assert_eq!(
        claim(store, "r3", "n1", T0 + 13, &q).await,
        Err(OpRejected::QueueFull {
            run_id: "r3".into(),
            queue: "q".into(),
            limit: 2
        }),
        "a third admission is refused (a suspended run keeps its slot)"
    );
    assert!(
        get_run(store, "r3").await.owner.is_none(),
        "refused: nothing written"
    );
    claimed(
        claim(store, "r2", "n1", T0 + 20_000, &q).await,
        "an admitted run is claimed again (lease lapsed) without a new slot",
    );
    append(
        store,
        "r1",
        vec![EventBody::RunCompleted { output: json!(1) }],
        T0 + 20_001,
    )
    .await;
    let [third, fourth] = commit_all(
        store,
        [
            claim_op("r3", "n1", T0 + 20_002, &q),
            claim_op("r4", "n1", T0 + 20_002, &q),
        ],
    )
    .await;
    claimed(third, "an ended run frees its slot");
    assert!(
        matches!(fourth, Err(OpRejected::QueueFull { .. })),
        "the next claim in the same batch sees the slot taken: {fourth:?}"
    );
    let other = limited("elsewhere", QueueLimit::default());
    assert!(
        claim(store, "r4", "n1", T0 + 20_003, &other).await.is_ok(),
        "limits are the claiming node's: without a limit on `q`, it admits"
    );
}

/// A rate limit of 2 per second refuses a third admission within a second of the first
/// two (`QueueRate`) and admits again once the first one is older than the period.
pub async fn a_rate_limit_counts_admissions_in_the_last_period(store: &dyn Store) {
    let q = limited(
        "q",
        QueueLimit {
            concurrency: None,
            rate: Some(QueueRate {
                count: 2,
                per_ms: 1_000,
            }),
        },
    );
    for (i, id) in ["r1", "r2", "r3"].iter().enumerate() {
        commit_one(store, create_on(id, "q", T0 + i as u64))
            .await
            .unwrap_or_else(|e| panic!("create {id}: {e}"));
    }
    claimed(claim(store, "r1", "n", T0 + 10, &q).await, "first");
    claimed(claim(store, "r2", "n", T0 + 500, &q).await, "second");
    assert_eq!(
        claim(store, "r3", "n", T0 + 1_009, &q).await,
        Err(OpRejected::QueueRate {
            run_id: "r3".into(),
            queue: "q".into()
        }),
        "two admissions in the last second"
    );
    claimed(
        claim(store, "r3", "n", T0 + 1_010, &q).await,
        "the first admission is a period old",
    );
}

/// A hook thread spawned on a task queue is a run of that queue.
pub async fn a_thread_is_on_its_spawns_task_queue(store: &dyn Store) {
    create_run(store, "r", "w", T0).await;
    let op = WriteOp::SpawnHook {
        run_id: "r".into(),
        hook_id: "r.x1".into(),
        workflow: "hook_fn".into(),
        args: json!({}),
        retry: RetryPolicy::default(),
        queue: "b".into(),
        at_ms: T0 + 1,
    };
    appended(commit_one(store, op).await, "SpawnHook");
    assert_eq!(get_run(store, "r.x1").await.queue, "b");
    assert_eq!(
        claim(store, "r.x1", "n", T0 + 2, &serving(&["a"])).await,
        Err(OpRejected::NotServed {
            run_id: "r.x1".into(),
            queue: "b".into()
        })
    );
}
