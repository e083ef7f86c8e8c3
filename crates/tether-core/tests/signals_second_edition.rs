//! The workflow API, second edition (issue #15), for hook threads and signals:
//!
//! - every method of `threads.rs` issues its command when called (ordering, per primitive);
//! - `exec_hook` is completed by the hook function's return value when it never signalled,
//!   and the thread learns its signal id from `ctx.exec_signal_id()` (args unchanged);
//! - `wait_for(..).timeout(d)` / `wait_for_timeout`, journaled through a durable timer;
//! - a wait that lost a race, timed out, was cancelled or dropped never consumes a signal
//!   (`SignalReleased`; journals of the first release, without releases, in
//!   `signals_old_journals.rs`);
//! - commands issued after a cancel request are not written.
//!
//! Every scenario runs three ways (fresh, replayed to completion, replayed up to each
//! suspension then continued) through `assert_trio`.

#![allow(unused_imports)]

mod harness;
mod thread_support;

use std::time::Duration;

use harness::{assert_trio, replay, workflow, Sim, Store, RUN_ID, START_MS, WORKFLOW};
use serde_json::{json, Value};
use tether_core::{
    join, race, Ctx, Either, Event, EventBody, Progress, RetryPolicy, SpawnOptions, ThreadInfo,
    WorkflowError,
};

use thread_support::*;

const HOUR: Duration = Duration::from_secs(3600);
const HOUR_MS: u64 = 3_600_000;

/// Position in the journal of the first entry of `kind`.
fn pos(sim: &Sim, kind: &str) -> usize {
    sim.kinds()
        .iter()
        .position(|k| *k == kind)
        .unwrap_or_else(|| panic!("no {kind} in {:?}", sim.kinds()))
}

fn cmd_of(body: &EventBody) -> u32 {
    body.command_index().expect("a command record")
}

// ---------------------------------------------------------------------------------------------
// 3. One moment for issuing commands: when the method is called
// ---------------------------------------------------------------------------------------------

#[test]
fn signal_is_issued_when_called() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let sent = ctx.signal("s", &json!(1));
        let step = ctx.step("after", (), |_| async { Ok(7) });
        // Awaited in the opposite order.
        let n: i32 = step.await?;
        sent.await?;
        Ok(n)
    });
    let sim = assert_trio(&wf, Value::Null, |_| {});
    assert!(pos(&sim, "signal_sent") < pos(&sim, "step_completed"));
    assert_eq!(cmd_of(sim.entries("signal_sent")[0]), 1);
    assert_eq!(cmd_of(sim.entries("step_completed")[0]), 2);
    // join issues in argument order too.
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let (a, b) = join(
            ctx.signal("s", &json!(1)),
            ctx.step("x", (), |_| async { Ok(1) }),
        )
        .await;
        a?;
        b
    });
    let sim = assert_trio(&wf, Value::Null, |_| {});
    assert_eq!(cmd_of(sim.entries("signal_sent")[0]), 1);
}

#[test]
fn spawn_hook_is_issued_when_called() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let spawn = ctx.spawn_hook(SpawnOptions::new("greeter"));
        let step = ctx.step("after", (), |_| async { Ok(7) });
        let n: i32 = step.await?;
        let id = spawn.await?;
        Ok(json!({ "n": n, "id": id }))
    });
    let sim = assert_trio(&wf, Value::Null, |_| {});
    assert!(pos(&sim, "hook_spawned") < pos(&sim, "step_completed"));
    assert_eq!(cmd_of(sim.entries("hook_spawned")[0]), 1);
    assert_eq!(sim.output()["id"], format!("{RUN_ID}.h1"));
}

#[test]
fn exec_hook_is_issued_when_called() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let exec = ctx.exec_hook::<Value>(SpawnOptions::new("greeter"));
        let step = ctx.step("after", (), |_| async { Ok(7) });
        let n: i32 = step.await?;
        let got = exec.await?;
        Ok(json!({ "n": n, "got": got }))
    });
    let greeter_wf = workflow(greeter);
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        run_thread(sim.start_thread(&greeter_wf, &format!("{RUN_ID}.h1")));
        sim.deliver_signals();
    });
    // Spawn (1) and its wait (2) come before the step (3).
    assert_eq!(cmd_of(sim.entries("hook_spawned")[0]), 1);
    assert_eq!(cmd_of(sim.entries("signal_waited")[0]), 2);
    assert_eq!(cmd_of(sim.entries("step_completed")[0]), 3);
    assert!(pos(&sim, "signal_waited") < pos(&sim, "step_completed"));
    assert_eq!(sim.output()["got"]["greeting"], "hello ");
}

