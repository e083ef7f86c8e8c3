//! Hook threads, shared state and signals: what the store completes inside the transaction
//! (values read, counts, deliveries) and where it puts them.

use serde_json::{json, Value};
use tether_core::event::{EventBody, RunStatus, ThreadInfo};
use tether_core::RetryPolicy;

use super::support::*;
use tether_store::{OpOutcome, OpRejected, RunFilter, Store, WriteOp};

fn spawned(cmd: u32, hook_id: &str, workflow: &str) -> EventBody {
    EventBody::HookSpawned {
        cmd,
        hook_id: hook_id.into(),
        workflow: workflow.into(),
        task_queue: "default".into(),
        args: json!({ "a": cmd }),
        retry: RetryPolicy::default(),
        fail_signal: None,
    }
}

/// Append and return what was written (which may be more than given: deliveries follow).
async fn append_all(
    store: &dyn Store,
    run_id: &str,
    events: Vec<EventBody>,
    at_ms: u64,
) -> Vec<tether_core::event::Event> {
    appended(
        commit_one(store, append_op(run_id, events, at_ms)).await,
        &format!("Append to {run_id}"),
    )
    .1
}

fn signal_op(signal_id: &str, payload: Value) -> WriteOp {
    WriteOp::Signal {
        signal_id: signal_id.into(),
        payload,
        idempotency_key: None,
        at_ms: T0 + 50,
    }
}

fn wait(cmd: u32, signal_id: &str) -> EventBody {
    EventBody::SignalWaited {
        cmd,
        signal_id: signal_id.into(),
    }
}

fn received(wait_cmd: u32, payload: Value) -> EventBody {
    EventBody::SignalReceived { wait_cmd, payload }
}

/// State commands act on the run's namespace and are written with their outputs filled in;
/// `incr` is an integer counter (absent = 0) and leaves a non-integer alone.
pub async fn state_commands_are_completed_by_the_store(store: &dyn Store) {
    create_run(store, "r", "w", T0).await;
    let k = |s: &str| s.to_string();
    let events = append_all(
        store,
        "r",
        vec![
            EventBody::StateSet {
                cmd: 1,
                key: k("a"),
                value: json!({"x": 1}),
            },
            EventBody::StateGet {
                cmd: 2,
                key: k("a"),
                value: None,
            },
            EventBody::StateIncr {
                cmd: 3,
                key: k("n"),
                by: 2,
                value: None,
            },
            EventBody::StateIncr {
                cmd: 4,
                key: k("n"),
                by: 3,
                value: None,
            },
            EventBody::StateGet {
                cmd: 5,
                key: k("missing"),
                value: Some(json!("stale")),
            },
            EventBody::StateDelete {
                cmd: 6,
                key: k("a"),
                existed: false,
            },
            EventBody::StateDelete {
                cmd: 7,
                key: k("a"),
                existed: true,
            },
            EventBody::StateSet {
                cmd: 8,
                key: k("s"),
                value: json!("text"),
            },
            EventBody::StateIncr {
                cmd: 9,
                key: k("s"),
                by: 1,
                value: Some(7),
            },
        ],
        T0 + 1,
    )
    .await;
    assert_eq!(
        bodies(&events),
        vec![
            EventBody::StateSet {
                cmd: 1,
                key: k("a"),
                value: json!({"x": 1})
            },
            EventBody::StateGet {
                cmd: 2,
                key: k("a"),
                value: Some(json!({"x": 1}))
            },
            EventBody::StateIncr {
                cmd: 3,
                key: k("n"),
                by: 2,
                value: Some(2)
            },
            EventBody::StateIncr {
                cmd: 4,
                key: k("n"),
                by: 3,
                value: Some(5)
            },
            EventBody::StateGet {
                cmd: 5,
                key: k("missing"),
                value: None
            },
            EventBody::StateDelete {
                cmd: 6,
                key: k("a"),
                existed: true
            },
            EventBody::StateDelete {
                cmd: 7,
                key: k("a"),
                existed: false
            },
            EventBody::StateSet {
                cmd: 8,
                key: k("s"),
                value: json!("text")
            },
            EventBody::StateIncr {
                cmd: 9,
                key: k("s"),
                by: 1,
                value: None
            },
        ],
        "the store fills in what each state command saw, in order"
    );
    assert_eq!(
        journal(store, "r").await[1..]
            .iter()
            .map(|e| e.body.clone())
            .collect::<Vec<_>>(),
        bodies(&events),
        "the journal holds the completed records"
    );
    let state = store
        .get_state("r")
        .await
        .expect("get_state")
        .expect("run exists");
    assert_eq!(Value::Object(state), json!({"n": 5, "s": "text"}));
    assert_eq!(store.get_state("ghost").await.expect("get_state"), None);
}

