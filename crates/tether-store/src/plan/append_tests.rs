//! The append planner in memory: a backend whose answers are fixed.

use serde_json::json;

use super::*;
use crate::plan::{KeptPayload, ParentLink, SignalKey};
use crate::{OpOutcome, OpRejected};

/// Token `taken` is held by run `other`; a signal `me` goes to the sender's own wait 7; a wait
/// on `kept` takes a kept payload at once; a released wait had taken `back`, which goes to
/// run `waiter` (waiting on `s`); payloads `a`, `b` (the first with key `k`) are kept for
/// token `waiting`.
#[derive(Default)]
struct Fixed {
    calls: Vec<String>,
    signal_keys: std::collections::HashMap<(String, String), SignalKey>,
    /// The parent of run `r`, when it is a child run.
    parent: Option<ParentLink>,
    /// Attached unfinished children, by parent.
    children: std::collections::HashMap<String, Vec<String>>,
}

impl ChildBackend for Fixed {
    async fn create_child(&mut self, child: NewChild<'_>) -> Result<(), StoreError> {
        self.calls.push(format!(
            "child {} of {} cmd {} detached={}",
            child.child_run_id, child.parent_run_id, child.parent_cmd, child.detached
        ));
        Ok(())
    }

    async fn attached_children(&mut self, run_id: &str) -> Result<Vec<String>, StoreError> {
        Ok(self.children.get(run_id).cloned().unwrap_or_default())
    }
}

impl AppendBackend for Fixed {
    async fn namespace(&mut self, run_id: &str) -> Result<String, StoreError> {
        self.calls.push(format!("namespace {run_id}"));
        Ok("root".into())
    }

    async fn create_thread(&mut self, thread: NewThread<'_>) -> Result<(), StoreError> {
        self.calls.push(format!(
            "thread {} in {}",
            thread.hook_id, thread.info.root_run
        ));
        Ok(())
    }

    async fn register_hook(&mut self, hook: &NewHook<'_>) -> Result<Option<String>, StoreError> {
        Ok((hook.token == "taken").then(|| "other".to_owned()))
    }

    async fn release_hook(
        &mut self,
        token: &str,
        _run_id: &str,
        _hook_cmd: CommandIndex,
        how: HookRelease,
        _at_ms: u64,
    ) -> Result<(), StoreError> {
        self.calls.push(match how {
            HookRelease::Expired => format!("expire {token}"),
            _ => format!("release {token}"),
        });
        Ok(())
    }
}

/// Token `reserved` is reserved by run `owner` until 1000; token `expired` ended expired.
impl HookEndBackend for Fixed {
    async fn hook_end(&mut self, token: &str) -> Result<Option<crate::HookEnd>, StoreError> {
        let how = match token {
            "reserved" => HookRelease::Disposed,
            "expired" => HookRelease::Expired,
            _ => return Ok(None),
        };
        Ok(hook_end::end_of(token, "owner", 1, how, Some(900), 100))
    }

    async fn forget_hook_end(&mut self, token: &str) -> Result<(), StoreError> {
        self.calls.push(format!("forget end {token}"));
        Ok(())
    }

    async fn unregister_hook(
        &mut self,
        token: &str,
        _run_id: &str,
        _hook_cmd: CommandIndex,
    ) -> Result<(), StoreError> {
        self.calls.push(format!("unregister {token}"));
        Ok(())
    }
}

impl PendingBackend for Fixed {
    async fn lock_token(&mut self, _token: &str) -> Result<(), StoreError> {
        Ok(())
    }

    async fn kept_key(&mut self, _token: &str, _key: &str) -> Result<Option<String>, StoreError> {
        Ok(None)
    }

    async fn keep_payload(
        &mut self,
        _token: &str,
        _kept: &KeptPayload,
        _at_ms: u64,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    async fn take_kept_payloads(&mut self, token: &str) -> Result<Vec<KeptPayload>, StoreError> {
        if token != "waiting" {
            return Ok(Vec::new());
        }
        let kept = |payload: &str, key: Option<&str>| KeptPayload {
            payload: json!(payload),
            key: key.map(str::to_owned),
            digest: key.map(|_| "d".to_owned()),
        };
        Ok(vec![kept("a", Some("k")), kept("b", None)])
    }

    async fn record_delivered_key(
        &mut self,
        token: &str,
        key: &str,
        run_id: &str,
        _digest: &str,
        _at_ms: u64,
    ) -> Result<(), StoreError> {
        self.calls.push(format!("key {key} of {token} to {run_id}"));
        Ok(())
    }
}

impl StateBackend for Fixed {
    async fn read_state(&mut self, root: &str, _key: &str) -> Result<Option<Value>, StoreError> {
        self.calls.push(format!("state {root}"));
        Ok(None)
    }

