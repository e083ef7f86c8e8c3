//! Signals (the contract on [`crate::WriteOp::Signal`]): where a sent signal goes (the oldest
//! wait whose run is still going, else kept), what a signal's idempotency key answers, what a
//! wait takes, and what releasing a wait gives back. The backend provides row primitives
//! ([`SignalBackend`]); the rules are here.

use serde_json::Value;
use tether_core::event::{CommandIndex, Event, EventBody};

use crate::{payload_digest, OpOutcome, OpRejected, OpResult, StoreError};

/// What an idempotency key of a signal id remembers: the first send's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalKey {
    /// The [`payload_digest`] of the payload the key was first used with.
    pub digest: String,
    /// The run the first send was delivered to; `None` when it was kept.
    pub delivered_to: Option<String>,
}

/// The rows of signals, waits and journals a signal touches, in the batch's transaction.
#[allow(async_fn_in_trait)] // generic use only: the caller's concrete future keeps its `Send`
pub trait SignalBackend {
    /// Serialise the writers of `signal_id` for the rest of the transaction (a backend with
    /// one writer needs nothing).
    async fn lock_signal(&mut self, signal_id: &str) -> Result<(), StoreError>;

    /// What idempotency key `key` of `signal_id` answered first, if it was used.
    async fn signal_key(
        &mut self,
        signal_id: &str,
        key: &str,
    ) -> Result<Option<SignalKey>, StoreError>;

    /// Record that `key` of `signal_id` answered `first` (the key is unused: the planner
    /// looked under the signal's lock).
    async fn record_signal_key(
        &mut self,
        signal_id: &str,
        key: &str,
        first: &SignalKey,
        at_ms: u64,
    ) -> Result<(), StoreError>;

    /// Remove and return the oldest wait on `signal_id`: its run and wait command.
    async fn take_waiter(
        &mut self,
        signal_id: &str,
    ) -> Result<Option<(String, CommandIndex)>, StoreError>;

    /// Keep a signal, last in line (`first`: first in line, for a payload given back).
    async fn keep_signal(
        &mut self,
        signal_id: &str,
        payload: &Value,
        at_ms: u64,
        first: bool,
    ) -> Result<(), StoreError>;

    /// Remove and return the payload of the oldest kept signal `signal_id`.
    async fn take_kept(&mut self, signal_id: &str) -> Result<Option<Value>, StoreError>;

    /// Register wait `cmd` of `run_id` on `signal_id`.
    async fn add_wait(
        &mut self,
        signal_id: &str,
        run_id: &str,
        cmd: CommandIndex,
        at_ms: u64,
    ) -> Result<(), StoreError>;

    /// Forget wait `wait_cmd` of `run_id` on `signal_id`; whether it was registered.
    async fn forget_wait(
        &mut self,
        run_id: &str,
        wait_cmd: CommandIndex,
        signal_id: &str,
    ) -> Result<bool, StoreError>;

    /// The newest journal entry of `run_id` that is a `SignalReceived { wait_cmd }`, a
    /// `SignalWaited { cmd: wait_cmd }` or an `AttemptFailed`.
    async fn last_wait_entry(
        &mut self,
        run_id: &str,
        wait_cmd: CommandIndex,
    ) -> Result<Option<EventBody>, StoreError>;

    /// Append one entry to another run than the one being written (a delivery), refused when
    /// that run is gone or finished.
    async fn append_delivery(
        &mut self,
        run_id: &str,
        body: EventBody,
        at_ms: u64,
    ) -> Result<Result<Event, OpRejected>, StoreError>;
}

/// Where a signal sent from within a batch went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignalOutcome {
    /// To a wait of the sending run itself (its entry follows in the same append).
    ToSelf {
        /// The wait's command index.
        wait_cmd: CommandIndex,
    },
    /// Appended to another run's journal.
    To(String),
    /// Nobody waits: kept.
    Kept,
}

/// What releasing a wait did (see `EventBody::SignalReleased`).
#[derive(Clone, Debug, PartialEq)]
pub struct Released {
    /// The payload the wait had taken, which went back.
    pub returned: Option<Value>,
    /// Where it went.
    pub outcome: SignalOutcome,
}

/// Where a signal went, with the entry appended to its recipient.
enum Delivered {
    ToSelf(CommandIndex),
    To(String, Box<Event>),
    Kept,
}

/// Hand `payload` to the oldest wait on `signal_id` whose run is still going (`sender`'s own
/// wait is answered in its append, not here), or keep it (first in line when `give_back`).
/// `signal_id` must be locked.
async fn hand_over<B: SignalBackend>(
    b: &mut B,
    signal_id: &str,
    payload: &Value,
    at_ms: u64,
    sender: Option<&str>,
    give_back: bool,
) -> Result<Delivered, StoreError> {
    loop {
        let Some((run_id, wait_cmd)) = b.take_waiter(signal_id).await? else {
            b.keep_signal(signal_id, payload, at_ms, give_back).await?;
            return Ok(Delivered::Kept);
        };
        if sender == Some(run_id.as_str()) {
            return Ok(Delivered::ToSelf(wait_cmd));
        }
        let body = EventBody::SignalReceived {
            wait_cmd,
            payload: payload.clone(),
        };
        if let Ok(event) = b.append_delivery(&run_id, body, at_ms).await? {
            return Ok(Delivered::To(run_id, Box::new(event)));
        }
        // That waiter's run is gone: try the next one.
    }
}

