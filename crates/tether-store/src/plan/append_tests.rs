//! The append planner in memory: a backend whose answers are fixed.

use serde_json::json;

use super::*;
use crate::plan::KeptPayload;
use crate::OpRejected;

/// Token `taken` is held by run `other`; a signal `me` goes to the sender's own wait 7; a wait
/// on `kept` takes a kept payload at once; a released wait had taken `back`, which goes to
/// run `waiter` (waiting on `s`); payloads `a`, `b` (the first with key `k`) are kept for
/// token `waiting`.
#[derive(Default)]
struct Fixed {
    calls: Vec<String>,
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
    let mut backend = Fixed::default();
    let planned = futures::executor::block_on(plan_append(&mut backend, "r", events, 4, 9));
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
