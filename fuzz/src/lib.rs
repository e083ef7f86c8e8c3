//! The properties the fuzz targets check, one function per target. Each panics when Tether
//! mishandles the input. The same file is compiled into
//! `crates/tether-server/tests/fuzz_regressions.rs`, which runs every saved input under
//! `fuzz/regressions/<target>/` in the normal `cargo test`, without cargo-fuzz.

use std::sync::{Arc, OnceLock};

use serde_json::{json, Value};
use tether_core::{
    Ctx, Event, EventBody, HookOptions, Progress, Registry, RetryPolicy, RunMachine,
    TestEnvironment, WebhookBody, WebhookRequest,
};
use tether_server::fuzzing::{decode_body, webhook_request as build_webhook, BodyKind};

/// Request bodies as the handlers decode them: an error is always `400 invalid_json` (never a
/// panic, never another status), and the approval hook's validator never panics.
pub fn body_decode(data: &[u8]) {
    for kind in [
        BodyKind::StartRun,
        BodyKind::SpawnHook,
        BodyKind::Cancel,
        BodyKind::Payload,
    ] {
        if let Err(e) = decode_body(kind, data) {
            assert_eq!(e.status.as_u16(), 400, "{kind:?}: {e:?}");
            assert_eq!(e.code, "invalid_json", "{kind:?}");
        }
    }
    if let Ok(v) = serde_json::from_slice::<Value>(data) {
        let validate = tether_examples::approval::decision_hook().validator();
        let _ = validate(&v);
    }
}

/// The example registry plus workflows that use every primitive.
fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut r = Registry::new();
        tether_examples::register(&mut r);
        r.workflow("token", |ctx: Ctx, token: String| async move {
            ctx.create_hook::<Value>(HookOptions::new().token(token))
                .await?
                .await
        });
        r.workflow("key", |ctx: Ctx, key: String| async move {
            let v: Option<Value> = ctx.get(&key).await?;
            ctx.incr(&key, 1).await?;
            let _ = ctx.wait_for::<Value>(&key).await?;
            Ok(v)
        });
        r
    })
}

const WORKFLOWS: &[&str] = &[
    "approval",
    "collect",
    "slack_bot",
    "handoff",
    "timeout_approval",
    "steps",
    "enrich",
    "enrich_hook",
    "wait_signal",
    "webhook_echo",
    "key",
];

const NAMES: &[&str] = &["step-0", "step-1", "webhook.respond_with", "k", "s", ""];

