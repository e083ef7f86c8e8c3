//! Delivering a payload to a hook: `Engine::resume_hook`, the hot path of an external system
//! answering a run. One durable write; the hook it names comes from this node's hook cache
//! (`hook_cache.rs`) when it can, else from one store read.

use serde_json::Value;
use tether_store::{HookRef, OpOutcome, StoreError, WriteOp};
use tracing::{info_span, Instrument};

use crate::engine::{plausible, Engine, MAX_ID_LEN};
use crate::error::EngineError;
use crate::hook_cache::CachedHook;

/// A payload the store accepted: the run that received it, and the `seq` of its
/// `HookReceived` entry (`None` when an idempotency key had been used before: nothing new).
pub(crate) struct Accepted {
    pub(crate) run_id: String,
    pub(crate) seq: Option<u64>,
}

impl Engine {
    /// Deliver `payload` to the hook holding `token`. Returns the run id once the payload is
    /// durably appended to the run's journal (the run may not have processed it yet). With an
    /// `idempotency_key` used before for this token, nothing new is stored and the first answer
    /// is returned.
    pub async fn resume_hook(
        &self,
        token: &str,
        payload: Value,
        idempotency_key: Option<String>,
    ) -> Result<String, EngineError> {
        self.resume_accepted(token, payload, idempotency_key)
            .await
            .map(|accepted| accepted.run_id)
    }

    /// [`Engine::resume_hook`], answering with the entry's `seq` too; traced and counted in
    /// the metrics.
    pub(crate) async fn resume_accepted(
        &self,
        token: &str,
        payload: Value,
        idempotency_key: Option<String>,
    ) -> Result<Accepted, EngineError> {
        let span = info_span!(
            "resume_hook",
            token = %tether_core::redact_token(token),
            run_id = tracing::field::Empty
        );
        let result = self
            .resume_checked(token, payload, idempotency_key)
            .instrument(span)
            .await;
        match &result {
            Ok(_) => self.inner.metrics.resume_accepted(),
            Err(e) => self.inner.metrics.resume_refused(e.code()),
        }
        result
    }

    pub(crate) async fn resume_checked(
        &self,
        token: &str,
        payload: Value,
        idempotency_key: Option<String>,
    ) -> Result<Accepted, EngineError> {
        self.resume_bound(token, payload, idempotency_key, None)
            .await
    }

    /// [`Engine::resume_checked`] for the hook `bound` only, when given: a token held by
    /// another hook (a chosen token taken again by a later run) is not found.
    pub(crate) async fn resume_bound(
        &self,
        token: &str,
        payload: Value,
        idempotency_key: Option<String>,
        bound: Option<&HookRef>,
    ) -> Result<Accepted, EngineError> {
        self.alive()?;
        if !plausible(token) {
            return Err(EngineError::HookNotFound);
        }
        if idempotency_key.as_deref().is_some_and(|k| !plausible(k)) {
            return Err(EngineError::InvalidPayload {
                message: format!("the idempotency key must be 1 to {MAX_ID_LEN} bytes without NUL"),
            });
        }
        self.check_size(&payload)?;
        let is_bound =
            |h: &CachedHook| bound.is_none_or(|b| b.run_id == h.run_id && b.hook_cmd == h.hook_cmd);
        let cached = self.inner.hooks.get(token).filter(|h| is_bound(h));
        if let Some(hook) = cached {
            match self
                .resume_as(token, Some(&hook), payload.clone(), idempotency_key.clone())
                .await
            {
                // Another node released or moved the token since this node cached it: ask
                // the store which hook holds it now.
                Err(EngineError::HookNotFound) => self.inner.hooks.forget(token),
                // A payload refused by the cached hook's definition is checked again against
                // the hook the store has (a moved token may have another definition).
                Err(
                    EngineError::InvalidPayload { .. } | EngineError::HookDefinitionMissing { .. },
                ) => {}
                done => return done,
            }
        }
        let hook = self.inner.store.get_hook(token).await?.map(|h| CachedHook {
            run_id: h.run_id,
            hook_cmd: h.hook_cmd,
            definition: h.definition,
            webhook: h.kind == tether_core::HOOK_KIND_WEBHOOK,
        });
        let hook = hook.filter(|h| is_bound(h));
        self.resume_as(token, hook.as_ref(), payload, idempotency_key)
            .await
    }