/// A spawn creates the thread's run in the same transaction; the thread works in the root's
/// namespace (at any depth), is listed with it, and not among runs.
pub async fn spawned_threads_share_the_root_namespace(store: &dyn Store) {
    create_run(store, "r", "w", T0).await;
    append(store, "r", vec![spawned(1, "r.h1", "hook_fn")], T0 + 1).await;
    let thread = get_run(store, "r.h1").await;
    assert_eq!(thread.status, RunStatus::Pending);
    assert_eq!(thread.workflow, "hook_fn");
    assert_eq!(thread.input, json!({"a": 1}));
    assert_eq!(
        journal(store, "r.h1").await[0].body,
        EventBody::RunStarted {
            workflow: "hook_fn".into(),
            input: json!({"a": 1}),
            thread: Some(ThreadInfo {
                root_run: "r".into(),
                parent_run: "r".into(),
                retry: RetryPolicy::default(),
                fail_signal: None,
            }),
        }
    );
    // A thread of the thread still works in r's namespace.
    append(
        store,
        "r.h1",
        vec![
            EventBody::StateSet {
                cmd: 1,
                key: "from_thread".into(),
                value: json!(true),
            },
            spawned(2, "r.h1.h2", "hook_fn"),
        ],
        T0 + 2,
    )
    .await;
    match &journal(store, "r.h1.h2").await[0].body {
        EventBody::RunStarted {
            thread: Some(t), ..
        } => {
            assert_eq!((t.root_run.as_str(), t.parent_run.as_str()), ("r", "r.h1"));
        }
        other => panic!("a nested thread must know its root: {other:?}"),
    }
    let state = store
        .get_state("r.h1.h2")
        .await
        .expect("get_state")
        .expect("exists");
    assert_eq!(Value::Object(state), json!({"from_thread": true}));
    let threads: Vec<String> = store
        .list_threads("r")
        .await
        .expect("list_threads")
        .into_iter()
        .map(|t| t.run_id)
        .collect();
    assert_eq!(threads, strings(&["r.h1", "r.h1.h2"]));
    let runs: Vec<String> = store
        .list_runs(&RunFilter::default())
        .await
        .expect("list_runs")
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    assert_eq!(runs, strings(&["r"]), "threads are not listed as runs");
}

/// A spawn from outside creates a thread of a running run; refused for unknown or finished
/// runs and taken ids.
pub async fn spawn_from_outside(store: &dyn Store) {
    create_run(store, "r", "w", T0).await;
    let op = |run: &str, id: &str| WriteOp::SpawnHook {
        queue: tether_store::DEFAULT_QUEUE.into(),
        run_id: run.into(),
        hook_id: id.into(),
        workflow: "hook_fn".into(),
        args: json!({"by": "client"}),
        retry: RetryPolicy::default(),
        at_ms: T0 + 1,
    };
    let (run_id, events) = appended(commit_one(store, op("r", "r.x1")).await, "SpawnHook");
    assert_eq!(run_id, "r.x1");
    assert!(matches!(events[0].body, EventBody::RunStarted { .. }));
    assert_eq!(
        commit_one(store, op("r", "r.x1")).await,
        Err(OpRejected::RunExists {
            run_id: "r.x1".into()
        })
    );
    assert_eq!(
        commit_one(store, op("ghost", "g.x1")).await,
        Err(OpRejected::RunNotFound {
            run_id: "ghost".into()
        })
    );
    append(
        store,
        "r",
        vec![EventBody::RunCompleted { output: json!(1) }],
        T0 + 2,
    )
    .await;
    assert_eq!(
        commit_one(store, op("r", "r.x2")).await,
        Err(OpRejected::RunFinished {
            run_id: "r".into(),
            status: RunStatus::Completed
        })
    );
    assert!(!run_exists(store, "r.x2").await);
}