/// A journal built from bytes: the first picks the workflow, then 6 bytes per entry.
fn build_journal(data: &[u8]) -> (String, Vec<Event>) {
    let workflow = WORKFLOWS[usize::from(data.first().copied().unwrap_or(0)) % WORKFLOWS.len()];
    let input = json!({
        "order_id": "o", "channel": "c", "name": "n", "wait": true, "n": 2,
        "timeout_ms": 1000, "signal_id": "s", "mode": "manual"
    });
    let mut journal = vec![Event {
        seq: 1,
        at_ms: 0,
        body: EventBody::RunStarted {
            workflow: workflow.to_string(),
            input,
            thread: None,
        },
    }];
    for (i, c) in data.get(1..).unwrap_or(&[]).chunks(6).enumerate() {
        let b = |k: usize| c.get(k).copied().unwrap_or(0);
        let cmd = u32::from(b(1) % 12);
        let name = NAMES[usize::from(b(3)) % NAMES.len()].to_string();
        let payload = match b(4) % 5 {
            0 => {
                json!({"approved": b(5) % 2 == 0, "comment": "c", "text": "/stop", "message": "m", "handoff": true})
            }
            1 => json!(b(5)),
            2 => Value::Null,
            3 => json!({"type": "json", "value": {"a": 1}}),
            _ => {
                json!({"request_id": "r", "method": "POST", "path": "/", "query": {}, "headers": {}, "body": null})
            }
        };
        let err = tether_core::ErrorInfo::new("e", "m");
        let body = match b(0) % 22 {
            0 => EventBody::StepCompleted {
                cmd,
                name,
                output: payload,
                attempts: 1,
            },
            1 => EventBody::StepFailed {
                cmd,
                name,
                error: err,
                attempts: u32::from(b(5)),
            },
            2 => EventBody::TimerStarted {
                cmd,
                fire_at_ms: u64::from(b(5)) * 1000,
            },
            3 => EventBody::TimerFired { cmd },
            4 => EventBody::HookCreated {
                cmd,
                token: name,
                kind: if b(5) % 2 == 0 {
                    "hook".into()
                } else {
                    "webhook".into()
                },
                metadata: payload,
                definition: None,
                generated: b(5) % 3 == 0,
                expires_at_ms: (b(5) % 2 == 0).then(|| u64::from(b(5)) * 1000),
                reserve_ms: None,
            },
            5 => EventBody::HookConflict {
                cmd,
                token: name,
                holder_run: "r".into(),
            },
            6 | 7 => EventBody::HookReceived {
                hook_cmd: cmd,
                payload,
            },
            8 => EventBody::HookDisposed {
                cmd,
                hook_cmd: u32::from(b(5) % 12),
                token: name,
            },
            9 => EventBody::Now {
                cmd,
                ms: u64::from(b(5)),
            },
            10 => EventBody::Random {
                cmd,
                value: u64::from(b(5)),
            },
            11 => EventBody::Uuid { cmd, value: name },
            12 => EventBody::StateGet {
                cmd,
                key: name,
                value: Some(payload),
            },
            13 => EventBody::StateIncr {
                cmd,
                key: name,
                by: 1,
                value: Some(i64::from(b(5))),
            },
            14 => EventBody::SignalWaited {
                cmd,
                signal_id: name,
            },
            15 => EventBody::SignalReceived {
                wait_cmd: cmd,
                payload,
            },
            16 => EventBody::AttemptFailed {
                attempt: u32::from(b(5)),
                error: err,
                retry_at_ms: 0,
            },
            17 => EventBody::CancelRequested { reason: Some(name) },
            18 => EventBody::RunCompleted { output: payload },
            19 => EventBody::HookSpawned {
                cmd,
                hook_id: "h".into(),
                workflow: name,
                task_queue: "default".into(),
                args: payload,
                retry: RetryPolicy::default(),
                fail_signal: None,
            },
            20 => EventBody::StateSet {
                cmd,
                key: name,
                value: payload,
            },
            _ => EventBody::SignalSent {
                cmd,
                signal_id: name,
                payload,
                delivered_to: None,
            },
        };
        // Mostly dense positions; sometimes a gap, a repeat or zero.
        let seq = match b(2) {
            0xFF => u64::from(b(5)),
            0xFE => u64::MAX - u64::from(b(5)),
            _ => i as u64 + 2,
        };
        journal.push(Event {
            seq,
            at_ms: u64::from(b(2)),
            body,
        });
    }
    (workflow.to_string(), journal)
}

/// An entry as its JSON encoding keeps it: a state read of a key holding `null` is recorded
/// like a read of an absent key (and `ctx.get` reads both as `None`, live and on replay; found
/// by this target).
fn normalized(body: EventBody) -> EventBody {
    match body {
        EventBody::StateGet {
            cmd,
            key,
            value: Some(Value::Null),
        } => EventBody::StateGet {
            cmd,
            key,
            value: None,
        },
        other => other,
    }
}

/// Replay `journal` with the registered workflow and feed it again entry by entry: never a
/// panic, only `Ok` or a `ReplayError`. An intact prefix that replays must replay the same way
/// twice (determinism), and the journal must survive the store's JSON encoding unchanged.
fn check_replay(workflow: &str, journal: &[Event]) {
    for e in journal {
        let text = serde_json::to_string(&e.body).expect("encode a body");
        let back: EventBody = serde_json::from_str(&text).expect("decode an encoded body");
        assert_eq!(
            normalized(back),
            normalized(e.body.clone()),
            "the store encoding changed an entry: {text}"
        );
    }
    let Some(wf) = registry().get(workflow) else {
        return;
    };
    let env = Arc::new(TestEnvironment::new(1_000, 7));
    let first = RunMachine::replay("run", wf.as_ref(), env.clone(), journal);
    let second = RunMachine::replay("run", wf.as_ref(), env, journal);
    match (&first, &second) {
        (Ok((_, p1)), Ok((_, p2))) => assert_eq!(p1, p2, "two replays disagree"),
        (Err(e1), Err(e2)) => {
            assert_eq!(e1, e2, "two replays disagree");
            let _ = e1.to_info();
        }
        _ => panic!("two replays disagree: {first:?} / {second:?}"),
    }
    if let Ok((mut m, progress)) = first {
        let _ = m.take_outbox();
        let _ = m.take_step_tasks();
        let _ = m.pending_timers();
        if progress == Progress::Waiting {
            for e in journal {
                let _ = m.feed(e);
            }
        }
    }
}

