//! The store's side of shared state, hook threads and signals: [`Store`] (one namespace's
//! state, kept signals, waits and spawned threads) and how a commit completes a run's command
//! records against it ([`Sim`]'s token table and `store_outcome`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tether_core::{CommandIndex, EventBody};

use super::Sim;

/// A registered wait for a signal.
#[derive(Clone, Debug, PartialEq)]
pub struct Wait {
    /// The signal id.
    pub signal_id: String,
    /// The waiting run.
    pub run_id: String,
    /// Its wait command.
    pub cmd: CommandIndex,
}

/// What the store holds for one namespace, as `tether-store` specifies it (`WriteOp::Signal`,
/// `WriteOp::SpawnHook`): the shared state, the kept signals, the registered waits and the hook
/// threads created. Shared by the [`Sim`]s of the namespace's runs.
#[derive(Debug, Default)]
pub struct Store {
    /// The namespace's shared state.
    pub state: BTreeMap<String, Value>,
    /// Signals sent while nobody waited, oldest first: `(signal_id, payload)`.
    pub kept: VecDeque<(String, Value)>,
    /// Registered waits, oldest first.
    pub waits: Vec<Wait>,
    /// Every `HookSpawned` the store committed, in order (a thread was created for each; a
    /// spawn whose id exists creates nothing, see [`Store::spawn_conflicts`]).
    pub spawned: Vec<EventBody>,
    /// Spawns whose hook id already existed (the store creates no second thread).
    pub spawn_conflicts: usize,
    /// `SignalReceived` entries for other runs than the sender: `(run_id, body)`, taken by
    /// [`Sim::deliver_signals`].
    pub deliveries: Vec<(String, EventBody)>,
}

/// The store of one namespace, shared by its runs' simulations.
pub type SharedStore = Arc<Mutex<Store>>;

impl Store {
    /// A new, empty store.
    pub fn shared() -> SharedStore {
        Arc::new(Mutex::new(Store::default()))
    }

    /// Hand `payload` to the oldest wait on `signal_id` (removing it), or keep it.
    pub fn send(&mut self, signal_id: &str, payload: &Value) -> Option<Wait> {
        match self.waits.iter().position(|w| w.signal_id == signal_id) {
            Some(i) => Some(self.waits.remove(i)),
            None => {
                self.kept
                    .push_back((signal_id.to_string(), payload.clone()));
                None
            }
        }
    }

