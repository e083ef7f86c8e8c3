//! What a workflow asks of a hook when it creates one: a chosen token, metadata, an expiry,
//! a reservation of the token after the hook ends.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

#[cfg(doc)]
use crate::{ctx::Ctx, error::WorkflowError, hook::Hook, hook::HookEvent};

/// Options of [`Ctx::create_hook`].
///
/// ```
/// use std::time::Duration;
/// use tether_core::HookOptions;
/// let options = HookOptions::new()
///     .token("order:42")
///     .expires_in(Duration::from_secs(3600)) // no answer within an hour: expired
///     .reserve_for(Duration::from_secs(86_400)); // no other run takes `order:42` for a day
/// assert_eq!(options.reserve_for, Some(Duration::from_secs(86_400)));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HookOptions {
    /// A token of your choice (e.g. `slack_messages:{channel}`); `None` generates one with 160
    /// bits from a cryptographic source.
    pub token: Option<String>,
    /// Metadata stored with the hook and shown wherever hooks are listed.
    pub metadata: Option<Value>,
    /// When the hook expires ([`HookOptions::expires_in`], [`HookOptions::expires_at`]).
    pub expires: Option<HookExpiry>,
    /// How long the token stays reserved once the hook lets it go
    /// ([`HookOptions::reserve_for`]).
    pub reserve_for: Option<Duration>,
}

/// When a hook expires: after a while (counted from its creation, on the run's journaled
/// clock), or at a wall-clock time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookExpiry {
    /// This long after the hook's creation.
    In(Duration),
    /// At this time.
    At(SystemTime),
}

impl HookExpiry {
    /// The expiry instant in ms since the Unix epoch, for a hook created at `now_ms`.
    pub(crate) fn at_ms(self, now_ms: u64) -> u64 {
        match self {
            HookExpiry::In(d) => {
                now_ms.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            }
            HookExpiry::At(t) => t
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

impl HookOptions {
    /// Default options: generated token, no metadata.
    pub fn new() -> Self {
        Self::default()
    }

    /// Use this token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Attach metadata.
    pub fn metadata(mut self, metadata: Value) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// Expire the hook `duration` after its creation: its token is released, payloads sent
    /// to it afterwards are refused (`410 hook_expired`), and once the payloads accepted
    /// before the expiry are taken, the hook's next wait ends expired
    /// ([`Hook::recv_or_expired`] gives [`HookEvent::Expired`], [`Hook::recv`] the error
    /// `hook_expired`, [`Hook::next`] `None`). The expiry instant is computed from the run's
    /// clock when the hook is created and journaled with it, so replay expires it at the same
    /// point of the journal.
    pub fn expires_in(mut self, duration: Duration) -> Self {
        self.expires = Some(HookExpiry::In(duration));
        self
    }

    /// Expire the hook at `deadline` (wall clock); see [`HookOptions::expires_in`].
    pub fn expires_at(mut self, deadline: SystemTime) -> Self {
        self.expires = Some(HookExpiry::At(deadline));
        self
    }

    /// Keep the token reserved for `duration` after the hook lets it go (disposed, expired,
    /// or its run ended): meanwhile another run creating a hook with this token gets
    /// [`WorkflowError::HookConflict`] naming this run, and a payload sent to it is refused
    /// (`410 token_reserved`, or `hook_expired` if the hook expired), instead of reaching a
    /// new holder. Meant for chosen tokens (e.g. `order:{id}`), so a finished order's token is
    /// not taken over by a new run while senders may still use it (Vercel's
    /// `experimental_expires`). The run that reserved the token may create a hook with it again.
    pub fn reserve_for(mut self, duration: Duration) -> Self {
        self.reserve_for = Some(duration);
        self
    }
}