/// Signals sent before any wait are kept, oldest first; a wait takes one at once (its
/// `SignalReceived` follows in the same append) or registers; a later signal goes to the
/// registered wait.
pub async fn signals_are_kept_until_a_wait_takes_them(store: &dyn Store) {
    create_run(store, "r", "w", T0).await;
    assert_eq!(
        commit_one(store, signal_op("s", json!(1))).await,
        Ok(OpOutcome::Updated)
    );
    assert_eq!(
        commit_one(store, signal_op("s", json!(2))).await,
        Ok(OpOutcome::Updated)
    );
    let events = append_all(store, "r", vec![wait(1, "s")], T0 + 1).await;
    assert_eq!(bodies(&events), vec![wait(1, "s"), received(1, json!(1))]);
    let events = append_all(store, "r", vec![wait(2, "s"), wait(3, "s")], T0 + 2).await;
    assert_eq!(
        bodies(&events),
        vec![wait(2, "s"), received(2, json!(2)), wait(3, "s")],
        "the second kept signal goes to the second wait; the third wait registers"
    );
    let (run_id, events) = appended(commit_one(store, signal_op("s", json!(3))).await, "Signal");
    assert_eq!(run_id, "r");
    assert_eq!(bodies(&events), vec![received(3, json!(3))]);
    assert_eq!(
        commit_one(store, signal_op("s", json!(4))).await,
        Ok(OpOutcome::Updated),
        "no wait left: kept"
    );
}

/// A signal sent by a run reaches a waiting run (recorded in `delivered_to`), or itself.
pub async fn signals_sent_by_runs_are_delivered_in_the_same_transaction(store: &dyn Store) {
    create_run(store, "waiter", "w", T0).await;
    create_run(store, "sender", "w", T0).await;
    append(store, "waiter", vec![wait(1, "x")], T0 + 1).await;
    let sent = |cmd: u32, id: &str, to: Option<&str>| EventBody::SignalSent {
        cmd,
        signal_id: id.into(),
        payload: json!({"v": cmd}),
        delivered_to: to.map(str::to_string),
    };
    let events = append_all(store, "sender", vec![sent(1, "x", None)], T0 + 2).await;
    assert_eq!(bodies(&events), vec![sent(1, "x", Some("waiter"))]);
    assert_eq!(
        journal(store, "waiter")
            .await
            .last()
            .map(|e| e.body.clone()),
        Some(received(1, json!({"v": 1})))
    );
    let events = append_all(store, "sender", vec![sent(2, "nobody", None)], T0 + 3).await;
    assert_eq!(
        bodies(&events),
        vec![sent(2, "nobody", None)],
        "kept: no recipient"
    );
    let events = append_all(
        store,
        "sender",
        vec![wait(3, "me"), sent(4, "me", None)],
        T0 + 4,
    )
    .await;
    assert_eq!(
        bodies(&events),
        vec![
            wait(3, "me"),
            sent(4, "me", Some("sender")),
            received(3, json!({"v": 4}))
        ],
        "a run can signal its own wait"
    );
}

/// A finished run's waits are dropped: a later signal is kept, not lost to it.
pub async fn finished_runs_drop_their_waits(store: &dyn Store) {
    create_run(store, "r", "w", T0).await;
    append(store, "r", vec![wait(1, "y")], T0 + 1).await;
    append(
        store,
        "r",
        vec![EventBody::RunCompleted {
            output: json!(null),
        }],
        T0 + 2,
    )
    .await;
    assert_eq!(
        commit_one(store, signal_op("y", json!(1))).await,
        Ok(OpOutcome::Updated)
    );
    create_run(store, "r2", "w", T0 + 3).await;
    let events = append_all(store, "r2", vec![wait(1, "y")], T0 + 4).await;
    assert_eq!(bodies(&events), vec![wait(1, "y"), received(1, json!(1))]);
}

fn released(cmd: u32, wait_cmd: u32, signal_id: &str) -> EventBody {
    EventBody::SignalReleased {
        cmd,
        wait_cmd,
        signal_id: signal_id.into(),
        returned: false,
        delivered_to: None,
    }
}

fn released_as(
    cmd: u32,
    wait_cmd: u32,
    signal_id: &str,
    returned: bool,
    to: Option<&str>,
) -> EventBody {
    EventBody::SignalReleased {
        cmd,
        wait_cmd,
        signal_id: signal_id.into(),
        returned,
        delivered_to: to.map(str::to_string),
    }
}

/// `SignalReleased` of a wait still registered forgets it: a later signal is kept, not
/// delivered to the released wait.
pub async fn a_released_wait_is_forgotten(store: &dyn Store) {
    create_run(store, "r", "w", T0).await;
    append(store, "r", vec![wait(1, "s")], T0 + 1).await;
    let events = append_all(store, "r", vec![released(2, 1, "s")], T0 + 2).await;
    assert_eq!(bodies(&events), vec![released_as(2, 1, "s", false, None)]);
    assert_eq!(
        commit_one(store, signal_op("s", json!(1))).await,
        Ok(OpOutcome::Updated),
        "nobody waits any more: kept"
    );
    // Waited and released in one append (a wait that lost a race at once).
    let events = append_all(store, "r", vec![wait(3, "t"), released(4, 3, "t")], T0 + 3).await;
    assert_eq!(
        bodies(&events),
        vec![wait(3, "t"), released_as(4, 3, "t", false, None)]
    );
    assert_eq!(
        commit_one(store, signal_op("t", json!(2))).await,
        Ok(OpOutcome::Updated)
    );
}

