//! Issue #18's acceptance for schedules, with real processes: two `tether dev` nodes on one
//! PostgreSQL database, a schedule ticking every second for about 20 seconds while one node is
//! killed with SIGKILL and started again. Every second between the first and the last tick
//! has exactly one run (`sched:{id}:{tick_ms}`), none is missing, and every run completes.
//!
//! Needs `TETHER_TEST_POSTGRES` (e.g. `postgres://postgres@127.0.0.1:5432/test`); without it
//! the test is ignored, except under CI where it fails (the rule: `tether-test-env`).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use serde_json::json;
use tether_client::NewSchedule;

/// How long the schedule ticks.
const TICKING: Duration = Duration::from_secs(20);

/// The schedule's id, and the prefix of its runs' ids.
const ID: &str = "every-second";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
)]
async fn a_schedule_ticks_once_a_second_while_a_node_is_killed_and_restarted() {
    let schema = PgSchema::new(&postgres_url());
    let flags = ["--lease-ms", "2000", "--poll-interval-ms", "100"];
    let mut a = schema.node(&flags);
    let b = schema.node(&flags);
    let created = a
        .client
        .create_schedule(&NewSchedule {
            id: ID.into(),
            workflow: "steps".into(),
            cron: "* * * * * *".into(),
            input: Some(json!({"n": 1})),
            ..NewSchedule::default()
        })
        .await
        .expect("create the schedule");
    assert_eq!(created.cron, "* * * * * *");

    // A third of the way in, node A dies without a word; a little later it is back.
    tokio::time::sleep(TICKING / 3).await;
    a.kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let a = schema.node(&flags);
    tokio::time::sleep(TICKING - TICKING / 3 - Duration::from_secs(3)).await;
    b.client.pause_schedule(ID).await.expect("pause");

    // The ticks that ran: one run each, every second from the first to the last.
    let runs = b
        .client
        .list_runs(None, Some("steps"), Some(1000))
        .await
        .expect("list runs");
    let prefix = format!("sched:{ID}:");
    let ticks: Vec<u64> = runs
        .iter()
        .filter_map(|r| r.run_id.strip_prefix(&prefix)?.parse().ok())
        .collect();
    let distinct: BTreeSet<u64> = ticks.iter().copied().collect();
    assert_eq!(distinct.len(), ticks.len(), "a tick ran twice: {ticks:?}");
    let (first, last) = (
        *distinct.first().expect("some ticks ran"),
        *distinct.last().expect("some ticks ran"),
    );
    let expected: BTreeSet<u64> = (0..=(last - first) / 1000)
        .map(|k| first + k * 1000)
        .collect();
    let missing: Vec<_> = expected.difference(&distinct).collect();
    assert!(missing.is_empty(), "ticks without a run: {missing:?}");
    // About 20 seconds of ticks (the schedule was created and paused by wall-clock sleeps, so
    // the count is bounded, not exact).
    assert!(
        (15..=25).contains(&distinct.len()),
        "{} ticks in {TICKING:?}",
        distinct.len()
    );
    for run in &runs {
        if !run.run_id.starts_with(&prefix) {
            continue;
        }
        let done = a
            .client
            .wait_for_run(&run.run_id, Duration::from_secs(30))
            .await
            .expect("wait");
        assert_eq!(done.status, "completed", "{done:?}");
        assert_eq!(done.schedule_id.as_deref(), Some(ID), "{done:?}");
    }
}
