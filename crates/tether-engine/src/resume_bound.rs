//! Resuming one given hook, and checking a payload ahead of time: what a resume link needs
//! (`tether-server`'s `/l/{link}`). A link names the hook it was made for, so a chosen token
//! taken again by a later run is not fed by an old link, and the answer says whether the
//! payload was stored now or its idempotency key had been used before (a link used twice).

use serde_json::Value;
use tether_store::HookRef;
use tracing::{info_span, Instrument};

use crate::engine::{plausible, Engine};
use crate::error::EngineError;
use crate::resume::check_webhook_request;

/// What [`Engine::resume_hook_bound`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResumeAnswer {
    /// The run that received the payload.
    pub run_id: String,
    /// `true` when the payload was appended now; `false` when the idempotency key had been
    /// used before with the same payload (nothing new was stored).
    pub stored: bool,
}

/// The hook a payload was checked against by [`Engine::check_resume`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckedHook {
    /// The hook: its run and command index.
    pub hook: HookRef,
    /// Its kind (`hook`, or `webhook` for a webhook's).
    pub kind: String,
}

impl Engine {
    /// Whether [`Engine::resume_hook`] would accept `payload` for `token` now (a hook holds
    /// it, the payload is within the size limit and passes the hook definition's validator),
    /// storing nothing. Answers the hook it checked against.
    pub async fn check_resume(
        &self,
        token: &str,
        payload: &Value,
    ) -> Result<CheckedHook, EngineError> {
        self.alive()?;
        if !plausible(token) {
            return Err(EngineError::HookNotFound);
        }
        self.check_size(payload)?;
        let hook = self
            .inner
            .store
            .get_hook(token)
            .await?
            .ok_or(EngineError::HookNotFound)?;
        if hook.kind == tether_core::HOOK_KIND_WEBHOOK {
            check_webhook_request(token, payload)?;
        }
        self.validate(hook.definition.as_deref(), payload)?;
        Ok(CheckedHook {
            hook: HookRef {
                run_id: hook.run_id,
                hook_cmd: hook.hook_cmd,
            },
            kind: hook.kind,
        })
    }

    /// [`Engine::resume_hook`] for the hook `bound` only (when given: a token now held by
    /// another hook answers [`EngineError::HookNotFound`]), saying whether the payload was
    /// stored now or the idempotency key had been used before. The key is checked first: a
    /// key used before answers again even after the hook has been released.
    pub async fn resume_hook_bound(
        &self,
        token: &str,
        payload: Value,
        idempotency_key: Option<String>,
        bound: Option<&HookRef>,
    ) -> Result<ResumeAnswer, EngineError> {
        let span = info_span!(
            "resume_hook",
            token = %tether_core::redact_token(token),
            run_id = tracing::field::Empty
        );
        let result = self
            .resume_bound(token, payload, idempotency_key, bound)
            .instrument(span)
            .await;
        match &result {
            Ok(_) => self.inner.metrics.resume_accepted(),
            Err(e) => self.inner.metrics.resume_refused(e.code()),
        }
        result.map(|accepted| ResumeAnswer {
            run_id: accepted.run_id,
            stored: accepted.seq.is_some(),
        })
    }
}
