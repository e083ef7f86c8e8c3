//! Random batches of write ops over a small universe of ids, so that ops collide: the same
//! run created twice, a token held by another run, a key reused with another payload (of a
//! resume or of a signal), a fence gone stale, a signal waited on by two runs, a write to a
//! finished run.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use serde_json::{json, Value};
use tether_core::event::{CommandIndex, ErrorInfo, EventBody, RunStatus, HOOK_KIND_TOKEN};
use tether_core::RetryPolicy;
use tether_store::{ClaimIfFree, Fence, FirstClaim, HookRef, WakeAt, WriteOp};

/// The base time every op is stamped relative to.
pub const T0: u64 = 1_700_000_000_000;
/// Run ids (the `h` ones are also the ids hook threads are spawned with).
pub const RUN_IDS: &[&str] = &["r0", "r1", "r2", "h0", "h1"];
/// Ids hook threads are spawned with: mostly fresh, one taken by a run.
const THREAD_IDS: &[&str] = &["h0", "h1", "r1"];
/// Hook tokens.
pub const TOKENS: &[&str] = &["t0", "t1", "t2"];
/// Signal ids.
const SIGNALS: &[&str] = &["s0", "s1"];
/// Nodes.
pub const NODES: &[&str] = &["n0", "n1"];
/// State keys.
const KEYS: &[&str] = &["k0", "k1"];
/// Idempotency keys.
const IDEMPOTENCY_KEYS: &[&str] = &["i0", "i1"];
/// Workflows.
const WORKFLOWS: &[&str] = &["w0", "w1"];

/// One of `items`.
fn one_of(items: &'static [&'static str]) -> impl Strategy<Value = String> + Clone {
    proptest::sample::select(items).prop_map(str::to_owned)
}

/// A small JSON value: integers (the largest too, for increments), strings (one with a NUL
/// character, which not every database's JSON type holds), a float, an object (so
/// `StateIncr` meets non-integers).
fn value() -> impl Strategy<Value = Value> + Clone {
    prop_oneof![
        6 => (0i64..3).prop_map(|n| json!(n)),
        1 => Just(json!(i64::MAX)),
        2 => Just(json!("x")),
        1 => Just(json!("a\u{0}b")),
        1 => Just(json!(1.5)),
        2 => (0i64..2).prop_map(|n| json!({ "n": n, "tag": "p" })),
    ]
}

/// A run id: mostly the runs every case starts with, sometimes a thread or an unknown id.
fn run_id() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        4 => Just("r0"),
        4 => Just("r1"),
        2 => Just("r2"),
        1 => Just("h0"),
        1 => Just("h1"),
    ]
    .prop_map(str::to_owned)
}

/// A time near [`T0`] (ties are common, to exercise the orders' tie-breaks).
fn at() -> impl Strategy<Value = u64> + Clone {
    (0u64..4).prop_map(|d| T0 + d)
}

/// A command index (few, so releases and disposals meet what they name).
fn cmd() -> impl Strategy<Value = CommandIndex> + Clone {
    0u32..4
}

/// An error.
fn error() -> impl Strategy<Value = ErrorInfo> + Clone {
    one_of(&["boom", "bad"]).prop_map(|code| ErrorInfo::new(code.clone(), format!("{code}!")))
}

/// A fence: mostly plausible epochs (a run's first claim is epoch 1).
fn fence() -> impl Strategy<Value = Fence> + Clone {
    (one_of(NODES), 0u64..4).prop_map(|(node, epoch)| Fence { node, epoch })
}

