//! Cancellation: a `CancelRequested` delivery makes the await the workflow is suspended on (and
//! every await after it) return `WorkflowError::Cancelled`; a run that ends in an error after a
//! cancellation ends as `RunCancelled`.

mod harness;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::{assert_trio, workflow, Sim};
use serde_json::{json, Value};
use tether_core::{Ctx, EventBody, HookOptions, Progress, WorkflowError};

/// What the workflow saw at its await, in every execution (live and replays).
type Seen = Arc<Mutex<Vec<String>>>;

fn cancelled(reason: Option<&str>) -> String {
    format!(
        "{:?}",
        WorkflowError::Cancelled {
            reason: reason.map(str::to_string)
        }
    )
}

/// Assert every execution saw exactly `expected` at its await.
fn assert_seen(seen: &Seen, expected: &str) {
    let seen = seen.lock().unwrap();
    assert!(!seen.is_empty(), "the await never returned");
    assert!(seen.iter().all(|s| s == expected), "{seen:?}");
}

/// Build a workflow that suspends on what `wait` returns and logs the error it gets.
fn waiting_on<F, Fut>(seen: &Seen, wait: F) -> Arc<dyn tether_core::ErasedWorkflow>
where
    F: Fn(Ctx) -> Fut + Send + Sync + Copy + 'static,
    Fut: std::future::Future<Output = Result<(), WorkflowError>> + Send + 'static,
{
    let seen = seen.clone();
    workflow(move |ctx: Ctx, _: Value| {
        let seen = seen.clone();
        async move {
            let r = wait(ctx).await;
            if let Err(e) = &r {
                seen.lock().unwrap().push(format!("{e:?}"));
            }
            r.map(|()| "not cancelled")
        }
    })
}

#[test]
fn cancelling_a_run_suspended_on_a_hook() {
    let seen = Seen::default();
    let wf = waiting_on(&seen, |ctx| async move {
        let mut hook = ctx
            .create_hook::<Value>(HookOptions::new().token("never"))
            .await?;
        hook.recv().await.map(|_| ())
    });
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        sim.cancel(Some("user asked"));
    });
    assert_seen(&seen, &cancelled(Some("user asked")));
    assert_eq!(
        sim.end(),
        &EventBody::RunCancelled {
            reason: Some("user asked".into())
        }
    );
    // The hook was dropped on the way out: its token is released.
    assert_eq!(
        sim.kinds(),
        [
            "run_started",
            "hook_created",
            "cancel_requested",
            "hook_disposed",
            "run_cancelled"
        ]
    );
}

#[test]
fn cancelling_a_run_suspended_on_a_sleep() {
    let seen = Seen::default();
    let wf = waiting_on(&seen, |ctx| async move {
        ctx.sleep(Duration::from_secs(3600)).await
    });
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        assert_eq!(sim.pending_timers().len(), 1);
        sim.cancel(None);
    });
    assert_seen(&seen, &cancelled(None));
    assert_eq!(sim.end(), &EventBody::RunCancelled { reason: None });
    assert_eq!(
        sim.kinds(),
        [
            "run_started",
            "timer_started",
            "cancel_requested",
            "run_cancelled"
        ]
    );
}

#[test]
fn cancelling_a_run_waiting_for_a_step() {
    let seen = Seen::default();
    let wf = waiting_on(&seen, |ctx| async move {
        ctx.step("slow", (), |()| async { Ok(1u32) })
            .await
            .map(|_| ())
    });
    let sim = assert_trio(&wf, Value::Null, |sim| {
        assert_eq!(sim.queued_steps().len(), 1);
        // The step is still running when the cancellation arrives; its result never lands.
        sim.cancel(Some("stop"));
        assert_eq!(
            sim.progress(),
            &Progress::Finished(EventBody::RunCancelled {
                reason: Some("stop".into())
            })
        );
    });
    assert_seen(&seen, &cancelled(Some("stop")));
    assert_eq!(
        sim.kinds(),
        ["run_started", "cancel_requested", "run_cancelled"]
    );
}

#[test]
fn cancelling_while_a_hook_is_being_created() {
    let seen = Seen::default();
    let wf = waiting_on(&seen, |ctx| async move {
        ctx.create_hook::<Value>(HookOptions::new().token("t"))
            .await
            .map(|_| ())
    });
    let sim = assert_trio(&wf, Value::Null, |sim| {
        // Cancel before the creation is committed.
        sim.cancel(Some("early"));
    });
    assert_seen(&seen, &cancelled(Some("early")));
    assert_eq!(
        sim.end(),
        &EventBody::RunCancelled {
            reason: Some("early".into())
        }
    );
}

#[test]
fn a_workflow_may_handle_the_cancellation_and_complete() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        match ctx.sleep(Duration::from_secs(60)).await {
            Ok(()) => Ok("slept".to_string()),
            Err(e) if e.is_cancelled() => {
                assert!(ctx.is_cancelled());
                Ok(format!("stopped early: {e}"))
            }
            Err(e) => Err(e),
        }
    });
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        sim.cancel(Some("deploy"));
    });
    assert_eq!(sim.output(), json!("stopped early: run cancelled: deploy"));
}

#[test]
fn every_await_after_the_cancellation_fails_and_no_new_step_runs() {
    let calls = Arc::new(AtomicU32::new(0));
    let wf = workflow({
        let calls = calls.clone();
        move |ctx: Ctx, _: Value| {
            let calls = calls.clone();
            async move {
                let first = ctx.sleep(Duration::from_secs(60)).await;
                let cleanup: Result<u32, WorkflowError> = ctx
                    .step("cleanup", calls.clone(), move |calls| async move {
                        Ok(calls.fetch_add(1, Ordering::SeqCst))
                    })
                    .await;
                let nap = ctx.sleep(Duration::from_secs(1)).await;
                let errors = [first.err(), cleanup.err(), nap.err()];
                if errors
                    .iter()
                    .all(|e| e.as_ref().is_some_and(|e| e.is_cancelled()))
                {
                    Err(WorkflowError::msg("all cancelled"))
                } else {
                    Ok(format!("{errors:?}"))
                }
            }
        }
    });
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        sim.cancel(None);
        assert_eq!(sim.queued_steps(), []);
    });
    assert_eq!(sim.end(), &EventBody::RunCancelled { reason: None });
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "the cleanup step never ran"
    );
    assert!(sim.entries("step_completed").is_empty());
}

#[test]
fn a_run_that_fails_after_being_cancelled_ends_cancelled() {
    // Whatever error the workflow returns once cancelled, the run ends as cancelled.
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        if ctx.sleep(Duration::from_secs(60)).await.is_err() {
            return Err::<(), _>(WorkflowError::with_code("custom", "gave up"));
        }
        Ok(())
    });
    let mut sim = Sim::start(&wf, Value::Null);
    sim.settle();
    sim.cancel(Some("why"));
    sim.settle();
    assert_eq!(
        sim.end(),
        &EventBody::RunCancelled {
            reason: Some("why".into())
        }
    );
}
