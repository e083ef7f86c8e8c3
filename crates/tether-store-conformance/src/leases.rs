//! Leases and fencing: how several nodes sharing one store take runs, keep them, lose them,
//! and are stopped from writing for a run they lost.

use serde_json::json;
use tether_core::event::{ErrorInfo, EventBody, RunStatus};

use super::support::*;
use tether_store::{Fence, OpOutcome, OpRejected, OpResult, Store, WakeAt, WriteOp};

fn claim_op(run_id: &str, node: &str, lease_until_ms: u64, now_ms: u64) -> WriteOp {
    WriteOp::Claim {
        queues: Default::default(),
        run_id: run_id.into(),
        node: node.into(),
        lease_until_ms,
        now_ms,
    }
}

fn fence(node: &str, epoch: u64) -> Fence {
    Fence {
        node: node.into(),
        epoch,
    }
}

fn fenced_append(run_id: &str, f: Fence, at_ms: u64) -> WriteOp {
    WriteOp::Append {
        run_id: run_id.into(),
        events: vec![EventBody::TimerFired { cmd: 1 }],
        status: None,
        wake_at: WakeAt::Keep,
        fence: Some(f),
        at_ms,
    }
}

async fn claim(store: &dyn Store, run_id: &str, node: &str, until: u64, now: u64) -> u64 {
    match commit_one(store, claim_op(run_id, node, until, now)).await {
        Ok(OpOutcome::Claimed { epoch }) => epoch,
        other => panic!("claim of {run_id} by {node} at {now}: expected Claimed, got {other:?}"),
    }
}

/// A claim takes a free run and returns an epoch; every new claim (even by the same node)
/// increments it and fences off writes carrying an older one, which then write nothing.
pub async fn claims_fence_off_older_claims(store: &dyn Store) {
    create_run(store, "r", "w", T0).await;
    let e1 = claim(store, "r", "a", T0 + 100, T0).await;
    assert_eq!(get_run(store, "r").await.owner.as_deref(), Some("a"));
    appended(
        commit_one(store, fenced_append("r", fence("a", e1), T0 + 1)).await,
        "append with the current fence",
    );
    let e2 = claim(store, "r", "a", T0 + 200, T0 + 2).await;
    assert!(e2 > e1, "a new claim must raise the epoch ({e1} -> {e2})");
    assert_eq!(
        commit_one(store, fenced_append("r", fence("a", e1), T0 + 3)).await,
        Err(OpRejected::Fenced { run_id: "r".into() }),
        "a write with the old epoch is fenced off"
    );
    assert_eq!(
        journal(store, "r").await.len(),
        2,
        "a fenced write writes nothing"
    );
    appended(
        commit_one(store, fenced_append("r", fence("a", e2), T0 + 4)).await,
        "append with the new fence",
    );
    assert_eq!(
        commit_one(store, fenced_append("r", fence("b", e2), T0 + 5)).await,
        Err(OpRejected::Fenced { run_id: "r".into() }),
        "another node's fence is refused"
    );
    let blocked = WriteOp::MarkBlocked {
        run_id: "r".into(),
        error: ErrorInfo::new("nondeterminism", "x"),
        fence: Some(fence("a", e1)),
        at_ms: T0 + 6,
    };
    assert_eq!(
        commit_one(store, blocked).await,
        Err(OpRejected::Fenced { run_id: "r".into() })
    );
    assert_eq!(get_run(store, "r").await.error, None);
}

/// Another node cannot take a run while its lease lives, and can once it has ended; the old
/// owner is then fenced off.
pub async fn live_leases_are_respected_and_expired_ones_taken_over(store: &dyn Store) {
    create_run(store, "r", "w", T0).await;
    let ea = claim(store, "r", "a", T0 + 100, T0).await;
    assert_eq!(
        commit_one(store, claim_op("r", "b", T0 + 150, T0 + 50)).await,
        Err(OpRejected::Owned {
            run_id: "r".into(),
            owner: "a".into()
        }),
        "b may not take a run a holds"
    );
    let eb = claim(store, "r", "b", T0 + 300, T0 + 101).await;
    assert!(eb > ea);
    assert_eq!(get_run(store, "r").await.owner.as_deref(), Some("b"));
    assert_eq!(
        commit_one(store, fenced_append("r", fence("a", ea), T0 + 102)).await,
        Err(OpRejected::Fenced { run_id: "r".into() }),
        "the node that lost its lease cannot commit for the run"
    );
}

