//! Conformance cases about durable cron schedules: create / read / list / delete, firing a
//! tick exactly once (two fires of one tick: one run), pause and resume, the overlap rule,
//! catch-up fires, and retention leaving schedules alone.

use serde_json::{json, Value};
use tether_core::event::{EventBody, RunStatus};

use super::support::*;
use tether_store::{
    CatchUp, FireTick, FirstClaim, OpOutcome, OpRejected, Overlap, ScheduleOp, ScheduleRecord,
    ScheduleSpec, Store, WriteOp,
};

/// One second, in ms: the ticks of these cases are a second apart.
const S: u64 = 1_000;

fn spec(id: &str, overlap: Overlap) -> ScheduleSpec {
    ScheduleSpec {
        id: id.to_owned(),
        workflow: "report".to_owned(),
        cron: "* * * * * *".to_owned(),
        timezone: "UTC".to_owned(),
        input: json!({ "to": "ops" }),
        overlap,
        catch_up: CatchUp::One,
    }
}

fn create(spec: ScheduleSpec, next: u64) -> WriteOp {
    WriteOp::Schedule(ScheduleOp::Create {
        spec,
        next_tick_ms: Some(next),
        at_ms: T0,
    })
}

fn fire(id: &str, expected: u64, run: Option<u64>, next: u64) -> WriteOp {
    WriteOp::Schedule(ScheduleOp::Fire(FireTick {
        id: id.to_owned(),
        expected_tick_ms: expected,
        run_tick_ms: run,
        next_tick_ms: Some(next),
        claim: None,
        at_ms: expected,
    }))
}

async fn schedule(store: &dyn Store, id: &str) -> Option<ScheduleRecord> {
    match store.get_schedule(id).await {
        Ok(s) => s,
        Err(e) => panic!("get_schedule({id}) failed: {e}"),
    }
}

async fn schedule_ids(store: &dyn Store) -> Vec<String> {
    match store.list_schedules().await {
        Ok(all) => all.into_iter().map(|s| s.spec.id).collect(),
        Err(e) => panic!("list_schedules failed: {e}"),
    }
}

#[track_caller]
fn updated(result: tether_store::OpResult, what: &str) {
    assert_eq!(result, Ok(OpOutcome::Updated), "{what}");
}

/// A schedule reads back as created; a second create with its id is refused; delete removes
/// it (and leaves the runs it started); a delete of an unknown id is refused.
pub async fn schedules_are_created_read_listed_and_deleted(store: &dyn Store) {
    let a = spec("a-nightly", Overlap::Allow);
    updated(
        commit_one(store, create(a.clone(), T0 + S)).await,
        "create a",
    );
    updated(
        commit_one(store, create(spec("b", Overlap::Skip), T0 + S)).await,
        "create b",
    );
    let read = schedule(store, "a-nightly").await;
    let expected = ScheduleRecord {
        spec: a.clone(),
        paused: false,
        next_tick_ms: Some(T0 + S),
        last_run_id: None,
        created_at_ms: T0,
        updated_at_ms: T0,
    };
    assert_eq!(read, Some(expected), "get_schedule after create");
    assert_eq!(schedule_ids(store).await, strings(&["a-nightly", "b"]));
    assert_eq!(
        rejected(
            commit_one(store, create(spec("a-nightly", Overlap::Skip), T0)).await,
            "create a again"
        ),
        OpRejected::ScheduleExists {
            id: "a-nightly".into()
        }
    );
    assert_eq!(
        schedule(store, "a-nightly").await.map(|s| s.spec),
        Some(a),
        "a refused create changes nothing"
    );
    let (run_id, _) = appended(
        commit_one(store, fire("a-nightly", T0 + S, Some(T0 + S), T0 + 2 * S)).await,
        "fire a",
    );
    let delete = |id: &str| WriteOp::Schedule(ScheduleOp::Delete { id: id.to_owned() });
    updated(commit_one(store, delete("a-nightly")).await, "delete a");
    assert_eq!(schedule(store, "a-nightly").await, None, "deleted");
    assert_eq!(schedule_ids(store).await, strings(&["b"]));
    assert!(run_exists(store, &run_id).await, "a schedule's runs stay");
    assert_eq!(
        rejected(commit_one(store, delete("a-nightly")).await, "delete again"),
        OpRejected::ScheduleNotFound {
            id: "a-nightly".into()
        }
    );
}