#[test]
fn wait_for_and_its_timeout_are_issued_when_called() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let wait = ctx.wait_for_timeout::<Value>("s", HOUR);
        let step = ctx.step("after", (), |_| async { Ok(7) });
        let n: i32 = step.await?;
        let got = wait.await?;
        Ok(json!({ "n": n, "got": got }))
    });
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        sim.signal("s", json!("hi"));
    });
    assert_eq!(cmd_of(sim.entries("signal_waited")[0]), 1);
    assert_eq!(cmd_of(sim.entries("timer_started")[0]), 2);
    assert_eq!(cmd_of(sim.entries("step_completed")[0]), 3);
    assert_eq!(sim.output(), json!({ "n": 7, "got": "hi" }));
}

// ---------------------------------------------------------------------------------------------
// 2. exec_hook completed by the return value; the signal id through ctx
// ---------------------------------------------------------------------------------------------

/// A hook function that returns without signalling.
async fn quiet(ctx: Ctx, args: Value) -> Result<Value, WorkflowError> {
    let signal = ctx.exec_signal_id();
    Ok(json!({ "args": args, "signal": signal }))
}

#[test]
fn exec_hook_is_completed_by_the_return_value() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let got: Value = ctx
            .exec_hook(SpawnOptions::new("quiet").args(json!({ "a": 1 })))
            .await?;
        Ok(got)
    });
    let quiet_wf = workflow(quiet);
    let signal_id = format!("{RUN_ID}.h1/done");
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        assert_eq!(sim.progress(), &Progress::Waiting);
        let thread = run_thread(sim.start_thread(&quiet_wf, &format!("{RUN_ID}.h1")));
        assert_eq!(thread.kinds(), ["run_started", "run_completed"]);
        assert_eq!(sim.deliver_signals(), 1);
    });
    // Args unchanged; the id came through ctx.
    assert_eq!(
        sim.output(),
        json!({ "args": { "a": 1 }, "signal": signal_id })
    );
}

#[test]
fn a_hook_that_signalled_is_not_signalled_again_by_its_return() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let got: Value = ctx.exec_hook(SpawnOptions::new("greeter")).await?;
        Ok(got)
    });
    let greeter_wf = workflow(greeter);
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        run_thread(sim.start_thread(&greeter_wf, &format!("{RUN_ID}.h1")));
        assert_eq!(sim.deliver_signals(), 1);
        // Nothing more was sent or kept.
        assert!(sim.store().kept.is_empty());
        assert!(sim.store().deliveries.is_empty());
    });
    assert_eq!(sim.output(), json!({ "greeting": "hello ", "runs": 1 }));
}