/// A release frees the run only with the matching fence.
pub async fn release_needs_the_current_fence(store: &dyn Store) {
    create_run(store, "r", "w", T0).await;
    let e = claim(store, "r", "a", T0 + 10_000, T0).await;
    let release = |f: Fence| WriteOp::Release {
        run_id: "r".into(),
        fence: f,
    };
    assert_eq!(
        commit_one(store, release(fence("a", e + 7))).await,
        Ok(OpOutcome::Updated)
    );
    assert_eq!(
        get_run(store, "r").await.owner.as_deref(),
        Some("a"),
        "a stale release changes nothing"
    );
    assert_eq!(
        commit_one(store, release(fence("a", e))).await,
        Ok(OpOutcome::Updated)
    );
    assert_eq!(get_run(store, "r").await.owner, None);
    claim(store, "r", "b", T0 + 100, T0 + 1).await;
    assert_eq!(
        commit_one(
            store,
            WriteOp::Release {
                run_id: "ghost".into(),
                fence: fence("a", 1)
            }
        )
        .await,
        Err(OpRejected::RunNotFound {
            run_id: "ghost".into()
        })
    );
}

/// A heartbeat extends exactly the leases the node holds.
pub async fn renew_extends_only_the_nodes_own_leases(store: &dyn Store) {
    for id in ["r1", "r2", "r3"] {
        create_run(store, id, "w", T0).await;
    }
    claim(store, "r1", "a", T0 + 10, T0).await;
    claim(store, "r2", "a", T0 + 10, T0).await;
    claim(store, "r3", "b", T0 + 10, T0).await;
    let renewed = commit_one(
        store,
        WriteOp::RenewLeases {
            node: "a".into(),
            lease_until_ms: T0 + 1_000,
        },
    )
    .await;
    assert_eq!(renewed, Ok(OpOutcome::Renewed { count: 2 }));
    assert_eq!(
        commit_one(store, claim_op("r1", "b", T0 + 2_000, T0 + 500)).await,
        Err(OpRejected::Owned {
            run_id: "r1".into(),
            owner: "a".into()
        }),
        "a's renewed lease still lives"
    );
    claim(store, "r3", "a", T0 + 2_000, T0 + 500).await;
}

/// Runs needing work leave out those another node holds a live lease on.
pub async fn runs_needing_work_leave_out_runs_leased_elsewhere(store: &dyn Store) {
    let now = T0 + 1_000;
    for (i, id) in ["free", "mine", "theirs-live", "theirs-expired"]
        .iter()
        .enumerate()
    {
        create_run(store, id, "w", T0 + i as u64).await;
    }
    claim(store, "mine", NODE, now - 1, T0).await;
    claim(store, "theirs-live", "other", now + 1, T0).await;
    claim(store, "theirs-expired", "other", now - 1, T0).await;
    assert_eq!(
        needing_work(store, now, 100).await,
        strings(&["free", "mine", "theirs-expired"]),
        "pending runs this node may take, oldest first"
    );
}