/// Two fires of one tick (two nodes): the first creates the tick's run and moves the
/// schedule on; the second is refused with `ScheduleMoved` and writes nothing — in one batch
/// and in two concurrent commits alike.
pub async fn a_tick_fires_once_when_two_fires_race(store: &dyn Store) {
    updated(
        commit_one(store, create(spec("s", Overlap::Allow), T0 + S)).await,
        "create",
    );
    let tick = T0 + S;
    let [first, second] = commit_all(
        store,
        [
            fire("s", tick, Some(tick), tick + S),
            fire("s", tick, Some(tick), tick + S),
        ],
    )
    .await;
    let (run_id, events) = appended(first, "the first fire of a tick");
    assert_eq!(run_id, "sched:s:1700000001000", "a tick's run id");
    assert!(
        matches!(events[0].body, EventBody::RunStarted { ref workflow, .. } if workflow == "report"),
        "the tick's run starts the schedule's workflow: {events:?}"
    );
    assert_eq!(
        rejected(second, "the second fire of a tick"),
        OpRejected::ScheduleMoved { id: "s".into() }
    );
    let run = get_run(store, &run_id).await;
    assert_eq!(run.input, json!({ "to": "ops" }), "the schedule's input");
    let s = schedule(store, "s").await.expect("schedule s");
    assert_eq!(s.next_tick_ms, Some(tick + S), "moved to the next tick");
    assert_eq!(s.last_run_id.as_deref(), Some(run_id.as_str()));

    // Two commits at once (two nodes): exactly one wins.
    let next = tick + S;
    let claim = |node: &str| {
        WriteOp::Schedule(ScheduleOp::Fire(FireTick {
            id: "s".into(),
            expected_tick_ms: next,
            run_tick_ms: Some(next),
            next_tick_ms: Some(next + S),
            claim: Some(FirstClaim {
                node: node.into(),
                lease_until_ms: next + 10 * S,
            }),
            at_ms: next,
        }))
    };
    let (a, b) = futures::join!(
        commit_one(store, claim("node-a")),
        commit_one(store, claim("node-b"))
    );
    let won: Vec<_> = [&a, &b].into_iter().filter(|r| r.is_ok()).collect();
    assert_eq!(won.len(), 1, "one of two racing fires wins: {a:?} / {b:?}");
    let loser = if a.is_ok() { b } else { a };
    assert_eq!(
        rejected(loser, "the losing fire"),
        OpRejected::ScheduleMoved { id: "s".into() }
    );
    let run = get_run(store, "sched:s:1700000002000").await;
    assert_eq!(run.status, RunStatus::Running, "created claimed");
    assert!(run.owner.is_some(), "owned by the winner");
}

/// A paused schedule's tick is refused; resume sets the next tick (the paused ones never
/// fire); pause / resume of an unknown schedule are refused.
pub async fn a_paused_schedule_does_not_fire(store: &dyn Store) {
    updated(
        commit_one(store, create(spec("p", Overlap::Allow), T0 + S)).await,
        "create",
    );
    let pause = |id: &str| {
        WriteOp::Schedule(ScheduleOp::Pause {
            id: id.into(),
            at_ms: T0 + 1,
        })
    };
    let resume = |id: &str, next: u64| {
        WriteOp::Schedule(ScheduleOp::Resume {
            id: id.into(),
            next_tick_ms: Some(next),
            at_ms: T0 + 2,
        })
    };
    updated(commit_one(store, pause("p")).await, "pause");
    updated(commit_one(store, pause("p")).await, "pause again");
    assert!(schedule(store, "p").await.expect("p").paused);
    assert_eq!(
        rejected(
            commit_one(store, fire("p", T0 + S, Some(T0 + S), T0 + 2 * S)).await,
            "fire while paused"
        ),
        OpRejected::ScheduleMoved { id: "p".into() }
    );
    assert!(!run_exists(store, "sched:p:1700000001000").await);
    updated(commit_one(store, resume("p", T0 + 5 * S)).await, "resume");
    let s = schedule(store, "p").await.expect("p");
    assert!(!s.paused);
    assert_eq!(
        s.next_tick_ms,
        Some(T0 + 5 * S),
        "resume sets the next tick"
    );
    updated(
        commit_one(store, resume("p", T0 + 9 * S)).await,
        "resume again: a no-op",
    );
    assert_eq!(
        schedule(store, "p").await.expect("p").next_tick_ms,
        Some(T0 + 5 * S)
    );
    assert!(
        commit_one(store, fire("p", T0 + 5 * S, Some(T0 + 5 * S), T0 + 6 * S))
            .await
            .is_ok(),
        "a resumed schedule fires"
    );
    for op in [pause("nope"), resume("nope", T0)] {
        assert_eq!(
            rejected(commit_one(store, op).await, "unknown schedule"),
            OpRejected::ScheduleNotFound { id: "nope".into() }
        );
    }
}

