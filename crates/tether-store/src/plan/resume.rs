//! A resume (the contract on [`crate::WriteOp::Resume`]): the idempotency key first, then the
//! hook holding the token, then the run, then `HookReceived` at the run's next `seq`. The
//! backend gives row primitives ([`ResumeBackend`]); the rules, and what to do when another
//! writer moved the hook meanwhile, are here, the same for every backend.

use serde_json::Value;
use tether_core::event::{CommandIndex, Event, EventBody};

use super::hook_end::{self, HookEndBackend};
use super::run::{self, RunRow};
use crate::{payload_digest, HookRef, OpOutcome, OpRejected, OpResult, StoreError};

/// How many times a resume looks again when the hook holding its token changed between the
/// lookup and the run's lock (another writer moved it), before failing with `Unavailable`. A
/// backend with one writer never races, so it never looks twice.
pub const MAX_HOOK_RACES: usize = 5;

/// The rows a resume reads and writes, in the batch's transaction.
#[allow(async_fn_in_trait)] // generic use only: the caller's concrete future keeps its `Send`
pub trait ResumeBackend: HookEndBackend {
    /// The run a used idempotency key of `token` answered with, and the digest of the payload
    /// it was first used with (`None` for keys recorded before digests were stored).
    async fn first_answer(
        &mut self,
        token: &str,
        key: &str,
    ) -> Result<Option<(String, Option<String>)>, StoreError>;

    /// The holder of `token` as this batch already knows it (read up front), if it does.
    fn known_holder(&self, _token: &str) -> Option<Option<(String, CommandIndex)>> {
        None
    }

    /// The active hook holding `token`, read now: its run and command index.
    async fn hook_holder(
        &mut self,
        token: &str,
    ) -> Result<Option<(String, CommandIndex)>, StoreError>;

    /// Whether this transaction holds `run_id`'s row lock already (then nobody can have moved
    /// its hooks since). A backend with one writer always does.
    fn holds(&self, run_id: &str) -> bool;

    /// Read (and lock) the run's row.
    async fn lock_run(&mut self, run_id: &str) -> Result<Option<RunRow>, StoreError>;

    /// Record that `key` of `token` answered with `run_id`; `false` when another writer
    /// recorded it first (nothing written).
    async fn record_key(
        &mut self,
        token: &str,
        key: &str,
        run_id: &str,
        digest: &str,
        at_ms: u64,
    ) -> Result<bool, StoreError>;

    /// Append `event` (the run's next entry) to `run_id` and move its `last_seq`.
    async fn append_delivered(&mut self, run_id: &str, event: &Event) -> Result<(), StoreError>;
}

/// A payload to deliver to the hook holding a token.
#[derive(Clone, Copy, Debug)]
pub struct Delivery<'a> {
    /// The token.
    pub token: &'a str,
    /// The payload.
    pub payload: &'a Value,
    /// Idempotency key, scoped to the token.
    pub key: Option<&'a str>,
    /// The hook the caller validated the payload against.
    pub expect: Option<&'a HookRef>,
    /// Commit time.
    pub at_ms: u64,
}

/// Deliver `d` (see [`crate::WriteOp::Resume`]).
pub async fn resume<B: ResumeBackend>(b: &mut B, d: Delivery<'_>) -> Result<OpResult, StoreError> {
    Ok(resume_row(b, d).await?.0)
}

/// [`resume`], with the run's row as read (and locked) before the payload was appended when
/// it was: the caller may decide more from it in the same transaction (a claim).
pub async fn resume_row<B: ResumeBackend>(
    b: &mut B,
    d: Delivery<'_>,
) -> Result<(OpResult, Option<RunRow>), StoreError> {
    let digest = d.key.map(|_| payload_digest(d.payload));
    for _ in 0..MAX_HOOK_RACES {
        // A key used before wins over everything else, even if the hook has been released
        // since: a retried delivery gets the first answer, another payload is refused.
        if let (Some(key), Some(digest)) = (d.key, &digest) {
            if let Some(first) = b.first_answer(d.token, key).await? {
                return Ok((answer_again(&d, key, digest, first), None));
            }
        }
        let holder = match b.known_holder(d.token) {
            Some(holder) => holder,
            None => b.hook_holder(d.token).await?,
        };
        let Some((run_id, hook_cmd)) = holder else {
            // No hook holds the token: whether one did and expired (or reserved it) decides.
            let end = b.hook_end(d.token).await?;
            return Ok((Err(hook_end::refusal(end.as_ref(), d.token, d.at_ms)), None));
        };
        if d.expect
            .is_some_and(|e| e.run_id != run_id || e.hook_cmd != hook_cmd)
        {
            return Ok((not_found(&d), None));
        }
        // Hooks of a run change only under its row lock. If this transaction held it before
        // looking the hook up, the answer stands; otherwise look again once it is held.
        let held_before = b.holds(&run_id);
        let Some(run) = b.lock_run(&run_id).await? else {
            return Ok((Err(OpRejected::RunNotFound { run_id }), None));
        };
        if !held_before
            && b.hook_holder(d.token).await?.as_ref() != Some(&(run_id.clone(), hook_cmd))
        {
            continue;
        }
        // Hooks of finished runs are released, so this only refuses on damaged data.
        if let Err(refused) = run::open(Some(&run), &run_id, None) {
            return Ok((Err(refused), None));
        }
        if let (Some(key), Some(digest)) = (d.key, &digest) {
            if !b.record_key(d.token, key, &run_id, digest, d.at_ms).await? {
                // Another writer used the key since we looked: its answer is the first one
                // (or a refusal, if it was used with another payload).
                match b.first_answer(d.token, key).await? {
                    Some(first) => return Ok((answer_again(&d, key, digest, first), None)),
                    None => continue,
                }
            }
        }
        let event = Event {
            seq: run.last_seq + 1,
            at_ms: d.at_ms,
            body: EventBody::HookReceived {
                hook_cmd,
                payload: d.payload.clone(),
            },
        };
        b.append_delivered(&run_id, &event).await?;
        let lease_holder = run.lease_holder(d.at_ms).map(str::to_owned);
        let resumed = OpOutcome::Resumed {
            run_id,
            event: Some(event),
            lease_holder,
            claimed: None,
        };
        return Ok((Ok(resumed), Some(run)));
    }
    Err(StoreError::unavailable(format!(
        "the hook holding a token kept changing while a payload was delivered to it \
         ({MAX_HOOK_RACES} attempts); retry the delivery"
    )))
}

/// The answer to a key used before: the first one for the same payload (or a key recorded
/// without a digest, which matches any), a refusal for another payload.
fn answer_again(
    d: &Delivery<'_>,
    key: &str,
    digest: &str,
    (run_id, first_digest): (String, Option<String>),
) -> OpResult {
    if first_digest.is_some_and(|first| first != digest) {
        return Err(OpRejected::IdempotencyKeyReused {
            token: d.token.to_owned(),
            key: key.to_owned(),
        });
    }
    Ok(OpOutcome::Resumed {
        run_id,
        event: None,
        lease_holder: None,
        claimed: None,
    })
}

fn not_found(d: &Delivery<'_>) -> OpResult {
    Err(OpRejected::HookNotFound {
        token: d.token.to_owned(),
    })
}