#[test]
fn exec_signal_id_is_none_outside_exec_threads_and_read_from_old_threads() {
    // A spawn_hook thread has none.
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        Ok(json!(ctx.spawn_hook(SpawnOptions::new("quiet")).await?))
    });
    let quiet_wf = workflow(quiet);
    let sim = assert_trio(&wf, Value::Null, |_| {});
    let thread = run_thread(sim.start_thread(&quiet_wf, &format!("{RUN_ID}.h1")));
    assert_eq!(thread.output()["signal"], Value::Null);

    // A thread written by the first release: `signal_id` spliced into its input, the same id
    // as its fail signal. Both the old args and `exec_signal_id` give it.
    let old_id = "old-run.h2/done";
    let thread = Sim::start_run(
        &quiet_wf,
        "old-run.h2",
        EventBody::RunStarted {
            workflow: "quiet".into(),
            input: json!({ "x": 1, "signal_id": old_id }),
            thread: Some(ThreadInfo {
                root_run: "old-run".into(),
                parent_run: "old-run".into(),
                retry: RetryPolicy::default(),
                fail_signal: Some(old_id.into()),
            }),
        },
        Store::shared(),
    );
    let thread = run_thread(thread);
    assert_eq!(
        thread.output(),
        json!({ "args": { "x": 1, "signal_id": old_id }, "signal": old_id })
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Timeouts and releases
// ---------------------------------------------------------------------------------------------

async fn wait_an_hour(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let got: Option<Value> = ctx.wait_for("s").timeout(HOUR).await?;
    Ok(json!({ "got": got }))
}

#[test]
fn a_wait_times_out_and_releases_its_wait() {
    let wf = workflow(wait_an_hour);
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        assert_eq!(sim.store().waits.len(), 1);
        assert!(sim.fire_due_timers(HOUR_MS - 1).is_empty());
        assert_eq!(sim.fire_due_timers(1), vec![2]);
        sim.settle();
    });
    assert_eq!(sim.output(), json!({ "got": null }));
    assert_eq!(
        sim.kinds(),
        [
            "run_started",
            "signal_waited",
            "timer_started",
            "timer_fired",
            "signal_released",
            "run_completed"
        ]
    );
    assert_eq!(
        sim.entries("signal_released")[0],
        &EventBody::SignalReleased {
            cmd: 3,
            wait_cmd: 1,
            signal_id: "s".into(),
            returned: false,
            delivered_to: None
        }
    );
    // The wait is gone: a later signal is kept, not lost to a dead wait.
    assert!(sim.store().waits.is_empty());
}

#[test]
fn a_wait_answered_before_its_timeout_returns_the_payload() {
    let wf = workflow(wait_an_hour);
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        sim.fire_due_timers(HOUR_MS / 2);
        sim.signal("s", json!("hi"));
        sim.settle();
    });
    assert_eq!(sim.output(), json!({ "got": "hi" }));
    assert!(sim.entries("signal_released").is_empty());
    assert!(sim.entries("timer_fired").is_empty());
}

#[test]
fn a_signal_after_the_timeout_is_kept_for_the_next_wait() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let first: Option<Value> = ctx.wait_for_timeout("s", HOUR).await?;
        ctx.sleep(HOUR).await?;
        let second: Value = ctx.wait_for("s").await?;
        Ok(json!({ "first": first, "second": second }))
    });
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        sim.fire_next_timer();
        sim.settle();
        // Sent while the run sleeps: nobody waits, so it is kept.
        assert_eq!(sim.signal("s", json!("late")), None);
        sim.fire_next_timer();
        sim.settle();
    });
    assert_eq!(sim.output(), json!({ "first": null, "second": "late" }));
}

#[test]
fn a_wait_that_loses_a_race_releases_its_wait() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let r = race(ctx.wait_for::<Value>("s"), ctx.sleep(HOUR)).await;
        let lost = matches!(r, Either::Right(_));
        // Later, a wait on the same id gets the next signal.
        let got: Value = ctx.wait_for("s").await?;
        Ok(json!({ "lost": lost, "got": got }))
    });
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        sim.fire_next_timer();
        sim.settle();
        assert_eq!(sim.store().waits.len(), 1, "only the second wait");
        assert_eq!(sim.signal("s", json!("x")), Some(RUN_ID.into()));
        sim.settle();
    });
    assert_eq!(sim.output(), json!({ "lost": true, "got": "x" }));
    let received = sim.entries("signal_received");
    assert!(matches!(
        received[0],
        EventBody::SignalReceived { wait_cmd: 4, .. }
    ));
}

#[test]
fn a_dropped_wait_gives_a_taken_payload_back_first_in_line() {
    // Two kept signals; a wait takes the first in the commit that journals it, and is dropped
    // before returning it: the payload goes back *first* in line, so the next wait gets it.
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        ctx.step("go", (), |_| async { Ok::<(), tether_core::StepError>(()) })
            .await?;
        drop(ctx.wait_for::<Value>("s"));
        let a: Value = ctx.wait_for("s").await?;
        let b: Value = ctx.wait_for("s").await?;
        Ok(json!([a, b]))
    });
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.signal("s", json!(1));
        sim.signal("s", json!(2));
        sim.settle();
    });
    assert_eq!(sim.output(), json!([1, 2]));
    assert_eq!(
        sim.entries("signal_released")[0],
        &EventBody::SignalReleased {
            cmd: 3,
            wait_cmd: 2,
            signal_id: "s".into(),
            returned: true,
            delivered_to: None
        }
    );
    assert!(sim.store().kept.is_empty());
}

