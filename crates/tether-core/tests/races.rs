//! Races: `race(a, b)` returns the first branch to finish and drops the other. Live and replay
//! agree on the winner because the machine applies one journal entry at a time and polls in
//! between: whichever delivery comes first in the journal wins. A dropped `hook.recv()` takes
//! no payload, so the losing branch never eats one.

mod harness;

use std::time::Duration;

use harness::{assert_trio, replay, workflow, Rng, Sim};
use serde_json::{json, Value};
use tether_core::{race, Ctx, Either, Event, EventBody, HookOptions, Progress, WorkflowError};

/// Collect payloads until ten seconds pass without one.
async fn until_quiet(ctx: Ctx, _: Value) -> Result<Vec<u32>, WorkflowError> {
    let mut hook = ctx
        .create_hook::<u32>(HookOptions::new().token("events"))
        .await?;
    let mut got = Vec::new();
    loop {
        match race(hook.recv(), ctx.sleep(Duration::from_secs(10))).await {
            Either::Left(payload) => got.push(payload?),
            Either::Right(timer) => {
                timer?;
                break;
            }
        }
    }
    Ok(got)
}

#[test]
fn a_payload_before_the_timer_wins() {
    let wf = workflow(until_quiet);
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        assert_eq!(sim.pending_timers().len(), 1);
        // The payload and the timer are both journaled before the run looks: payload first.
        sim.env.advance(10_000);
        sim.resume(1, json!(7));
        sim.push(EventBody::TimerFired { cmd: 2 }).unwrap();
        sim.settle();
        // The hook branch won: a new round, with a new timer.
        assert_eq!(sim.progress(), &Progress::Waiting);
        assert_eq!(sim.fire_next_timer(), Some(3));
    });
    assert_eq!(sim.output(), json!([7]));
    assert_eq!(
        sim.kinds(),
        [
            "run_started",
            "hook_created",
            "timer_started",
            "hook_received",
            "timer_fired",
            "timer_started",
            "timer_fired",
            "hook_disposed",
            "run_completed"
        ]
    );
}

#[test]
fn a_timer_before_the_payload_wins() {
    let wf = workflow(until_quiet);
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        // Same two deliveries, the other order: timer first.
        assert_eq!(sim.fire_due_timers(10_000), [2]);
        sim.resume(1, json!(7));
    });
    assert_eq!(sim.output(), json!([]));
    assert_eq!(
        sim.kinds(),
        [
            "run_started",
            "hook_created",
            "timer_started",
            "timer_fired",
            "hook_received",
            "hook_disposed",
            "run_completed"
        ]
    );
}

#[test]
fn journal_order_alone_decides_the_winner() {
    let wf = workflow(until_quiet);
    let mut sim = Sim::start(&wf, Value::Null);
    sim.settle();
    sim.env.advance(10_000);
    sim.resume(1, json!(7));
    sim.push(EventBody::TimerFired { cmd: 2 }).unwrap();
    let recorded: Vec<Event> = sim.journal().to_vec();
    assert_eq!(recorded.len(), 5);

    // As journaled: the payload wins and the loop goes on.
    let as_is = replay(&wf, &recorded).expect("replay");
    assert_eq!(as_is.progress, Progress::Waiting);
    assert!(matches!(
        as_is.outbox[..],
        [EventBody::TimerStarted { cmd: 3, .. }]
    ));

    // The same entries with the two deliveries swapped: the timer wins, nothing was received.
    let mut swapped = recorded.clone();
    swapped.swap(3, 4);
    swapped[3].seq = 4;
    swapped[4].seq = 5;
    let other = replay(&wf, &swapped).expect("replay");
    assert_eq!(
        other.progress,
        Progress::Finished(EventBody::RunCompleted { output: json!([]) })
    );
}

/// Which branch wins when both are ready at the same poll; then take what the loser left.
async fn tie(ctx: Ctx, input: Value) -> Result<String, WorkflowError> {
    let mut hook = ctx
        .create_hook::<u32>(HookOptions::new().token("tie"))
        .await?;
    let mut step = Box::pin(ctx.step("work", (), |()| async { Ok(1u32) }));
    // While the workflow sleeps, the step finishes and a payload arrives.
    ctx.sleep(Duration::from_secs(1)).await?;
    let hook_won = if input["hook_first"] == json!(true) {
        match race(hook.recv(), step.as_mut()).await {
            Either::Left(p) => Some(p?),
            Either::Right(s) => s.map(|_| None)?,
        }
    } else {
        match race(step.as_mut(), hook.recv()).await {
            Either::Left(s) => s.map(|_| None)?,
            Either::Right(p) => Some(p?),
        }
    };
    // The losing branch left its value where it was.
    Ok(match hook_won {
        Some(p) => format!("hook {p} won, then step {}", step.await?),
        None => format!("step won, then hook {}", hook.recv().await?),
    })
}

