//! What a token keeps once its hook lets it go (the contract of expiring hooks and reserved
//! tokens, [`tether_core::HookOptions::expires_in`] and
//! [`tether_core::HookOptions::reserve_for`]): the rules are here, once; backends store a
//! [`HookEnd`] per token and, where they release many hooks in one statement (a run's end),
//! spell [`end_of`] in SQL (checked by the conformance suite).
//!
//! - A hook **expires** when its run appends `HookExpired`: the token is released and a
//!   [`HookEnd`] with `expired` is recorded, so a payload sent to the token afterwards is
//!   refused as [`OpRejected::HookExpired`] (HTTP `410 hook_expired`) rather than "not found".
//!   Whether a payload came before or after the expiry is decided by the run's journal order,
//!   inside the store transaction: one appended before `HookExpired` is delivered.
//! - A hook with a **reservation** (`reserve_ms` on its `HookCreated`) that lets its token go
//!   (disposed, expired, or its run ended) at `at_ms` records the reservation until
//!   `at_ms + reserve_ms`: meanwhile another run registering a hook with the token gets
//!   `HookConflict` naming the reserving run, and a payload is refused
//!   [`OpRejected::TokenReserved`] (`410 token_reserved`; `hook_expired` if the hook expired).
//!   The reserving run itself may register the token again.
//! - A hook registered with the token (once no reservation stands against it) clears its
//!   [`HookEnd`]. Retention deletes the records ([`crate::retention`]).

use tether_core::event::CommandIndex;

use crate::{HookEnd, OpRejected, StoreError};

/// The longest reservation kept (a hundred years, in ms): longer ones are shortened to it, so
/// `at_ms + reserve_ms` fits every backend's integer.
pub const MAX_RESERVE_MS: u64 = 100 * 365 * 24 * 3600 * 1000;

/// How a hook let its token go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookRelease {
    /// `HookDisposed`.
    Disposed,
    /// `HookExpired`.
    Expired,
    /// Its run ended.
    RunEnded,
}

/// The [`HookEnd`] to record when the hook `hook_cmd` of `run_id`, created with `reserve_ms`,
/// lets `token` go at `at_ms` in the way `how`; `None`: nothing to remember (no expiry, no
/// reservation). A record already there for the token is replaced.
pub fn end_of(
    token: &str,
    run_id: &str,
    hook_cmd: CommandIndex,
    how: HookRelease,
    reserve_ms: Option<u64>,
    at_ms: u64,
) -> Option<HookEnd> {
    let expired = how == HookRelease::Expired;
    let reserved_until_ms = reserve_ms.map(|r| at_ms.saturating_add(r.min(MAX_RESERVE_MS)));
    (expired || reserved_until_ms.is_some()).then(|| HookEnd {
        token: token.to_owned(),
        run_id: run_id.to_owned(),
        hook_cmd,
        expired,
        ended_at_ms: at_ms,
        reserved_until_ms,
    })
}

/// Why a payload for `token`, which no active hook holds, is refused at `now_ms`, given the
/// token's recorded end.
pub fn refusal(end: Option<&HookEnd>, token: &str, now_ms: u64) -> OpRejected {
    match end {
        Some(e) if e.expired => OpRejected::HookExpired {
            token: token.to_owned(),
        },
        Some(HookEnd {
            run_id,
            reserved_until_ms: Some(until_ms),
            ..
        }) if *until_ms > now_ms => OpRejected::TokenReserved {
            token: token.to_owned(),
            run_id: run_id.clone(),
            until_ms: *until_ms,
        },
        _ => OpRejected::HookNotFound {
            token: token.to_owned(),
        },
    }
}

/// The run whose reservation keeps `run_id` from registering the token at `at_ms`, if any.
pub fn reserved_against<'e>(end: Option<&'e HookEnd>, run_id: &str, at_ms: u64) -> Option<&'e str> {
    end.filter(|e| e.run_id != run_id && e.reserved_until_ms.is_some_and(|u| u > at_ms))
        .map(|e| e.run_id.as_str())
}

/// The rows of token ends, in the batch's transaction.
#[allow(async_fn_in_trait)] // generic use only: the caller's concrete future keeps its `Send`
pub trait HookEndBackend {
    /// The recorded end of `token`, if any.
    async fn hook_end(&mut self, token: &str) -> Result<Option<HookEnd>, StoreError>;

    /// Forget the recorded end of `token` (a hook holds it again).
    async fn forget_hook_end(&mut self, token: &str) -> Result<(), StoreError>;

    /// Take back a registration made earlier in this transaction (the token turned out to be
    /// reserved): delete the hook row, record nothing.
    async fn unregister_hook(
        &mut self,
        token: &str,
        run_id: &str,
        hook_cmd: CommandIndex,
    ) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_expiry_or_a_reservation_leaves_something() {
        assert_eq!(end_of("t", "r", 1, HookRelease::Disposed, None, 5), None);
        assert_eq!(end_of("t", "r", 1, HookRelease::RunEnded, None, 5), None);
        let expired = end_of("t", "r", 1, HookRelease::Expired, None, 5).expect("expired");
        assert!(expired.expired);
        assert_eq!(expired.reserved_until_ms, None);
        let reserved = end_of("t", "r", 1, HookRelease::RunEnded, Some(10), 5).expect("kept");
        assert!(!reserved.expired);
        assert_eq!(reserved.reserved_until_ms, Some(15));
        let long = end_of("t", "r", 1, HookRelease::Disposed, Some(u64::MAX), 5).expect("kept");
        assert_eq!(long.reserved_until_ms, Some(5 + MAX_RESERVE_MS));
    }

    #[test]
    fn refusals_say_expired_then_reserved_then_not_found() {
        let expired = end_of("t", "r", 1, HookRelease::Expired, Some(10), 5);
        assert!(matches!(
            refusal(expired.as_ref(), "t", 100),
            OpRejected::HookExpired { .. }
        ));
        let reserved = end_of("t", "r", 1, HookRelease::RunEnded, Some(10), 5);
        assert!(matches!(
            refusal(reserved.as_ref(), "t", 14),
            OpRejected::TokenReserved { until_ms: 15, .. }
        ));
        assert!(matches!(
            refusal(reserved.as_ref(), "t", 15),
            OpRejected::HookNotFound { .. }
        ));
        assert!(matches!(
            refusal(None, "t", 0),
            OpRejected::HookNotFound { .. }
        ));
    }

    #[test]
    fn a_reservation_stands_against_other_runs_until_it_ends() {
        let reserved = end_of("t", "r", 1, HookRelease::Disposed, Some(10), 5);
        assert_eq!(reserved_against(reserved.as_ref(), "other", 14), Some("r"));
        assert_eq!(reserved_against(reserved.as_ref(), "r", 14), None);
        assert_eq!(reserved_against(reserved.as_ref(), "other", 15), None);
        let expired = end_of("t", "r", 1, HookRelease::Expired, None, 5);
        assert_eq!(reserved_against(expired.as_ref(), "other", 6), None);
    }
}