/// `overlap: skip`: a tick while the last run goes on starts nothing (the schedule still
/// moves on); once it ended, the next tick runs. `overlap: allow` always runs.
pub async fn skip_overlap_skips_while_the_last_run_goes_on(store: &dyn Store) {
    updated(
        commit_one(store, create(spec("k", Overlap::Skip), T0 + S)).await,
        "create skip",
    );
    updated(
        commit_one(store, create(spec("w", Overlap::Allow), T0 + S)).await,
        "create allow",
    );
    let t = |n: u64| T0 + n * S;
    let (first, _) = appended(
        commit_one(store, fire("k", t(1), Some(t(1)), t(2))).await,
        "first tick",
    );
    updated(
        commit_one(store, fire("k", t(2), Some(t(2)), t(3))).await,
        "a tick while the last run goes on is skipped",
    );
    assert!(!run_exists(store, "sched:k:1700000002000").await);
    let s = schedule(store, "k").await.expect("k");
    assert_eq!(s.next_tick_ms, Some(t(3)), "a skipped tick still moves on");
    assert_eq!(s.last_run_id.as_deref(), Some(first.as_str()));
    append(
        store,
        &first,
        vec![EventBody::RunCompleted {
            output: Value::Null,
        }],
        t(2),
    )
    .await;
    appended(
        commit_one(store, fire("k", t(3), Some(t(3)), t(4))).await,
        "once the last run ended, the next tick runs",
    );
    for n in 1..=2 {
        appended(
            commit_one(store, fire("w", t(n), Some(t(n)), t(n + 1))).await,
            "overlap allow runs every tick",
        );
    }
}

/// A catch-up fire runs the tick it names (not the one it advances from); a fire without a
/// run tick only moves the schedule; a tick whose run exists already (a schedule deleted
/// and created again) makes no second run and still moves on.
pub async fn catch_up_fires_run_the_tick_they_name(store: &dyn Store) {
    updated(
        commit_one(store, create(spec("c", Overlap::Allow), T0 + S)).await,
        "create",
    );
    let t = |n: u64| T0 + n * S;
    let (run_id, _) = appended(
        commit_one(store, fire("c", t(1), Some(t(5)), t(6))).await,
        "catch up: the latest missed tick runs",
    );
    assert_eq!(run_id, "sched:c:1700000005000");
    for n in 1..5 {
        assert!(
            !run_exists(store, &format!("sched:c:{}", t(n))).await,
            "older missed ticks make no run"
        );
    }
    updated(
        commit_one(store, fire("c", t(6), None, t(9))).await,
        "skipping missed ticks",
    );
    assert!(!run_exists(store, "sched:c:1700000006000").await);
    assert_eq!(
        schedule(store, "c").await.expect("c").next_tick_ms,
        Some(t(9))
    );
    // Deleted and created again with the same ticks: tick 5's run is there already.
    let delete = WriteOp::Schedule(ScheduleOp::Delete { id: "c".into() });
    updated(commit_one(store, delete).await, "delete");
    updated(
        commit_one(store, create(spec("c", Overlap::Allow), t(5))).await,
        "create again",
    );
    updated(
        commit_one(store, fire("c", t(5), Some(t(5)), t(6))).await,
        "a tick whose run exists makes no second run",
    );
    assert_eq!(
        schedule(store, "c").await.expect("c").next_tick_ms,
        Some(t(6))
    );
}

/// Retention deletes a schedule's ended runs, never the schedule; a skip-overlap schedule
/// whose last run was deleted fires again.
pub async fn retention_keeps_schedules(store: &dyn Store) {
    updated(
        commit_one(store, create(spec("r", Overlap::Skip), T0 + S)).await,
        "create",
    );
    let (run_id, _) = appended(
        commit_one(store, fire("r", T0 + S, Some(T0 + S), T0 + 2 * S)).await,
        "fire",
    );
    append(
        store,
        &run_id,
        vec![EventBody::RunCompleted {
            output: Value::Null,
        }],
        T0 + S,
    )
    .await;
    let deleted = match store.delete_ended_before(T0 + 10 * S, 100).await {
        Ok(n) => n,
        Err(e) => panic!("delete_ended_before failed: {e}"),
    };
    assert_eq!(deleted, 1, "the ended run is deleted");
    assert!(!run_exists(store, &run_id).await);
    assert!(schedule(store, "r").await.is_some(), "the schedule stays");
    appended(
        commit_one(store, fire("r", T0 + 2 * S, Some(T0 + 2 * S), T0 + 3 * S)).await,
        "a schedule whose last run is gone fires",
    );
}