    /// Validate `payload` for `hook` and commit a `Resume` that only `hook` may take.
    async fn resume_as(
        &self,
        token: &str,
        hook: Option<&CachedHook>,
        payload: Value,
        idempotency_key: Option<String>,
    ) -> Result<Accepted, EngineError> {
        let expect = match hook {
            Some(h) => {
                if h.webhook {
                    check_webhook_request(token, &payload)?;
                }
                self.validate(h.definition.as_deref(), &payload)?;
                HookRef {
                    run_id: h.run_id.clone(),
                    hook_cmd: h.hook_cmd,
                }
            }
            // Only an idempotent retry of an earlier, accepted resume can still succeed:
            // expect a hook that cannot exist, so a hook created with this token in the
            // meantime (not validated here) is not fed.
            None if idempotency_key.is_some() => HookRef {
                run_id: String::new(),
                hook_cmd: 0,
            },
            // No hook holds the token: whether its last one expired (or reserved it) decides
            // the answer, as the store's planner decides it for a resume.
            None => {
                let end = self.inner.store.get_hook_end(token).await?;
                let refused =
                    tether_store::plan::hook_end::refusal(end.as_ref(), token, self.inner.now_ms());
                return Err(refused.into());
            }
        };
        let now = self.inner.now_ms();
        // A run not live here (evicted, or not loaded since a restart) is claimed by the
        // resume itself when nobody holds it, so rebuilding it needs no claim commit first.
        let claim =
            (!self.inner.live.is_live(&expect.run_id)).then(|| self.inner.claim_if_free(now));
        let op = WriteOp::Resume {
            token: token.to_string(),
            payload,
            idempotency_key,
            expect: Some(expect),
            claim,
            at_ms: now,
        };
        let commit = info_span!("journal_commit");
        match self.inner.writer.write(op).instrument(commit).await? {
            Ok(OpOutcome::Resumed { run_id, event, .. }) => {
                tracing::Span::current().record("run_id", run_id.as_str());
                Ok(Accepted {
                    run_id,
                    seq: event.map(|e| e.seq),
                })
            }
            Err(rejected) => Err(rejected.into()),
            Ok(other) => Err(EngineError::Store(StoreError::corrupt(format!(
                "resume answered {other:?}"
            )))),
        }
    }

    pub(crate) fn validate(
        &self,
        definition: Option<&str>,
        payload: &Value,
    ) -> Result<(), EngineError> {
        let Some(def) = definition else {
            return Ok(());
        };
        let Some(check) = self.inner.registry.hook_validator(def) else {
            return Err(EngineError::HookDefinitionMissing {
                name: def.to_owned(),
            });
        };
        check(payload).map_err(|message| EngineError::InvalidPayload { message })
    }
}

/// A webhook's run reads each payload as a [`tether_core::WebhookRequest`]: anything else
/// (a plain `POST /v1/hooks/{token}` with some JSON) would fail the run when it decodes it, so
/// it is refused here, before it is stored.
pub(crate) fn check_webhook_request(token: &str, payload: &Value) -> Result<(), EngineError> {
    use serde::Deserialize;
    tether_core::WebhookRequest::deserialize(payload)
        .map(|_| ())
        .map_err(|e| EngineError::InvalidPayload {
            message: format!(
                "this token belongs to a webhook: call its URL ({}{}) instead; a payload \
                 delivered as a hook resume must be a webhook request ({e})",
                tether_core::WEBHOOK_PATH,
                tether_core::redact_token(token)
            ),
        })
}

/// An engine resumes hooks for typed definitions in-process: `def.resume(&engine, token,
/// &payload)` (see [`tether_core::HookDef::resume`]).
impl tether_core::ResumeHook for Engine {
    type Error = EngineError;

    fn resume_hook_value(
        &self,
        token: &str,
        payload: Value,
    ) -> impl std::future::Future<Output = Result<String, EngineError>> + Send {
        self.resume_hook(token, payload, None)
    }
}