fn drive_tie(sim: &mut Sim) {
    sim.commit_outbox();
    sim.run_steps();
    sim.resume(1, json!(5));
    sim.fire_due_timers(1_000);
}

#[test]
fn on_a_tie_the_first_branch_wins() {
    let wf = workflow(tie);
    let sim = assert_trio(&wf, json!({ "hook_first": true }), drive_tie);
    assert_eq!(sim.output(), json!("hook 5 won, then step 1"));
    let sim = assert_trio(&wf, json!({ "hook_first": false }), drive_tie);
    assert_eq!(sim.output(), json!("step won, then hook 5"));
}

/// Race `hook.recv()` against a short sleep for `input.rounds` rounds.
async fn racer(ctx: Ctx, input: Value) -> Result<Value, WorkflowError> {
    let rounds = input["rounds"].as_u64().unwrap_or(0);
    let mut hook = ctx
        .create_hook::<u32>(HookOptions::new().token("feed"))
        .await?;
    let mut got = Vec::new();
    let mut timeouts = 0;
    let hook_first = input["hook_first"] == json!(true);
    for _ in 0..rounds {
        let nap = ctx.sleep(Duration::from_millis(10));
        // The hook as the first or as the second branch: the loser must not eat either way.
        let payload = if hook_first {
            match race(hook.recv(), nap).await {
                Either::Left(p) => Some(p?),
                Either::Right(t) => t.map(|()| None)?,
            }
        } else {
            match race(nap, hook.recv()).await {
                Either::Left(t) => t.map(|()| None)?,
                Either::Right(p) => Some(p?),
            }
        };
        match payload {
            Some(p) => got.push(p),
            None => timeouts += 1,
        }
    }
    Ok(json!({ "got": got, "timeouts": timeouts }))
}

/// Feed `total` payloads at pseudo-random points while the racer's timers fire: sometimes
/// before the new round's timer is committed, sometimes in a burst, sometimes together with the
/// round's timer (in either order) before the run has looked at either. Payloads stop well
/// before the last round, so that every one of them can be received.
fn feed_randomly(sim: &mut Sim, seed: u64, total: u32, rounds: u64) -> u32 {
    let mut rng = Rng::new(seed);
    let mut sent = 0;
    while !matches!(sim.progress(), Progress::Finished(_)) {
        if rng.chance(2, 3) {
            sim.settle();
        }
        let rounds_started = sim.entries("timer_started").len() as u64;
        let may_send = sent < total && rounds_started + 20 < rounds;
        match rng.next_u64() % 4 {
            0 | 1 if may_send => {
                let burst = 1 + rng.next_u64() % 3;
                for _ in 0..burst.min(u64::from(total - sent)) {
                    sim.resume(1, json!(sent));
                    sent += 1;
                }
            }
            2 if may_send => {
                sim.settle();
                let timer = sim.pending_timers()[0];
                sim.env.advance_to(timer.fire_at_ms);
                let fired = EventBody::TimerFired { cmd: timer.cmd };
                if rng.chance(1, 2) {
                    sim.resume(1, json!(sent));
                    sim.push(fired).unwrap();
                } else {
                    sim.push(fired).unwrap();
                    sim.resume(1, json!(sent));
                }
                sent += 1;
            }
            _ => {
                sim.settle();
                if !matches!(sim.progress(), Progress::Finished(_)) {
                    sim.fire_next_timer()
                        .expect("the racer always waits on a timer");
                }
            }
        }
    }
    sent
}

#[test]
fn the_losing_branch_never_eats_a_payload() {
    const ROUNDS: u64 = 200;
    const TOTAL: u32 = 60;
    let wf = workflow(racer);
    for (seed, hook_first) in [(1, true), (0xfeed, true), (20240601, false), (7, false)] {
        let input = json!({ "rounds": ROUNDS, "hook_first": hook_first });
        let mut sent = 0;
        let sim = assert_trio(&wf, input, |sim| {
            sent = feed_randomly(sim, seed, TOTAL, ROUNDS);
        });
        assert_eq!(sent, TOTAL, "seed {seed}: every payload was sent");
        let out = sim.output();
        let expected: Vec<u32> = (0..TOTAL).collect();
        assert_eq!(
            out["got"],
            json!(expected),
            "seed {seed}: each payload received once, in order"
        );
        assert_eq!(out["timeouts"], json!(ROUNDS - u64::from(TOTAL)));
        assert_eq!(sim.entries("hook_received").len(), TOTAL as usize);
        // The seed produced the interleavings this test is about.
        let kinds = sim.kinds();
        let adjacent = |a: &str, b: &str| kinds.windows(2).any(|w| w[0] == a && w[1] == b);
        assert!(adjacent("hook_received", "timer_fired"), "seed {seed}");
        assert!(adjacent("timer_fired", "hook_received"), "seed {seed}");
        assert!(adjacent("hook_received", "hook_received"), "seed {seed}");
        assert!(adjacent("hook_received", "timer_started"), "seed {seed}");
    }
}
