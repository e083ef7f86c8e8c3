//! Schedules in the test kit: `TestEnv::advance` stops at every tick (the ticker waits on the
//! virtual clock), so 20 virtual seconds of an every-second schedule are 20 runs, without a
//! real sleep.
#![allow(missing_docs)]

use std::time::Duration;

use serde_json::{json, Value};
use tether_core::{Ctx, Registry, RunStatus, WorkflowError};
use tether_engine::schedules::{CatchUp, Overlap, ScheduleSpec};
use tether_store::RunFilter;
use tether_testing::{TestEnv, START_MS};

async fn tick(_ctx: Ctx, input: Value) -> Result<Value, WorkflowError> {
    Ok(input)
}

#[tokio::test]
async fn a_schedule_ticks_on_the_virtual_clock() -> Result<(), tether_testing::TestError> {
    let mut registry = Registry::new();
    registry.workflow("tick", tick);
    let env = TestEnv::new(registry).await?;
    env.engine()
        .create_schedule(ScheduleSpec {
            id: "beat".into(),
            workflow: "tick".into(),
            cron: "*/1 * * * * *".into(),
            timezone: "UTC".into(),
            input: json!({}),
            overlap: Overlap::Skip,
            catch_up: CatchUp::One,
        })
        .await?;
    env.advance(Duration::from_secs(20)).await?;
    let runs = env
        .engine()
        .store()
        .list_runs(&RunFilter {
            limit: 100,
            ..RunFilter::default()
        })
        .await?;
    let mut ids: Vec<String> = runs.iter().map(|r| r.run_id.clone()).collect();
    ids.sort();
    let mut want: Vec<String> = (1..=20)
        .map(|k| format!("sched:beat:{}", START_MS + k * 1_000))
        .collect();
    want.sort();
    assert_eq!(ids, want, "one run per tick");
    assert!(runs.iter().all(|r| r.status == RunStatus::Completed));
    env.shutdown().await;
    Ok(())
}