    /// The kept signals with this id.
    pub fn kept_of(&self, signal_id: &str) -> Vec<Value> {
        self.kept
            .iter()
            .filter(|(id, _)| id == signal_id)
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// Complete a state record against the shared state.
    fn state_op(&mut self, body: EventBody) -> EventBody {
        match body {
            EventBody::StateGet { cmd, key, .. } => {
                let value = self.state.get(&key).cloned();
                EventBody::StateGet { cmd, key, value }
            }
            EventBody::StateSet { cmd, key, value } => {
                self.state.insert(key.clone(), value.clone());
                EventBody::StateSet { cmd, key, value }
            }
            EventBody::StateIncr { cmd, key, by, .. } => {
                let value = match self.state.get(&key) {
                    None => Some(by),
                    Some(v) => v.as_i64().map(|n| n.saturating_add(by)),
                };
                if let Some(n) = value {
                    self.state.insert(key.clone(), Value::from(n));
                }
                EventBody::StateIncr {
                    cmd,
                    key,
                    by,
                    value,
                }
            }
            EventBody::StateDelete { cmd, key, .. } => {
                let existed = self.state.remove(&key).is_some();
                EventBody::StateDelete { cmd, key, existed }
            }
            other => other,
        }
    }
}

/// A record as the workflow issues it, before the store filled its outputs: comparing two of
/// these compares the command's inputs only.
pub fn without_outputs(body: &EventBody) -> EventBody {
    match body.clone() {
        EventBody::StateGet { cmd, key, .. } => EventBody::StateGet {
            cmd,
            key,
            value: None,
        },
        EventBody::StateIncr { cmd, key, by, .. } => EventBody::StateIncr {
            cmd,
            key,
            by,
            value: None,
        },
        EventBody::StateDelete { cmd, key, .. } => EventBody::StateDelete {
            cmd,
            key,
            existed: false,
        },
        EventBody::SignalSent {
            cmd,
            signal_id,
            payload,
            ..
        } => EventBody::SignalSent {
            cmd,
            signal_id,
            payload,
            delivered_to: None,
        },
        EventBody::SignalReleased {
            cmd,
            wait_cmd,
            signal_id,
            ..
        } => EventBody::SignalReleased {
            cmd,
            wait_cmd,
            signal_id,
            returned: false,
            delivered_to: None,
        },
        other => other,
    }
}

impl Sim {
    /// The store's view of a new command record: what it writes for it (in this order, in the
    /// same commit). A `HookCreated` whose token another active hook holds is written as
    /// `HookConflict` instead; shared-state records get their outputs; `HookSpawned` creates
    /// the thread; `SignalSent` and `SignalWaited` deliver, keep or register (a delivery to
    /// this run follows as `SignalReceived`).
    pub(super) fn store_outcome(&self, record: EventBody) -> Vec<EventBody> {
        let mut store = self.store();
        match record {
            EventBody::HookCreated { cmd, token, .. } if self.token_holder(&token).is_some() => {
                let holder_run = self.token_holder(&token).expect("checked");
                vec![EventBody::HookConflict {
                    cmd,
                    token,
                    holder_run,
                }]
            }
            EventBody::StateGet { .. }
            | EventBody::StateSet { .. }
            | EventBody::StateIncr { .. }
            | EventBody::StateDelete { .. } => vec![store.state_op(record)],
            EventBody::HookSpawned { ref hook_id, .. } => {
                let exists = store.spawned.iter().any(
                    |b| matches!(b, EventBody::HookSpawned { hook_id: h, .. } if h == hook_id),
                );
                if exists {
                    store.spawn_conflicts += 1;
                } else {
                    store.spawned.push(record.clone());
                }
                vec![record]
            }
            EventBody::SignalSent {
                cmd,
                signal_id,
                payload,
                ..
            } => match store.send(&signal_id, &payload) {
                None => vec![EventBody::SignalSent {
                    cmd,
                    signal_id,
                    payload,
                    delivered_to: None,
                }],
                Some(wait) if wait.run_id == self.run_id => vec![
                    EventBody::SignalSent {
                        cmd,
                        signal_id,
                        payload: payload.clone(),
                        delivered_to: Some(wait.run_id),
                    },
                    EventBody::SignalReceived {
                        wait_cmd: wait.cmd,
                        payload,
                    },
                ],
                Some(wait) => {
                    store.deliveries.push((
                        wait.run_id.clone(),
                        EventBody::SignalReceived {
                            wait_cmd: wait.cmd,
                            payload: payload.clone(),
                        },
                    ));
                    vec![EventBody::SignalSent {
                        cmd,
                        signal_id,
                        payload,
                        delivered_to: Some(wait.run_id),
                    }]
                }
            },
            EventBody::SignalWaited { cmd, ref signal_id } => {
                match store.kept.iter().position(|(id, _)| id == signal_id) {
                    Some(i) => {
                        let (_, payload) = store.kept.remove(i).expect("found");
                        vec![
                            record,
                            EventBody::SignalReceived {
                                wait_cmd: cmd,
                                payload,
                            },
                        ]
                    }
                    None => {
                        store.waits.push(Wait {
                            signal_id: signal_id.clone(),
                            run_id: self.run_id.clone(),
                            cmd,
                        });
                        vec![record]
                    }
                }
            }
            EventBody::SignalReleased {
                cmd,
                wait_cmd,
                signal_id,
                ..
            } => {
                let released = |returned, delivered_to| EventBody::SignalReleased {
                    cmd,
                    wait_cmd,
                    signal_id: signal_id.clone(),
                    returned,
                    delivered_to,
                };
                // Still waiting: forget the wait.
                if let Some(i) = store.waits.iter().position(|w| {
                    w.run_id == self.run_id && w.cmd == wait_cmd && w.signal_id == signal_id
                }) {
                    store.waits.remove(i);
                    return vec![released(false, None)];
                }
                // Else give back what it took in this attempt, if anything.
                let mut taken = None;
                for e in self.journal.iter().rev() {
                    match &e.body {
                        EventBody::SignalReceived {
                            wait_cmd: w,
                            payload,
                        } if *w == wait_cmd => {
                            taken = Some(payload.clone());
                            break;
                        }
                        EventBody::SignalWaited { cmd: c, .. } if *c == wait_cmd => break,
                        EventBody::AttemptFailed { .. } => break,
                        _ => {}
                    }
                }
                let Some(payload) = taken else {
                    return vec![released(false, None)];
                };
                match store.waits.iter().position(|w| w.signal_id == signal_id) {
                    None => {
                        store.kept.push_front((signal_id.clone(), payload));
                        vec![released(true, None)]
                    }
                    Some(i) => {
                        let wait = store.waits.remove(i);
                        let received = EventBody::SignalReceived {
                            wait_cmd: wait.cmd,
                            payload,
                        };
                        if wait.run_id == self.run_id {
                            vec![released(true, Some(wait.run_id)), received]
                        } else {
                            store.deliveries.push((wait.run_id.clone(), received));
                            vec![released(true, Some(wait.run_id))]
                        }
                    }
                }
            }
            other => vec![other],
        }
    }

    fn token_holder(&self, token: &str) -> Option<String> {
        if let Some(run) = self.tokens_elsewhere.get(token) {
            return Some(run.clone());
        }
        self.hook_cmd_of(token).map(|_| self.run_id.clone())
    }

    /// Pretend an active hook of run `holder_run` holds `token`: creating a hook with that token
    /// from now on is written as `HookConflict`.
    pub fn conflict(&mut self, token: &str, holder_run: &str) {
        self.tokens_elsewhere
            .insert(token.to_string(), holder_run.to_string());
    }
}