/// `SignalSent` within `sender`'s append: where it went.
pub async fn send<B: SignalBackend>(
    b: &mut B,
    signal_id: &str,
    payload: &Value,
    at_ms: u64,
    sender: &str,
) -> Result<SignalOutcome, StoreError> {
    b.lock_signal(signal_id).await?;
    Ok(
        match hand_over(b, signal_id, payload, at_ms, Some(sender), false).await? {
            Delivered::ToSelf(wait_cmd) => SignalOutcome::ToSelf { wait_cmd },
            Delivered::To(run_id, _) => SignalOutcome::To(run_id),
            Delivered::Kept => SignalOutcome::Kept,
        },
    )
}

/// [`crate::WriteOp::Signal`]: a signal from outside, `Appended` to the run that took it or
/// kept (`Updated`); with an idempotency key used before, the first answer again
/// (`SignalRepeated`) or a refusal, writing nothing.
pub async fn signal_op<B: SignalBackend>(
    b: &mut B,
    signal_id: &str,
    payload: &Value,
    key: Option<&str>,
    at_ms: u64,
) -> Result<OpResult, StoreError> {
    // Under the signal's lock, a key looked up unused stays unused until it is recorded below:
    // every send with that key queues up here, so only one of them ever delivers.
    b.lock_signal(signal_id).await?;
    let digest = key.map(|_| payload_digest(payload));
    if let (Some(key), Some(digest)) = (key, &digest) {
        if let Some(first) = b.signal_key(signal_id, key).await? {
            return Ok(if first.digest == *digest {
                Ok(OpOutcome::SignalRepeated {
                    delivered_to: first.delivered_to,
                })
            } else {
                Err(OpRejected::IdempotencyKeyReused {
                    token: signal_id.to_owned(),
                    key: key.to_owned(),
                })
            });
        }
    }
    let delivered = hand_over(b, signal_id, payload, at_ms, None, false).await?;
    if let (Some(key), Some(digest)) = (key, digest) {
        let delivered_to = match &delivered {
            Delivered::To(run_id, _) => Some(run_id.clone()),
            Delivered::ToSelf(_) | Delivered::Kept => None,
        };
        let first = SignalKey {
            digest,
            delivered_to,
        };
        b.record_signal_key(signal_id, key, &first, at_ms).await?;
    }
    Ok(Ok(match delivered {
        Delivered::To(run_id, event) => OpOutcome::Appended {
            run_id,
            events: vec![*event],
        },
        Delivered::ToSelf(_) | Delivered::Kept => OpOutcome::Updated,
    }))
}

/// `SignalWaited { cmd }` of `run_id`: the oldest kept signal's payload (taken), or `None`
/// with the wait registered.
pub async fn wait<B: SignalBackend>(
    b: &mut B,
    run_id: &str,
    cmd: CommandIndex,
    signal_id: &str,
    at_ms: u64,
) -> Result<Option<Value>, StoreError> {
    b.lock_signal(signal_id).await?;
    if let Some(payload) = b.take_kept(signal_id).await? {
        return Ok(Some(payload));
    }
    b.add_wait(signal_id, run_id, cmd, at_ms).await?;
    Ok(None)
}

/// `SignalReleased { wait_cmd, signal_id }` of `run_id` (`written`: the entries of its append
/// so far): forget the wait if it still waits; else give back the payload it took in the
/// run's current attempt, to the oldest wait on `signal_id` (the run's own included) or first
/// in line of the kept signals.
pub async fn release_wait<B: SignalBackend>(
    b: &mut B,
    run_id: &str,
    wait_cmd: CommandIndex,
    signal_id: &str,
    written: &[Event],
    at_ms: u64,
) -> Result<Released, StoreError> {
    b.lock_signal(signal_id).await?;
    let payload = if b.forget_wait(run_id, wait_cmd, signal_id).await? {
        None
    } else {
        taken_payload(b, run_id, wait_cmd, written).await?
    };
    let Some(payload) = payload else {
        return Ok(Released {
            returned: None,
            outcome: SignalOutcome::Kept,
        });
    };
    let outcome = match hand_over(b, signal_id, &payload, at_ms, Some(run_id), true).await? {
        Delivered::ToSelf(wait_cmd) => SignalOutcome::ToSelf { wait_cmd },
        Delivered::To(to, _) => SignalOutcome::To(to),
        Delivered::Kept => SignalOutcome::Kept,
    };
    Ok(Released {
        returned: Some(payload),
        outcome,
    })
}

/// The payload wait `wait_cmd` of `run_id` took, if it took one in the run's current attempt:
/// the entries of the append being written first, then the journal, newest first, down to
/// that wait's own `SignalWaited` (or an `AttemptFailed`, before which command indices
/// belonged to another attempt).
async fn taken_payload<B: SignalBackend>(
    b: &mut B,
    run_id: &str,
    wait_cmd: CommandIndex,
    written: &[Event],
) -> Result<Option<Value>, StoreError> {
    for e in written.iter().rev() {
        match &e.body {
            EventBody::SignalReceived {
                wait_cmd: w,
                payload,
            } if *w == wait_cmd => return Ok(Some(payload.clone())),
            EventBody::SignalWaited { cmd, .. } if *cmd == wait_cmd => return Ok(None),
            EventBody::AttemptFailed { .. } => return Ok(None),
            _ => {}
        }
    }
    Ok(match b.last_wait_entry(run_id, wait_cmd).await? {
        Some(EventBody::SignalReceived { payload, .. }) => Some(payload),
        _ => None,
    })
}