/// A finished run has no owner and cannot be claimed; claiming an unknown run is refused.
pub async fn finished_runs_have_no_owner_and_cannot_be_claimed(store: &dyn Store) {
    create_run(store, "r", "w", T0).await;
    let e = claim(store, "r", "a", T0 + 100, T0).await;
    let end = WriteOp::Append {
        run_id: "r".into(),
        events: vec![EventBody::RunCompleted { output: json!(1) }],
        status: None,
        wake_at: WakeAt::Keep,
        fence: Some(fence("a", e)),
        at_ms: T0 + 1,
    };
    appended(commit_one(store, end).await, "complete");
    let run = get_run(store, "r").await;
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.owner, None, "a finished run is owned by nobody");
    assert_eq!(
        commit_one(store, claim_op("r", "b", T0 + 100, T0 + 2)).await,
        Err(OpRejected::RunFinished {
            run_id: "r".into(),
            status: RunStatus::Completed
        })
    );
    assert_eq!(
        commit_one(store, claim_op("ghost", "b", T0 + 100, T0 + 2)).await,
        Err(OpRejected::RunNotFound {
            run_id: "ghost".into()
        })
    );
}

/// A run created with a claim starts `running`, owned by the claiming node at epoch
/// [`tether_store::FIRST_EPOCH`]: that fence writes, an older one does not, another node cannot
/// claim it while the lease lives, and the next claim raises the epoch as usual.
pub async fn a_run_created_claimed_is_running_and_owned(store: &dyn Store) {
    let created = WriteOp::CreateRun {
        queue: tether_store::DEFAULT_QUEUE.into(),
        run_id: "r".into(),
        workflow: "w".into(),
        input: json!(1),
        at_ms: T0,
        claim: Some(tether_store::FirstClaim {
            node: "a".into(),
            lease_until_ms: T0 + 100,
        }),
    };
    let (_, events) = appended(commit_one(store, created).await, "claimed CreateRun");
    assert_eq!(seqs(&events), vec![1]);
    let run = get_run(store, "r").await;
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(run.owner.as_deref(), Some("a"));
    assert_eq!(run.last_seq, 1);

    assert_eq!(
        commit_one(
            store,
            fenced_append("r", fence("a", tether_store::FIRST_EPOCH - 1), T0 + 1)
        )
        .await,
        Err(OpRejected::Fenced { run_id: "r".into() }),
        "an epoch before the first claim is fenced off"
    );
    appended(
        commit_one(
            store,
            fenced_append("r", fence("a", tether_store::FIRST_EPOCH), T0 + 2),
        )
        .await,
        "append with the first claim's fence",
    );
    assert_eq!(
        commit_one(store, claim_op("r", "b", T0 + 300, T0 + 3)).await,
        Err(OpRejected::Owned {
            run_id: "r".into(),
            owner: "a".into()
        }),
        "the creating node's lease holds against other nodes"
    );
    let next = claim(store, "r", "b", T0 + 400, T0 + 101).await;
    assert_eq!(
        next,
        tether_store::FIRST_EPOCH + 1,
        "a claim after the lease ends raises the epoch"
    );
    assert_eq!(get_run(store, "r").await.owner.as_deref(), Some("b"));
    assert!(
        needing_work(store, T0 + 500, 10)
            .await
            .contains(&"r".to_string()),
        "a running run with an expired lease needs work"
    );
}

/// A resume names the node whose lease on the run is live when it commits (so a node that
/// is not that one leaves the run to it instead of claiming it): none for an unowned run, the
/// claiming node while its lease lives (through its last millisecond), none once it lapsed.
pub async fn a_resume_names_the_live_lease_holder(store: &dyn Store) {
    create_run(store, "r", "w", T0).await;
    append(
        store,
        "r",
        vec![hook_created(1, "h1"), hook_created(2, "h2")],
        T0 + 1,
    )
    .await;
    let holder = |result: OpResult| match result {
        Ok(OpOutcome::Resumed { lease_holder, .. }) => lease_holder,
        other => panic!("expected Resumed, got {other:?}"),
    };
    let unowned = commit_one(store, resume_op("h1", json!(1), None, T0 + 2)).await;
    assert_eq!(holder(unowned), None, "nobody holds an unclaimed run");
    claim(store, "r", "a", T0 + 100, T0 + 3).await;
    let held = commit_one(store, resume_op("h1", json!(2), None, T0 + 100)).await;
    assert_eq!(holder(held).as_deref(), Some("a"), "the live lease's node");
    let lapsed = commit_one(store, resume_op("h2", json!(3), None, T0 + 101)).await;
    assert_eq!(holder(lapsed), None, "a lapsed lease holds nothing");
}

