//! Starting a run: one op creates it claimed by this node and running; from
//! then on a run of steps writes one journal entry per step and nothing else (no status
//! written back and forth while its results come in).

mod common;

use std::sync::LazyLock;
use std::time::Duration;

use common::{examples, fast_config, output, TestDb};
use serde_json::{json, Value};
use tether_core::{Ctx, RunStatus, WorkflowError};
use tether_engine::{Engine, EngineConfig};
use tokio::sync::Notify;

/// A config whose lease is renewed once, at start, and not again during a test.
fn quiet_config() -> EngineConfig {
    EngineConfig {
        node_id: Some("node-a".into()),
        lease: Duration::from_secs(3600),
        ..fast_config()
    }
}

/// Ops committed so far, once the start-up lease renewal has been committed.
async fn committed_after_start(engine: &Engine) -> u64 {
    for _ in 0..400 {
        let ops = engine.metrics().snapshot().committed_ops;
        if ops > 0 {
            return ops;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the engine committed nothing at start (its lease renewal)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_of_steps_commits_one_op_per_step_after_a_one_commit_start() {
    let db = TestDb::new();
    let engine = db.engine(examples(), quiet_config()).await;
    let before = committed_after_start(&engine).await;
    let commits_before = engine.metrics().snapshot().commits.count;

    let run = engine.start_run("steps", json!({ "n": 5 })).await.unwrap();
    assert_eq!(output(&engine, &run).await, json!({ "steps": 5 }));

    let after = engine.metrics().snapshot();
    assert_eq!(
        after.committed_ops - before,
        1 + 5 + 1,
        "the claimed create, one result per step, the end"
    );
    assert!(
        after.commits.count - commits_before <= 7,
        "starting takes one commit, each step one, the end one (got {})",
        after.commits.count - commits_before
    );
    let journal = engine.events(&run).await.unwrap();
    assert_eq!(
        journal.len(),
        1 + 5 + 1,
        "RunStarted, 5 results, RunCompleted"
    );
}

static RELEASE_STEP: LazyLock<Notify> = LazyLock::new(Notify::new);

async fn slow_step(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let v: u32 = ctx
        .step("slow", (), |()| async {
            RELEASE_STEP.notified().await;
            Ok(7)
        })
        .await?;
    Ok(json!(v))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_started_run_is_running_on_this_node_while_its_first_step_runs() {
    let db = TestDb::new();
    let mut registry = examples();
    registry.workflow("slow_step", slow_step);
    let engine = db.engine(registry, quiet_config()).await;

    let run = engine.start_run("slow_step", json!({})).await.unwrap();
    let record = engine.get_run(&run).await.unwrap();
    assert_eq!(record.status, RunStatus::Running);
    assert_eq!(record.owner.as_deref(), Some("node-a"));

    RELEASE_STEP.notify_one();
    assert_eq!(output(&engine, &run).await, json!(7));
    let record = engine.get_run(&run).await.unwrap();
    assert_eq!(record.status, RunStatus::Completed);
    assert_eq!(record.owner, None, "an ended run is held by no node");
}
