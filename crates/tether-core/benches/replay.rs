//! Hot-path pieces of the sans-I/O core: decoding a stored journal, replaying a long journal
//! (what a restart or a cache miss costs), and feeding one payload to a live run (what a wake
//! costs once the entry is committed).
//!
//! `cargo bench -p tether-core --bench replay`

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use serde_json::{json, Value};
use tether_core::{
    Ctx, Environment, Event, EventBody, HookOptions, Progress, Registry, RunMachine,
    TestEnvironment, WorkflowError,
};

/// Payloads received before the bench journal ends (plus the run's start and the hook's record).
const PAYLOADS: usize = 9_998;

/// A run that takes payloads on one hook until one says `done`.
async fn stream(ctx: Ctx, _input: Value) -> Result<usize, WorkflowError> {
    let mut hook = ctx.create_hook::<Value>(HookOptions::new()).await?;
    let mut n = 0;
    loop {
        let p = hook.recv().await?;
        n += 1;
        if p.get("done").and_then(Value::as_bool) == Some(true) {
            return Ok(n);
        }
    }
}

fn env() -> Arc<dyn Environment> {
    Arc::new(TestEnvironment::new(1_700_000_000_000, 7))
}

/// Journal of a `stream` run: `RunStarted`, `HookCreated`, then `payloads` deliveries — built
/// by running the machine itself, as the engine would.
fn journal(registry: &Registry, payloads: usize) -> Vec<Event> {
    let workflow = registry.get("stream").expect("registered");
    let mut journal = vec![Event {
        seq: 1,
        at_ms: 1,
        body: EventBody::RunStarted {
            workflow: "stream".into(),
            input: Value::Null,
            thread: None,
        },
    }];
    let (mut m, _) = RunMachine::replay("r1", workflow.as_ref(), env(), &journal).expect("start");
    let push = |m: &mut RunMachine, journal: &mut Vec<Event>, body: EventBody| {
        let e = Event {
            seq: journal.len() as u64 + 1,
            at_ms: 1,
            body,
        };
        m.feed(&e).expect("feed");
        journal.push(e);
    };
    for body in m.take_outbox() {
        push(&mut m, &mut journal, body);
    }
    for i in 0..payloads {
        let body = EventBody::HookReceived {
            hook_cmd: 1,
            payload: json!({ "i": i, "text": "a message of ordinary size" }),
        };
        push(&mut m, &mut journal, body);
    }
    journal
}

fn benches(c: &mut Criterion) {
    let mut registry = Registry::new();
    registry.workflow("stream", stream);
    let workflow = registry.get("stream").expect("registered");
    let journal = journal(&registry, PAYLOADS);
    assert_eq!(journal.len(), 10_000);

    let encoded: Vec<String> = journal
        .iter()
        .map(|e| serde_json::to_string(&e.body).expect("encode"))
        .collect();
    c.bench_function("decode_journal_10k", |b| {
        b.iter(|| {
            encoded
                .iter()
                .map(|s| serde_json::from_str::<EventBody>(s).expect("decode"))
                .collect::<Vec<_>>()
        })
    });

    c.bench_function("replay_10k_events", |b| {
        b.iter(|| {
            let (m, progress) =
                RunMachine::replay("r1", workflow.as_ref(), env(), &journal).expect("replay");
            assert!(matches!(progress, Progress::Waiting));
            m.last_seq()
        })
    });

    // One delivery to a live run that waits on its hook: apply + poll until it waits again.
    let short = &journal[..2];
    c.bench_function("wake_live_run", |b| {
        b.iter_batched(
            || {
                let (m, _) =
                    RunMachine::replay("r1", workflow.as_ref(), env(), short).expect("replay");
                m
            },
            |mut m| {
                let e = Event {
                    seq: 3,
                    at_ms: 1,
                    body: EventBody::HookReceived {
                        hook_cmd: 1,
                        payload: json!({ "i": 0 }),
                    },
                };
                m.feed(&e).expect("feed")
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(core, benches);
criterion_main!(core);