/// Journal entries from outside (JSON, as `GET /v1/runs/{id}/events` shows them and stores
/// hold them) and journals built from bytes, replayed against the example workflows.
pub fn journal_replay(data: &[u8]) {
    if data.first() == Some(&b'[') {
        if let Ok(journal) = serde_json::from_slice::<Vec<Event>>(data) {
            let workflow = match journal.first().map(|e| &e.body) {
                Some(EventBody::RunStarted { workflow, .. }) => workflow.clone(),
                _ => "approval".into(),
            };
            check_replay(&workflow, &journal);
        }
        return;
    }
    if data.first() == Some(&b'{') {
        if let Ok(e) = serde_json::from_slice::<Event>(data) {
            let text = serde_json::to_string(&e).expect("encode an event");
            let back: Event = serde_json::from_str(&text).expect("decode an encoded event");
            assert_eq!(
                normalized(back.body),
                normalized(e.body),
                "an event changed through JSON: {text}"
            );
            assert_eq!((back.seq, back.at_ms), (e.seq, e.at_ms));
        }
        return;
    }
    let (workflow, journal) = build_journal(data);
    check_replay(&workflow, &journal);
}

/// Tokens, keys and signal ids chosen by workflow code: accepted exactly when they are 1 to
/// 512 bytes without NUL, refused with a run failure (not a panic) otherwise, and journaled
/// unchanged.
pub fn names(data: &[u8]) {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    let acceptable = !name.is_empty() && name.len() <= 512 && !name.contains('\0');
    assert_eq!(
        tether_core::error::check_name("a name", name).is_ok(),
        acceptable,
        "check_name({name:?})"
    );
    for workflow in ["token", "key"] {
        let Some(wf) = registry().get(workflow) else {
            return;
        };
        let journal = [Event {
            seq: 1,
            at_ms: 0,
            body: EventBody::RunStarted {
                workflow: workflow.into(),
                input: Value::String(name.to_string()),
                thread: None,
            },
        }];
        let env = Arc::new(TestEnvironment::new(1_000, 7));
        let (mut m, progress) =
            RunMachine::replay("run", wf.as_ref(), env, &journal).expect("a fresh run replays");
        let outbox = m.take_outbox();
        if acceptable {
            assert_eq!(progress, Progress::Waiting, "{workflow} {name:?}");
            let first = outbox.first().expect("a command");
            let recorded = match first {
                EventBody::HookCreated { token, .. } => token,
                EventBody::StateGet { key, .. } => key,
                other => panic!("unexpected {other:?}"),
            };
            assert_eq!(recorded, name, "journaled as given");
        } else {
            assert!(outbox.is_empty(), "{workflow} {name:?} issued {outbox:?}");
            match progress {
                Progress::Finished(EventBody::RunFailed { error }) => {
                    assert!(!error.code.is_empty());
                }
                other => panic!("{workflow} {name:?}: expected a failed run, got {other:?}"),
            }
        }
    }
}

/// Split `data` at the first `sep` (the rest is empty when there is none).
fn split(data: &[u8], sep: u8) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == sep) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// Method, query and headers (one per line, `name: value`) up to an empty line; the rest is
/// the body.
fn parse_request(data: &[u8]) -> (String, Option<String>, axum::http::HeaderMap, &[u8]) {
    let (method, rest) = split(data, b'\n');
    let (query, mut rest) = split(rest, b'\n');
    let mut headers = axum::http::HeaderMap::new();
    loop {
        let (line, after) = split(rest, b'\n');
        rest = after;
        if line.is_empty() {
            break;
        }
        let (name, value) = split(line, b':');
        if let (Ok(n), Ok(v)) = (
            axum::http::HeaderName::from_bytes(name),
            axum::http::HeaderValue::from_bytes(value.trim_ascii()),
        ) {
            headers.append(n, v);
        }
    }
    let method = String::from_utf8_lossy(method).into_owned();
    let query = std::str::from_utf8(query).ok().map(str::to_owned);
    (method, query, headers, rest)
}

/// A webhook call as the workflow receives it: it survives the JSON journal unchanged, and its
/// body is the request's body (JSON as parsed, text as sent, other bytes as base64).
pub fn webhook_request(data: &[u8]) {
    let (method, query, headers, body) = parse_request(data);
    let request = build_webhook(&method, "tok", query.as_deref(), &headers, body);
    let value = serde_json::to_value(&request).expect("encode the request");
    let text = value.to_string();
    let back: WebhookRequest = serde_json::from_str(&text).expect("decode the request");
    assert_eq!(
        back, request,
        "the request changed through the journal: {text}"
    );
    match &request.body {
        None => assert!(body.is_empty()),
        Some(WebhookBody::Json(v)) => {
            let parsed: Value = serde_json::from_slice(body).expect("a JSON body parses");
            assert_eq!(&parsed, v);
        }
        Some(WebhookBody::Text(t)) => assert_eq!(t.as_bytes(), body),
        Some(WebhookBody::Base64(_)) => assert!(std::str::from_utf8(body).is_err()),
    }
}

#[path = "http.rs"]
mod http;
pub use http::http_request;