    async fn write_state(
        &mut self,
        _root: &str,
        _key: &str,
        _value: &Value,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    async fn delete_state(&mut self, _root: &str, _key: &str) -> Result<bool, StoreError> {
        Ok(false)
    }
}

impl SignalBackend for Fixed {
    async fn lock_signal(&mut self, _signal_id: &str) -> Result<(), StoreError> {
        Ok(())
    }

    async fn signal_key(
        &mut self,
        signal_id: &str,
        key: &str,
    ) -> Result<Option<SignalKey>, StoreError> {
        Ok(self
            .signal_keys
            .get(&(signal_id.to_owned(), key.to_owned()))
            .cloned())
    }

    async fn record_signal_key(
        &mut self,
        signal_id: &str,
        key: &str,
        first: &SignalKey,
        _at_ms: u64,
    ) -> Result<(), StoreError> {
        self.calls.push(format!("key {key} of {signal_id}"));
        self.signal_keys
            .insert((signal_id.to_owned(), key.to_owned()), first.clone());
        Ok(())
    }

    async fn take_waiter(
        &mut self,
        signal_id: &str,
    ) -> Result<Option<(String, CommandIndex)>, StoreError> {
        Ok(match signal_id {
            "me" => Some(("r".into(), 7)),
            "s" => Some(("waiter".into(), 1)),
            _ => None,
        })
    }

    async fn keep_signal(
        &mut self,
        signal_id: &str,
        _payload: &Value,
        _at_ms: u64,
        first: bool,
    ) -> Result<(), StoreError> {
        self.calls.push(format!("keep {signal_id} first={first}"));
        Ok(())
    }

    async fn take_kept(&mut self, signal_id: &str) -> Result<Option<Value>, StoreError> {
        Ok((signal_id == "kept").then(|| json!("k")))
    }

    async fn add_wait(
        &mut self,
        signal_id: &str,
        _run_id: &str,
        cmd: CommandIndex,
        _at_ms: u64,
    ) -> Result<(), StoreError> {
        self.calls.push(format!("wait {cmd} on {signal_id}"));
        Ok(())
    }

    async fn forget_wait(
        &mut self,
        _run_id: &str,
        _wait_cmd: CommandIndex,
        _signal_id: &str,
    ) -> Result<bool, StoreError> {
        Ok(false)
    }

    async fn last_wait_entry(
        &mut self,
        _run_id: &str,
        wait_cmd: CommandIndex,
    ) -> Result<Option<EventBody>, StoreError> {
        Ok(Some(EventBody::SignalReceived {
            wait_cmd,
            payload: json!("back"),
        }))
    }

