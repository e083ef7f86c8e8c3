//! Payloads carry any JSON: strings with the NUL character (`\u0000`) included, which some
//! databases cannot hold in their JSON types. Found by the differential property test
//! (`crates/tether-store-postgres/tests/differential/`).

use serde_json::{json, Value};
use tether_core::event::EventBody;

use super::support::*;
use tether_store::{Store, WriteOp};

/// A string holding a NUL character.
fn with_nul() -> Value {
    json!("a\u{0}b")
}

/// A wait that took a payload holding a NUL character can be released, and gives it back;
/// the payload reads back unchanged from the journal and the shared state.
pub async fn a_payload_with_a_nul_character_can_be_given_back(store: &dyn Store) {
    create_run(store, "r", "w", T0).await;
    append(
        store,
        "r",
        vec![EventBody::SignalWaited {
            cmd: 1,
            signal_id: "s".into(),
        }],
        T0 + 1,
    )
    .await;
    let delivered = commit_one(
        store,
        WriteOp::Signal {
            signal_id: "s".into(),
            payload: with_nul(),
            idempotency_key: None,
            at_ms: T0 + 2,
        },
    )
    .await;
    let (run_id, events) = appended(delivered, "a signal to a waiting run");
    assert_eq!(run_id, "r");
    assert_eq!(
        bodies(&events),
        vec![EventBody::SignalReceived {
            wait_cmd: 1,
            payload: with_nul(),
        }]
    );
    // Released in a later append: the store finds the payload in the journal.
    let released = commit_one(
        store,
        append_op(
            "r",
            vec![
                EventBody::SignalReleased {
                    cmd: 2,
                    wait_cmd: 1,
                    signal_id: "s".into(),
                    returned: false,
                    delivered_to: None,
                },
                EventBody::StateSet {
                    cmd: 3,
                    key: "k".into(),
                    value: with_nul(),
                },
            ],
            T0 + 3,
        ),
    )
    .await;
    let (_, events) = appended(released, "a release of a wait that took a NUL payload");
    assert_eq!(
        bodies(&events)[0],
        EventBody::SignalReleased {
            cmd: 2,
            wait_cmd: 1,
            signal_id: "s".into(),
            returned: true,
            delivered_to: None,
        },
        "the payload is given back"
    );
    // The next wait gets it, unchanged.
    let next = commit_one(
        store,
        append_op(
            "r",
            vec![EventBody::SignalWaited {
                cmd: 4,
                signal_id: "s".into(),
            }],
            T0 + 4,
        ),
    )
    .await;
    let (_, events) = appended(next, "a wait after the release");
    assert_eq!(
        bodies(&events),
        vec![
            EventBody::SignalWaited {
                cmd: 4,
                signal_id: "s".into(),
            },
            EventBody::SignalReceived {
                wait_cmd: 4,
                payload: with_nul(),
            }
        ]
    );
    let state = match store.get_state("r").await {
        Ok(Some(state)) => state,
        other => panic!("get_state of r: {other:?}"),
    };
    assert_eq!(state.get("k"), Some(&with_nul()));
}