#[test]
fn a_payload_given_back_goes_to_a_wait_already_there() {
    // Wait `a` receives a payload it never returns (dropped unread) while wait `b` on the same
    // id is registered: the payload goes to `b`, in the commit of the release.
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let a = ctx.wait_for::<Value>("s");
        let b = ctx.wait_for::<Value>("s");
        ctx.step("go", (), |_| async { Ok::<(), tether_core::StepError>(()) })
            .await?;
        drop(a);
        let got = b.await?;
        Ok(got)
    });
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.commit_outbox(); // both waits register; the step waits to run
        assert_eq!(sim.signal("s", json!("p1")), Some(RUN_ID.into())); // to `a`, the oldest
        sim.settle();
    });
    assert_eq!(sim.output(), json!("p1"));
    assert_eq!(
        sim.entries("signal_released")[0],
        &EventBody::SignalReleased {
            cmd: 4,
            wait_cmd: 1,
            signal_id: "s".into(),
            returned: true,
            delivered_to: Some(RUN_ID.into())
        }
    );
    let received = sim.entries("signal_received");
    assert!(matches!(
        received[1],
        EventBody::SignalReceived { wait_cmd: 2, .. }
    ));
    assert!(sim.store().waits.is_empty());
    assert!(sim.store().kept.is_empty());
}

#[test]
fn a_wait_that_loses_to_another_wait_is_forgotten() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let waiting = ctx.wait_for::<Value>("s");
        ctx.step("go", (), |_| async { Ok::<(), tether_core::StepError>(()) })
            .await?;
        let r = race(ctx.wait_for::<Value>("t"), ctx.wait_for::<Value>("s")).await;
        let first = match r {
            Either::Left(v) => json!({ "t": v? }),
            Either::Right(v) => json!({ "s": v? }),
        };
        let got = waiting.await?;
        Ok(json!({ "first": first, "waiting": got }))
    });
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.signal("t", json!("t1")); // kept: the race's wait on "t" takes it at once
        sim.settle();
        // The losing wait on "s" was forgotten: the next "s" goes to the first wait.
        assert_eq!(sim.store().waits.len(), 1);
        sim.signal("s", json!("s1"));
        sim.settle();
    });
    assert_eq!(
        sim.output(),
        json!({ "first": { "t": "t1" }, "waiting": "s1" })
    );
    let rel = sim.entries("signal_released");
    assert_eq!(rel.len(), 1);
    assert!(matches!(
        rel[0],
        EventBody::SignalReleased {
            wait_cmd: 4,
            returned: false,
            ..
        }
    ));
}

#[test]
fn a_cancelled_wait_is_released_and_later_commands_are_not_written() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        match ctx.wait_for::<Value>("s").await {
            Err(WorkflowError::Cancelled { .. }) => {
                // Issued after the cancel request: not written.
                let sent = ctx.signal("cleanup", &json!(1)).await;
                let waited = ctx.wait_for::<Value>("other").await;
                let spawned = ctx.spawn_hook(SpawnOptions::new("greeter")).await;
                Ok(json!({
                    "sent": sent.is_ok(),
                    "waited": waited.is_ok(),
                    "spawned": spawned.is_ok()
                }))
            }
            other => Ok(json!({ "unexpected": format!("{other:?}") })),
        }
    });
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        sim.cancel(Some("stop"));
        sim.settle();
    });
    assert_eq!(
        sim.output(),
        json!({ "sent": false, "waited": false, "spawned": false })
    );
    assert_eq!(
        sim.kinds(),
        [
            "run_started",
            "signal_waited",
            "cancel_requested",
            "signal_released",
            "run_completed"
        ]
    );
    assert!(sim.store().waits.is_empty());
    assert!(sim.store().spawned.is_empty());
    assert!(sim.store().kept.is_empty());
}