/// A resume asked to claim ([`tether_store::ClaimIfFree`]) claims the run in the same commit
/// when no node's lease on it is live, by the claim's own rules: the next epoch, the node as
/// owner until the lease end, a lapsed owner taken over. With a live lease it claims nothing
/// and names the holder; a node that does not serve the run's queue claims nothing either,
/// and in every case the payload is delivered.
pub async fn a_resume_claims_a_run_nobody_holds(store: &dyn Store) {
    create_run(store, "r", "w", T0).await;
    let tokens = ["h1", "h2", "h3", "h4"];
    let hooks = (1..).zip(tokens).map(|(cmd, t)| hook_created(cmd, t));
    append(store, "r", hooks.collect(), T0 + 1).await;
    let claiming =
        |token: &str, node: &str, queues: tether_store::QueuePolicy, at_ms: u64| WriteOp::Resume {
            token: token.into(),
            payload: json!(token),
            idempotency_key: None,
            expect: None,
            claim: Some(tether_store::ClaimIfFree {
                node: node.into(),
                lease_until_ms: at_ms + 100,
                queues: std::sync::Arc::new(queues),
            }),
            at_ms,
        };
    let resumed = |result: OpResult| match result {
        Ok(OpOutcome::Resumed {
            event: Some(_),
            lease_holder,
            claimed,
            ..
        }) => (lease_holder, claimed),
        other => panic!("expected a delivered Resumed, got {other:?}"),
    };

    // Nobody holds it: `a` claims it with the next epoch.
    let (holder, claimed) =
        resumed(commit_one(store, claiming("h1", "a", Default::default(), T0 + 2)).await);
    assert_eq!(holder, None);
    let epoch = claimed.expect("a free run is claimed").epoch;
    assert_eq!(epoch, 1, "the first claim's epoch");
    let run = get_run(store, "r").await;
    assert_eq!(run.owner.as_deref(), Some("a"), "{run:?}");
    commit_one(store, fenced_append("r", fence("a", epoch), T0 + 3))
        .await
        .expect("a writes under the claim the resume made");
    match commit_one(store, claim_op("r", "b", T0 + 500, T0 + 50)).await {
        Err(OpRejected::Owned { owner, .. }) => assert_eq!(owner, "a"),
        other => panic!("b's claim during a's lease: expected Owned, got {other:?}"),
    }

    // `a`'s lease lives: `b` claims nothing and hears who holds it.
    let (holder, claimed) =
        resumed(commit_one(store, claiming("h2", "b", Default::default(), T0 + 50)).await);
    assert_eq!((holder.as_deref(), claimed), (Some("a"), None));

    // A node that does not serve the run's queue claims nothing, once the lease lapsed too.
    let elsewhere = tether_store::QueuePolicy {
        serves: Some(["other".to_owned()].into()),
        limits: Default::default(),
    };
    let (holder, claimed) =
        resumed(commit_one(store, claiming("h3", "b", elsewhere, T0 + 200)).await);
    assert_eq!((holder, claimed), (None, None));

    // Lapsed: `b` takes it over with the next epoch, fencing `a` off.
    let (_, claimed) =
        resumed(commit_one(store, claiming("h4", "b", Default::default(), T0 + 201)).await);
    let claimed = claimed.expect("a lapsed lease is taken over");
    assert_eq!((claimed.epoch, claimed.took_over), (epoch + 1, true));
    assert_eq!(get_run(store, "r").await.owner.as_deref(), Some("b"));
    match commit_one(store, fenced_append("r", fence("a", epoch), T0 + 202)).await {
        Err(OpRejected::Fenced { .. }) => {}
        other => panic!("a's old claim: expected Fenced, got {other:?}"),
    }
}