/// A journal entry an engine would append (the store fills the outputs it owns).
fn event() -> impl Strategy<Value = EventBody> {
    prop_oneof![
        3 => (cmd(), value()).prop_map(|(cmd, output)| EventBody::StepCompleted {
            cmd,
            name: "step".to_owned(),
            output,
            attempts: 1,
        }),
        1 => (cmd(), error()).prop_map(|(cmd, error)| EventBody::StepFailed {
            cmd,
            name: "step".to_owned(),
            error,
            attempts: 2,
        }),
        1 => (cmd(), at()).prop_map(|(cmd, fire_at_ms)| EventBody::TimerStarted { cmd, fire_at_ms }),
        1 => cmd().prop_map(|cmd| EventBody::TimerFired { cmd }),
        8 => (
            (cmd(), one_of(TOKENS), prop::bool::ANY, option::of(value())),
            (option::of(at()), option::of(0u64..3)),
        )
            .prop_map(|((cmd, token, generated, metadata), (expires_at_ms, reserve_ms))| {
                EventBody::HookCreated {
                    cmd,
                    token,
                    kind: HOOK_KIND_TOKEN.to_owned(),
                    metadata: metadata.unwrap_or(Value::Null),
                    definition: None,
                    generated,
                    expires_at_ms,
                    reserve_ms,
                }
            }),
        2 => (cmd(), one_of(TOKENS)).prop_map(|(hook_cmd, token)| {
            EventBody::HookExpired { hook_cmd, token }
        }),
        3 => (cmd(), cmd(), one_of(TOKENS)).prop_map(|(cmd, hook_cmd, token)| {
            EventBody::HookDisposed { cmd, hook_cmd, token }
        }),
        1 => (cmd(), 0u64..3).prop_map(|(cmd, ms)| EventBody::Now { cmd, ms: T0 + ms }),
        2 => (cmd(), one_of(KEYS)).prop_map(|(cmd, key)| EventBody::StateGet {
            cmd,
            key,
            value: None,
        }),
        3 => (cmd(), one_of(KEYS), value()).prop_map(|(cmd, key, value)| EventBody::StateSet {
            cmd,
            key,
            value,
        }),
        3 => (cmd(), one_of(KEYS), -2i64..3).prop_map(|(cmd, key, by)| EventBody::StateIncr {
            cmd,
            key,
            by,
            value: None,
        }),
        2 => (cmd(), one_of(KEYS)).prop_map(|(cmd, key)| EventBody::StateDelete {
            cmd,
            key,
            existed: false,
        }),
        2 => (cmd(), one_of(THREAD_IDS), one_of(WORKFLOWS), value()).prop_map(
            |(cmd, hook_id, workflow, args)| EventBody::HookSpawned {
                cmd,
                hook_id,
                workflow,
                task_queue: "default".to_owned(),
                args,
                retry: RetryPolicy::default(),
                fail_signal: None,
            }
        ),
        2 => (cmd(), one_of(THREAD_IDS), one_of(WORKFLOWS), value(), any::<bool>()).prop_map(
            |(cmd, child_run_id, workflow, input, detached)| EventBody::ChildStarted {
                cmd,
                child_run_id,
                workflow,
                input,
                detached,
            }
        ),
        4 => (cmd(), one_of(SIGNALS), value()).prop_map(|(cmd, signal_id, payload)| {
            EventBody::SignalSent {
                cmd,
                signal_id,
                payload,
                delivered_to: None,
            }
        }),
        5 => (cmd(), one_of(SIGNALS)).prop_map(|(cmd, signal_id)| EventBody::SignalWaited {
            cmd,
            signal_id,
        }),
        4 => (cmd(), cmd(), one_of(SIGNALS)).prop_map(|(cmd, wait_cmd, signal_id)| {
            EventBody::SignalReleased {
                cmd,
                wait_cmd,
                signal_id,
                returned: false,
                delivered_to: None,
            }
        }),
        1 => (1u32..3, error(), at()).prop_map(|(attempt, error, retry_at_ms)| {
            EventBody::AttemptFailed {
                attempt,
                error,
                retry_at_ms,
            }
        }),
        1 => option::of(one_of(&["why"])).prop_map(|reason| EventBody::CancelRequested { reason }),
        1 => value().prop_map(|output| EventBody::RunCompleted { output }),
        1 => error().prop_map(|error| EventBody::RunFailed { error }),
        1 => option::of(one_of(&["stop"])).prop_map(|reason| EventBody::RunCancelled { reason }),
    ]
}

/// A non-terminal status an append may set.
fn status() -> impl Strategy<Value = Option<RunStatus>> {
    option::of(prop_oneof![
        Just(RunStatus::Pending),
        Just(RunStatus::Running),
        Just(RunStatus::Suspended),
    ])
}

/// A change of wake-up time.
fn wake_at() -> impl Strategy<Value = WakeAt> {
    prop_oneof![
        2 => Just(WakeAt::Keep),
        1 => Just(WakeAt::Set(None)),
        1 => at().prop_map(|t| WakeAt::Set(Some(t))),
    ]
}