    async fn append_delivery(
        &mut self,
        run_id: &str,
        body: EventBody,
        at_ms: u64,
    ) -> Result<Result<Event, OpRejected>, StoreError> {
        self.calls.push(format!("deliver to {run_id}"));
        Ok(Ok(Event {
            seq: 1,
            at_ms,
            body,
        }))
    }
}

fn hook(cmd: CommandIndex, token: &str) -> EventBody {
    EventBody::HookCreated {
        cmd,
        token: token.into(),
        kind: "hook".into(),
        metadata: json!(null),
        definition: None,
        generated: false,
        expires_at_ms: None,
        reserve_ms: None,
    }
}

fn plan(events: Vec<EventBody>) -> (AppendPlan, Vec<String>) {
    plan_with(Fixed::default(), events)
}

fn plan_with(mut backend: Fixed, events: Vec<EventBody>) -> (AppendPlan, Vec<String>) {
    // Run `r`: four entries so far, its parent (if any) read with its row.
    let run = crate::plan::RunRow {
        status: tether_core::RunStatus::Running,
        last_seq: 4,
        wake_at: None,
        owner: None,
        lease_until: None,
        epoch: 1,
        parent: backend.parent.clone(),
    };
    let planned = futures::executor::block_on(plan_append(&mut backend, "r", events, &run, 9));
    match planned {
        Ok(p) => (p, backend.calls),
        Err(e) => panic!("the fixed backend does not fail: {e}"),
    }
}

#[test]
fn a_taken_token_is_written_as_a_conflict_and_entries_are_numbered_on() {
    let (p, _) = plan(vec![hook(1, "free"), hook(2, "taken")]);
    assert_eq!(p.written[0].body, hook(1, "free"));
    assert_eq!(
        p.written[1].body,
        EventBody::HookConflict {
            cmd: 2,
            token: "taken".into(),
            holder_run: "other".into()
        }
    );
    assert_eq!(p.written.iter().map(|e| e.seq).collect::<Vec<_>>(), [5, 6]);
    assert!(p.written.iter().all(|e| e.at_ms == 9));
    assert_eq!(p.last_seq(4), 6);
    assert_eq!(p.ending, None);
}

#[test]
fn a_signal_taken_at_once_is_received_right_after() {
    let (p, _) = plan(vec![
        EventBody::SignalWaited {
            cmd: 3,
            signal_id: "kept".into(),
        },
        EventBody::SignalSent {
            cmd: 4,
            signal_id: "me".into(),
            payload: json!(1),
            delivered_to: None,
        },
    ]);
    let bodies: Vec<_> = p.written.into_iter().map(|e| e.body).collect();
    assert_eq!(
        bodies[1],
        EventBody::SignalReceived {
            wait_cmd: 3,
            payload: json!("k")
        }
    );
    assert!(matches!(&bodies[2], EventBody::SignalSent { delivered_to: Some(r), .. } if r == "r"));
    assert_eq!(
        bodies[3],
        EventBody::SignalReceived {
            wait_cmd: 7,
            payload: json!(1)
        }
    );
}

#[test]
fn a_release_records_the_given_back_payload_and_its_recipient() {
    let (p, calls) = plan(vec![EventBody::SignalReleased {
        cmd: 5,
        wait_cmd: 3,
        signal_id: "s".into(),
        returned: false,
        delivered_to: None,
    }]);
    assert_eq!(
        p.written[0].body,
        EventBody::SignalReleased {
            cmd: 5,
            wait_cmd: 3,
            signal_id: "s".into(),
            returned: true,
            delivered_to: Some("waiter".into())
        }
    );
    assert_eq!(calls, ["deliver to waiter"]);
}

#[test]
fn the_namespace_is_asked_once_and_a_terminal_entry_ends_the_run() {
    let (p, calls) = plan(vec![
        EventBody::StateGet {
            cmd: 1,
            key: "k".into(),
            value: None,
        },
        EventBody::StateGet {
            cmd: 2,
            key: "k".into(),
            value: None,
        },
        EventBody::HookDisposed {
            cmd: 3,
            hook_cmd: 1,
            token: "t".into(),
        },
        EventBody::RunCompleted { output: json!(2) },
    ]);
    assert_eq!(
        calls,
        ["namespace r", "state root", "state root", "release t"]
    );
    assert_eq!(p.ending.map(|e| e.output), Some(Some(json!(2))));
}

#[test]
fn payloads_kept_for_a_token_follow_its_hook_oldest_first() {
    let (p, calls) = plan(vec![hook(2, "waiting"), hook(3, "free")]);
    let bodies: Vec<_> = p.written.into_iter().map(|e| e.body).collect();
    let received = |payload: &str| EventBody::HookReceived {
        hook_cmd: 2,
        payload: json!(payload),
    };
    assert_eq!(
        bodies,
        [
            hook(2, "waiting"),
            received("a"),
            received("b"),
            hook(3, "free")
        ]
    );
    assert_eq!(calls, ["key k of waiting to r"]);
}

/// A signal's key is recorded with where the signal went; the same key answers that again
/// (same payload) or refuses (another), without delivering; keys are per signal id.
#[test]
fn a_signal_key_answers_its_first_answer() {
    use crate::plan::signal::signal_op;
    let mut b = Fixed::default();
    let mut send = |signal_id: &str, payload: Value, key: Option<&str>| {
        futures::executor::block_on(signal_op(&mut b, signal_id, &payload, key, 5))
            .expect("no store error")
    };
    assert!(
        matches!(send("s", json!(1), Some("k")), Ok(OpOutcome::Appended { run_id, .. }) if run_id == "waiter")
    );
    assert_eq!(
        send("s", json!(1), Some("k")),
        Ok(OpOutcome::SignalRepeated {
            delivered_to: Some("waiter".into())
        })
    );
    assert_eq!(
        send("s", json!(2), Some("k")),
        Err(OpRejected::IdempotencyKeyReused {
            token: "s".into(),
            key: "k".into()
        })
    );
    assert_eq!(send("nobody", json!(1), Some("k")), Ok(OpOutcome::Updated));
    assert_eq!(
        send("nobody", json!(1), Some("k")),
        Ok(OpOutcome::SignalRepeated { delivered_to: None })
    );
    assert_eq!(send("nobody", json!(1), None), Ok(OpOutcome::Updated));
    assert_eq!(
        b.calls,
        [
            "deliver to waiter",
            "key k of s",
            "keep nobody first=false",
            "key k of nobody",
            "keep nobody first=false",
        ]
    );
}

#[test]
fn a_child_start_creates_the_child_in_the_same_append() {
    let start = EventBody::ChildStarted {
        cmd: 2,
        child_run_id: "r.c2".into(),
        workflow: "steps".into(),
        input: json!({"n": 3}),
        detached: true,
    };
    let (p, calls) = plan(vec![start.clone()]);
    assert_eq!(p.written[0].body, start);
    assert_eq!(calls, ["child r.c2 of r cmd 2 detached=true"]);
}

#[test]
fn a_child_ending_tells_its_parent_in_the_same_append() {
    let backend = Fixed {
        parent: Some(ParentLink {
            run_id: "p".into(),
            cmd: 3,
        }),
        ..Fixed::default()
    };
    let (p, calls) = plan_with(backend, vec![EventBody::RunCompleted { output: json!(1) }]);
    assert_eq!(calls, ["deliver to p"]);
    assert!(p.ending.is_some());
    let end = crate::Ending::of(&EventBody::RunCompleted { output: json!(1) });
    let delivered = child::child_ended(3, &end.expect("terminal"));
    assert_eq!(
        delivered,
        EventBody::ChildEnded {
            child_cmd: 3,
            status: tether_core::RunStatus::Completed,
            output: Some(json!(1)),
            error: None
        }
    );
    // A run without a parent tells nobody.
    let (_, calls) = plan(vec![EventBody::RunCompleted { output: json!(1) }]);
    assert!(calls.is_empty(), "{calls:?}");
}

#[test]
fn a_cancel_request_reaches_attached_children_and_theirs() {
    let mut backend = Fixed::default();
    backend
        .children
        .insert("r".into(), vec!["r.c1".into(), "r.c2".into()]);
    backend
        .children
        .insert("r.c2".into(), vec!["r.c2.c1".into()]);
    let (p, calls) = plan_with(backend, vec![EventBody::CancelRequested { reason: None }]);
    assert_eq!(p.written.len(), 1);
    assert_eq!(
        calls,
        ["deliver to r.c1", "deliver to r.c2", "deliver to r.c2.c1"]
    );
}

#[test]
fn a_token_reserved_by_another_run_is_a_conflict_and_its_registration_is_taken_back() {
    let (p, calls) = plan(vec![hook(1, "reserved"), hook(2, "expired")]);
    assert_eq!(
        p.written[0].body,
        EventBody::HookConflict {
            cmd: 1,
            token: "reserved".into(),
            holder_run: "owner".into()
        }
    );
    // An expired hook's end reserves nothing past its reservation... here it reserves until
    // 1000 as well, so it conflicts too; a registered hook clears an end that stands no more.
    assert!(matches!(p.written[1].body, EventBody::HookConflict { .. }));
    assert_eq!(calls, ["unregister reserved", "unregister expired"]);
}

#[test]
fn an_expiry_releases_the_token_as_expired() {
    let (p, calls) = plan(vec![EventBody::HookExpired {
        hook_cmd: 1,
        token: "t".into(),
    }]);
    assert_eq!(p.written.len(), 1);
    assert_eq!(calls, ["expire t"]);
}
