//! The harness checks itself: `assert_trio` must reject workflows that are not deterministic,
//! or it would prove nothing about the ones that pass.

mod harness;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use harness::{assert_trio, workflow};
use serde_json::Value;
use tether_core::Ctx;

/// A workflow that reads a value the journal does not know about: how many times it ran.
fn counting_workflow(
    runs: &Arc<AtomicU32>,
    branch_on_it: bool,
) -> Arc<dyn tether_core::ErasedWorkflow> {
    let runs = runs.clone();
    workflow(move |ctx: Ctx, _: Value| {
        let n = runs.fetch_add(1, Ordering::SeqCst);
        async move {
            if branch_on_it && n > 0 {
                // Replays take another path.
                ctx.sleep(Duration::from_secs(1)).await?;
            } else {
                let _: u32 = ctx.step("work", (), |()| async { Ok(1) }).await?;
            }
            Ok(n)
        }
    })
}

#[test]
#[should_panic(
    expected = "(b) replaying the complete journal failed: non-determinism at command #1"
)]
fn the_trio_rejects_a_workflow_that_branches_on_hidden_state() {
    let runs = Arc::new(AtomicU32::new(0));
    assert_trio(&counting_workflow(&runs, true), Value::Null, |_| {});
}

#[test]
#[should_panic(expected = "(b) replaying the complete journal must reach the recorded end")]
fn the_trio_rejects_a_workflow_whose_output_depends_on_hidden_state() {
    let runs = Arc::new(AtomicU32::new(0));
    assert_trio(&counting_workflow(&runs, false), Value::Null, |_| {});
}

#[test]
#[should_panic(expected = "(a) the driver must bring the run to its end")]
fn the_trio_requires_the_run_to_end() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        ctx.sleep(Duration::from_secs(1)).await?;
        Ok(())
    });
    assert_trio(&wf, Value::Null, |_| {});
}