/// One write op.
fn op() -> impl Strategy<Value = WriteOp> {
    prop_oneof![
        3 => (
            run_id(),
            one_of(WORKFLOWS),
            value(),
            at(),
            option::of((one_of(NODES), 0u64..3)),
        )
            .prop_map(|(run_id, workflow, input, at_ms, claim)| WriteOp::CreateRun {
        queue: tether_store::DEFAULT_QUEUE.into(),
                run_id,
                workflow,
                input,
                at_ms,
                claim: claim.map(|(node, lease)| FirstClaim {
                    node,
                    lease_until_ms: T0 + lease * 1_000,
                }),
            }),
        8 => (
            run_id(),
            vec(event(), 0..4),
            status(),
            wake_at(),
            option::weighted(0.2, fence()),
            at(),
        )
            .prop_map(|(run_id, events, status, wake_at, fence, at_ms)| WriteOp::Append {
                run_id,
                events,
                status,
                wake_at,
                fence,
                at_ms,
            }),
        8 => (
            one_of(TOKENS),
            value(),
            option::of(one_of(IDEMPOTENCY_KEYS)),
            option::weighted(0.2, (run_id(), cmd())),
            option::weighted(0.3, (one_of(NODES), 0u64..3)),
            at(),
        )
            .prop_map(
                |(token, payload, idempotency_key, expect, claim, at_ms)| WriteOp::Resume {
                    token,
                    payload,
                    idempotency_key,
                    expect: expect.map(|(run_id, hook_cmd)| HookRef { run_id, hook_cmd }),
                    claim: claim.map(|(node, lease)| ClaimIfFree {
                        node,
                        lease_until_ms: T0 + lease * 1_000,
                        queues: Default::default(),
                    }),
                    at_ms,
                }
            ),
        1 => (run_id(), option::of(one_of(&["why"])), at()).prop_map(
            |(run_id, reason, at_ms)| WriteOp::RequestCancel {
                run_id,
                reason,
                at_ms,
            }
        ),
        1 => (run_id(), 0u64..5).prop_map(|(run_id, applied_seq)| WriteOp::Checkpoint {
            run_id,
            applied_seq,
        }),
        1 => (run_id(), error(), option::weighted(0.2, fence()), at()).prop_map(
            |(run_id, error, fence, at_ms)| WriteOp::MarkBlocked {
                run_id,
                error,
                fence,
                at_ms,
            }
        ),
        2 => (run_id(), one_of(NODES), 0u64..3, 0u64..3).prop_map(
            |(run_id, node, lease, now)| WriteOp::Claim {
        queues: Default::default(),
                run_id,
                node,
                lease_until_ms: T0 + lease * 1_000,
                now_ms: T0 + now * 1_000,
            }
        ),
        1 => (run_id(), fence()).prop_map(|(run_id, fence)| WriteOp::Release {
            run_id,
            fence,
        }),
        3 => (
            one_of(SIGNALS),
            value(),
            option::of(one_of(IDEMPOTENCY_KEYS)),
            at(),
        )
            .prop_map(|(signal_id, payload, idempotency_key, at_ms)| WriteOp::Signal {
                signal_id,
                payload,
                idempotency_key,
                at_ms,
            }),
        1 => (run_id(), one_of(THREAD_IDS), one_of(WORKFLOWS), value(), at()).prop_map(
            |(run_id, hook_id, workflow, args, at_ms)| WriteOp::SpawnHook {
        queue: tether_store::DEFAULT_QUEUE.into(),
                run_id,
                hook_id,
                workflow,
                args,
                retry: RetryPolicy::default(),
                at_ms,
            }
        ),
        1 => (one_of(NODES), 0u64..3).prop_map(|(node, lease)| WriteOp::RenewLeases {
            node,
            lease_until_ms: T0 + lease * 1_000,
        }),
    ]
}

/// A sequence of batches (each one group commit), starting with runs created so that most
/// ops find something to act on.
pub fn batches() -> impl Strategy<Value = Vec<Vec<WriteOp>>> {
    vec(vec(op(), 1..8), 1..12).prop_map(|mut batches| {
        // r1 starts claimed by n0 (epoch 1), so that other claims meet a live lease.
        let seed: Vec<WriteOp> = [("r0", None), ("r1", Some("n0")), ("r2", None)]
            .iter()
            .map(|(run_id, node)| WriteOp::CreateRun {
                queue: tether_store::DEFAULT_QUEUE.into(),
                run_id: (*run_id).to_owned(),
                workflow: "w0".to_owned(),
                input: json!(null),
                at_ms: T0,
                claim: node.map(|node| FirstClaim {
                    node: node.to_owned(),
                    lease_until_ms: T0 + 1_000,
                }),
            })
            .collect();
        batches.insert(0, seed);
        batches
    })
}