/// A released wait that had taken a payload gives it back *first* in line of the kept
/// signals: taken in the same append (a kept signal), or delivered earlier by a signal.
pub async fn a_released_wait_gives_its_payload_back_first_in_line(store: &dyn Store) {
    create_run(store, "r", "w", T0).await;
    for p in [1, 2] {
        commit_one(store, signal_op("s", json!(p))).await.unwrap();
    }
    // Taken at once in the append that journals the wait, released in the same append.
    let events = append_all(store, "r", vec![wait(1, "s"), released(2, 1, "s")], T0 + 1).await;
    assert_eq!(
        bodies(&events),
        vec![
            wait(1, "s"),
            received(1, json!(1)),
            released_as(2, 1, "s", true, None)
        ]
    );
    // The next wait gets 1 again (first in line), then 2.
    let events = append_all(store, "r", vec![wait(3, "s"), wait(4, "s")], T0 + 2).await;
    assert_eq!(
        bodies(&events),
        vec![
            wait(3, "s"),
            received(3, json!(1)),
            wait(4, "s"),
            received(4, json!(2))
        ]
    );
    // Delivered by a later signal, released in a later append.
    append(store, "r", vec![wait(5, "u")], T0 + 3).await;
    commit_one(store, signal_op("u", json!("late")))
        .await
        .unwrap();
    let events = append_all(store, "r", vec![released(6, 5, "u")], T0 + 4).await;
    assert_eq!(bodies(&events), vec![released_as(6, 5, "u", true, None)]);
    create_run(store, "r2", "w", T0 + 5).await;
    let events = append_all(store, "r2", vec![wait(1, "u")], T0 + 6).await;
    assert_eq!(
        bodies(&events),
        vec![wait(1, "u"), received(1, json!("late"))]
    );
}

/// A payload given back goes to the oldest wait on its signal id if there is one: another
/// run's (appended to its journal, named in `delivered_to`) or the releasing run's own (its
/// `SignalReceived` follows the release in the same append).
pub async fn a_payload_given_back_goes_to_a_waiting_run(store: &dyn Store) {
    create_run(store, "r", "w", T0).await;
    create_run(store, "other", "w", T0).await;
    append(store, "r", vec![wait(1, "s")], T0 + 1).await;
    commit_one(store, signal_op("s", json!("p"))).await.unwrap();
    append(store, "other", vec![wait(1, "s")], T0 + 2).await;
    let events = append_all(store, "r", vec![released(2, 1, "s")], T0 + 3).await;
    assert_eq!(
        bodies(&events),
        vec![released_as(2, 1, "s", true, Some("other"))]
    );
    assert_eq!(
        journal(store, "other").await.last().map(|e| e.body.clone()),
        Some(received(1, json!("p")))
    );
    // To the releasing run's own other wait.
    append(store, "r", vec![wait(3, "v")], T0 + 4).await;
    commit_one(store, signal_op("v", json!("q"))).await.unwrap();
    let events = append_all(store, "r", vec![wait(4, "v"), released(5, 3, "v")], T0 + 5).await;
    assert_eq!(
        bodies(&events),
        vec![
            wait(4, "v"),
            released_as(5, 3, "v", true, Some("r")),
            received(4, json!("q"))
        ]
    );
}

/// A wait of an earlier attempt of a hook thread (same command index, before the last
/// `AttemptFailed`) is not the released one: nothing is given back for it.
pub async fn a_release_only_looks_at_the_current_attempt(store: &dyn Store) {
    create_run(store, "r", "w", T0).await;
    commit_one(store, signal_op("s", json!("old")))
        .await
        .unwrap();
    // Attempt 1 takes "old" at once (its `SignalReceived` follows), then fails.
    append_all(
        store,
        "r",
        vec![
            wait(1, "s"),
            EventBody::AttemptFailed {
                attempt: 1,
                error: tether_core::ErrorInfo::new("x", "y"),
                retry_at_ms: T0 + 10,
            },
        ],
        T0 + 1,
    )
    .await;
    let events = append_all(store, "r", vec![released(1, 1, "s")], T0 + 2).await;
    assert_eq!(bodies(&events), vec![released_as(1, 1, "s", false, None)]);
    assert_eq!(
        commit_one(store, signal_op("s", json!("new"))).await,
        Ok(OpOutcome::Updated),
        "no wait, no payload given back: kept"
    );
}
