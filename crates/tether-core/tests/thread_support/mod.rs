//! Helpers shared by the hook-thread, state and signal tests.
#![allow(dead_code, unused_imports)]

use std::sync::Arc;

use crate::harness::{
    assert_trio, assert_trio_of, replay, replay_run, workflow, Sim, Store, Wait, RUN_ID, WORKFLOW,
};
use serde_json::{json, Value};
use tether_core::{
    Ctx, ErasedWorkflow, ErrorInfo, Event, EventBody, Progress, ReplayError, RetryPolicy,
    SpawnOptions, ThreadInfo, WorkflowError, ERROR_ENVELOPE,
};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The hook function used throughout: reads `name`, writes `greeting`, counts itself in
/// `hook_runs`, and signals `{greeting, runs}` to its exec signal (`ctx.exec_signal_id()`),
/// or to `args.signal_id` when there is one.
pub(crate) async fn greeter(ctx: Ctx, args: Value) -> Result<Value, WorkflowError> {
    let name: String = ctx.get("name").await?.unwrap_or_default();
    let greeting = format!("hello {name}");
    ctx.set("greeting", &greeting).await?;
    let runs = ctx.incr("hook_runs", 1).await?;
    let signal_id = ctx
        .exec_signal_id()
        .or_else(|| args["signal_id"].as_str().map(str::to_string));
    if let Some(signal_id) = signal_id {
        ctx.signal(&signal_id, &json!({ "greeting": greeting, "runs": runs }))
            .await?;
    }
    Ok(json!({ "greeting": greeting, "runs": runs }))
}

/// Run a hook thread to its end three ways, retrying failed attempts.
pub(crate) fn run_thread(thread: Sim) -> Sim {
    assert_trio_of(thread, |t| {
        for _ in 0..10 {
            if t.is_finished() {
                break;
            }
            t.settle();
        }
    })
}

/// The `HookSpawned` entries of a journal.
pub(crate) fn spawns(journal: &[Event]) -> Vec<&EventBody> {
    journal
        .iter()
        .map(|e| &e.body)
        .filter(|b| matches!(b, EventBody::HookSpawned { .. }))
        .collect()
}

pub(crate) fn hook_id_of(body: &EventBody) -> &str {
    match body {
        EventBody::HookSpawned { hook_id, .. } => hook_id,
        other => panic!("expected hook_spawned, got {other:?}"),
    }
}

/// Exactly once: no replay of a journal that holds the spawn issues it again, and one cut
/// before the spawn was committed issues it with the same (deterministic) hook id, which the
/// store creates once.
pub(crate) fn assert_spawn_replays_once(wf: &Arc<dyn ErasedWorkflow>, sim: &Sim) {
    let journal = sim.journal();
    let recorded = spawns(journal);
    assert_eq!(recorded.len(), 1, "{sim:?}");
    let spawned_at = journal
        .iter()
        .position(|e| matches!(e.body, EventBody::HookSpawned { .. }))
        .expect("spawned")
        + 1;
    for n in 1..=journal.len() {
        let r = replay(wf, &journal[..n]).unwrap_or_else(|e| panic!("replay of {n}: {e}"));
        let issued: Vec<&EventBody> = r
            .outbox
            .iter()
            .filter(|b| matches!(b, EventBody::HookSpawned { .. }))
            .collect();
        if n >= spawned_at {
            assert!(
                issued.is_empty(),
                "replaying {n} entries spawned again: {issued:?}"
            );
        } else {
            for b in issued {
                assert_eq!(b, recorded[0], "replaying {n} entries");
            }
        }
    }
}

pub(crate) fn nondeterminism(wf: &Arc<dyn ErasedWorkflow>, journal: &[Event]) -> ReplayError {
    match replay(wf, journal) {
        Err(e @ ReplayError::Nondeterminism { .. }) => e,
        Err(other) => panic!("expected a non-determinism error, got {other:?}"),
        Ok(r) => panic!("expected a non-determinism error, replay succeeded: {r:?}"),
    }
}

pub(crate) fn assert_nondeterminism(
    err: &ReplayError,
    position: u32,
    recorded: &str,
    issued: &str,
) {
    match err {
        ReplayError::Nondeterminism {
            position: p,
            recorded: r,
            issued: i,
            ..
        } => assert_eq!((*p, r.as_str(), i.as_str()), (position, recorded, issued)),
        other => panic!("expected a non-determinism error, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(recorded) && text.contains(issued),
        "{text:?} names both"
    );
    assert_eq!(err.to_info().code, "nondeterminism");
}

// ---------------------------------------------------------------------------------------------
// Shared state
// ---------------------------------------------------------------------------------------------

pub(crate) async fn state_ops(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let before: Option<String> = ctx.get("k").await?;
    ctx.set("k", &"v1").await?;
    let after: Option<String> = ctx.get("k").await?;
    let n1 = ctx.incr("n", 2).await?;
    let n2 = ctx.incr("n", 3).await?;
    let n3 = ctx.incr("n", -10).await?;
    let existed = ctx.delete("k").await?;
    let existed_again = ctx.delete("k").await?;
    let gone: Option<String> = ctx.get("k").await?;
    Ok(json!({
        "before": before, "after": after, "n": [n1, n2, n3],
        "existed": existed, "existed_again": existed_again, "gone": gone,
    }))
}
