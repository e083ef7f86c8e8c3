//! Token hooks (the Vercel Workflow model): a workflow creates a hook, publishes its token, and
//! receives the payloads the outside world sends to that token, in acceptance order, none lost,
//! none twice.
//!
//! A payload is taken from the hook's buffer only when the future that asked for it completes,
//! so the losing branch of a `race` never eats a payload.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::Stream;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::ctx::Ctx;
use crate::error::WorkflowError;
use crate::event::{CommandIndex, HOOK_KIND_TOKEN};
use crate::state::{HookPhase, Shared};

pub use crate::hook_options::{HookExpiry, HookOptions};

/// A registered hook receiving payloads of type `T`, in acceptance order (none lost, none
/// twice). The seed's idioms:
///
/// - once: `let payload = hook.await?;` (takes one payload, then disposes the hook);
/// - one at a time: `let payload = hook.recv().await?;` (e.g. raced against a timer);
/// - `for await`: `while let Some(payload) = hook.next().await { let payload = payload?; .. }`
///   (`Hook` is also a [`Stream`] of payloads, and `next` has `StreamExt::next`'s shape);
/// - `dispose()`, or dropping the hook (`using`), releases the token at once.
pub struct Hook<T> {
    state: Shared,
    cmd: CommandIndex,
    token: String,
    _t: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Hook<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hook")
            .field("cmd", &self.cmd)
            .field("token", &self.token)
            .finish()
    }
}

impl<T> Hook<T> {
    /// The token that resumes this hook.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Release the token now. Payloads sent to it afterwards are refused as unknown, and
    /// another run may create a hook with the same token.
    pub fn dispose(self) {
        // Drop does the work.
    }
}

impl<T: DeserializeOwned> Hook<T> {
    /// The next payload, in acceptance order: `Some(Ok(payload))`, or `Some(Err(..))` when
    /// the run is cancelled or the payload does not decode into `T`. A hook's stream of
    /// payloads does not end while the hook lives, so this gives `None` only once the hook
    /// has expired ([`HookOptions::expires_in`]) and every payload accepted before is taken;
    /// the shape is `StreamExt::next`'s, so `while let Some(payload) = hook.next().await`
    /// reads like the seed's `for await (const payload of hook)`.
    #[allow(clippy::should_implement_trait)] // a Future, not an Iterator
    pub fn next(&mut self) -> Next<'_, T> {
        Next { hook: self }
    }

    /// The next payload, in acceptance order, or the error (cancellation, a payload that
    /// does not decode, [`WorkflowError::HookExpired`]): `hook.recv().await?`. Raced against
    /// a timer, the loser takes nothing.
    pub fn recv(&mut self) -> Recv<'_, T> {
        Recv { hook: self }
    }

    /// The next payload, or [`HookEvent::Expired`] once the hook has expired
    /// ([`HookOptions::expires_in`]) and every payload accepted before the expiry is taken;
    /// errors are cancellation and a payload that does not decode. No timer to race by hand:
    ///
    /// ```ignore
    /// match hook.recv_or_expired().await? {
    ///     HookEvent::Payload(decision) => decide(decision),
    ///     HookEvent::Expired => escalate(),
    /// }
    /// ```
    pub fn recv_or_expired(&mut self) -> RecvOrExpired<'_, T> {
        RecvOrExpired { hook: self }
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Result<HookEvent<T>, WorkflowError>> {
        let mut st = self.state.lock();
        if let Some(reason) = st.cancelled.clone() {
            return Poll::Ready(Err(WorkflowError::Cancelled { reason }));
        }
        let Some(slot) = st.hooks.get_mut(&self.cmd) else {
            return Poll::Pending;
        };
        match slot.buffer.pop_front() {
            Some(v) => Poll::Ready(serde_json::from_value(v).map(HookEvent::Payload).map_err(
                |e| WorkflowError::Decode {
                    message: format!("payload for hook {:?}: {e}", self.token),
                },
            )),
            None if slot.expired => Poll::Ready(Ok(HookEvent::Expired)),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    fn poll_payload(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, WorkflowError>> {
        self.poll_event(cx).map(|event| match event? {
            HookEvent::Payload(payload) => Ok(payload),
            HookEvent::Expired => Err(WorkflowError::HookExpired {
                token: self.token.clone(),
            }),
        })
    }

    fn poll_next_payload(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<T, WorkflowError>>> {
        self.poll_event(cx).map(|event| match event {
            Ok(HookEvent::Payload(payload)) => Some(Ok(payload)),
            Ok(HookEvent::Expired) => None,
            Err(e) => Some(Err(e)),
        })
    }
}

/// What [`Hook::recv_or_expired`] gives: a payload, or the hook's expiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookEvent<T> {
    /// The next payload, in acceptance order.
    Payload(T),
    /// The hook expired and every payload accepted before is taken; no more will come.
    Expired,
}

impl<T> HookEvent<T> {
    /// The payload, or `None` when the hook expired.
    pub fn payload(self) -> Option<T> {
        match self {
            HookEvent::Payload(payload) => Some(payload),
            HookEvent::Expired => None,
        }
    }

    /// Whether the hook expired.
    pub fn is_expired(&self) -> bool {
        matches!(self, HookEvent::Expired)
    }
}

/// The future of [`Hook::recv_or_expired`].
#[must_use = "a payload is only taken by awaiting"]
pub struct RecvOrExpired<'a, T> {
    hook: &'a mut Hook<T>,
}

impl<T> fmt::Debug for RecvOrExpired<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvOrExpired")
            .field("hook", &self.hook)
            .finish()
    }
}

impl<T: DeserializeOwned> Future for RecvOrExpired<'_, T> {
    type Output = Result<HookEvent<T>, WorkflowError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().hook.poll_event(cx)
    }
}

impl<T> Drop for Hook<T> {
    fn drop(&mut self) {
        self.state.lock().issue_dispose(self.cmd);
    }
}

/// The future of [`Hook::next`]: `Some(result)`, like `StreamExt::next` (`None` once the
/// hook expired).
#[must_use = "a payload is only taken by awaiting"]
pub struct Next<'a, T> {
    hook: &'a mut Hook<T>,
}

impl<T> fmt::Debug for Next<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Next").field("hook", &self.hook).finish()
    }
}

impl<T: DeserializeOwned> Future for Next<'_, T> {
    type Output = Option<Result<T, WorkflowError>>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().hook.poll_next_payload(cx)
    }
}

/// The future of [`Hook::recv`].
#[must_use = "a payload is only taken by awaiting"]
pub struct Recv<'a, T> {
    hook: &'a mut Hook<T>,
}

impl<T> fmt::Debug for Recv<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recv").field("hook", &self.hook).finish()
    }
}

impl<T: DeserializeOwned> Future for Recv<'_, T> {
    type Output = Result<T, WorkflowError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().hook.poll_payload(cx)
    }
}

impl<T: DeserializeOwned> Stream for Hook<T> {
    type Item = Result<T, WorkflowError>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_payload(cx)
    }
}

impl<T: DeserializeOwned + Send + 'static> IntoFuture for Hook<T> {
    type Output = Result<T, WorkflowError>;
    type IntoFuture = BoxFuture<'static, Result<T, WorkflowError>>;

    /// Take one payload, then dispose the hook.
    fn into_future(mut self) -> Self::IntoFuture {
        Box::pin(async move { self.recv().await })
    }
}

/// The future of [`Ctx::create_hook`]: resolves once the hook is registered (its token is then
/// resumable), or fails with [`WorkflowError::HookConflict`].
#[must_use = "a hook is only usable once its creation is awaited"]
pub struct CreateHook<T> {
    pub(crate) state: Shared,
    pub(crate) cmd: CommandIndex,
    /// Set when the options were refused before any command was issued.
    pub(crate) refused: Option<WorkflowError>,
    pub(crate) _t: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for CreateHook<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateHook")
            .field("cmd", &self.cmd)
            .finish()
    }
}

impl<T> Future for CreateHook<T> {
    type Output = Result<Hook<T>, WorkflowError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(e) = this.refused.take() {
            return Poll::Ready(Err(e));
        }
        let mut st = this.state.lock();
        let cancelled = st.cancelled.clone();
        let Some(slot) = st.hooks.get_mut(&this.cmd) else {
            return Poll::Pending;
        };
        match &slot.phase {
            HookPhase::Active => Poll::Ready(Ok(Hook {
                state: this.state.clone(),
                cmd: this.cmd,
                token: slot.token.clone(),
                _t: PhantomData,
            })),
            HookPhase::Conflict { holder_run } => Poll::Ready(Err(WorkflowError::HookConflict {
                token: slot.token.clone(),
                holder_run: holder_run.clone(),
            })),
            HookPhase::Disposed => Poll::Pending,
            HookPhase::Creating => match cancelled {
                Some(reason) => Poll::Ready(Err(WorkflowError::Cancelled { reason })),
                None => {
                    slot.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            },
        }
    }
}

/// Validation of a payload at resume time: `Ok` lets it in, `Err(reason)` refuses it (HTTP 400
/// with the reason; the run never sees it).
pub type PayloadValidator = Arc<dyn Fn(&Value) -> Result<(), String> + Send + Sync>;

type Check<T> = Arc<dyn Fn(&T) -> Result<(), String> + Send + Sync>;

/// A typed hook definition: one value used on both sides, to create the hook inside a workflow
/// and to check payloads from outside before they are accepted (the seed's `defineHook`).
///
/// Its **name** is stored with every hook created from it and finds the definition again when
/// a payload arrives, so it must stay stable across deploys: rename the payload type or move
/// it freely, never the name (or keep the old one with [`HookDef::alias`]).
///
/// ```
/// use tether_core::{define_hook, HookDef};
/// #[derive(serde::Deserialize)]
/// struct Decision { approved: bool, comment: String }
/// let def: HookDef<Decision> = define_hook::<Decision>("approval.decision")
///     .validate(|d| if d.comment.len() > 1000 { Err("comment too long".into()) } else { Ok(()) });
/// assert!(def.check(&serde_json::json!({"approved": true, "comment": "ok"})).is_ok());
/// assert!(def.check(&serde_json::json!({"approved": "yes"})).is_err());
/// ```
pub struct HookDef<T> {
    name: String,
    aliases: Vec<String>,
    check: Option<Check<T>>,
    schema: Option<Arc<Value>>,
}

impl<T> Clone for HookDef<T> {
    fn clone(&self) -> Self {
        HookDef {
            name: self.name.clone(),
            aliases: self.aliases.clone(),
            check: self.check.clone(),
            schema: self.schema.clone(),
        }
    }
}

impl<T> fmt::Debug for HookDef<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookDef")
            .field("name", &self.name)
            .field("aliases", &self.aliases)
            .finish()
    }
}

/// Define a typed hook named `name` (stable: it is stored with each hook created from it).
/// Payloads must decode into `T` (and pass [`HookDef::validate`], if given) to be accepted.
///
/// Hooks stored by Tether 0.1, which keyed a definition by `std::any::type_name::<T>()`, still
/// find it: that key is an alias of every definition (see [`HookDef::alias`] for a type that
/// has since moved).
pub fn define_hook<T: DeserializeOwned + 'static>(name: impl Into<String>) -> HookDef<T> {
    HookDef {
        name: name.into(),
        aliases: vec![std::any::type_name::<T>().to_string()],
        check: None,
        schema: None,
    }
}

impl<T: DeserializeOwned + 'static> HookDef<T> {
    /// Rename the definition (hooks stored under the old name then need [`HookDef::alias`]).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Also find this definition for hooks stored under `old_name` (a former name, or the
    /// payload type's former path for hooks stored by Tether 0.1).
    pub fn alias(mut self, old_name: impl Into<String>) -> Self {
        self.aliases.push(old_name.into());
        self
    }

    /// Add a check that runs on the decoded payload at resume time.
    pub fn validate(
        mut self,
        f: impl Fn(&T) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.check = Some(Arc::new(f));
        self
    }

    /// Publish the JSON Schema of the payload type, derived from `T` (with
    /// `#[derive(schemars::JsonSchema)]`): the API shows it with every hook of this definition
    /// (`"schema"` in `GET /v1/hooks/{token}` and a run's hook list), the web UI builds its
    /// resume form from it, and `GET /openapi.json` lists it under `components.schemas`.
    ///
    /// ```
    /// use tether_core::define_hook;
    /// #[derive(serde::Deserialize, schemars::JsonSchema)]
    /// struct Decision { approved: bool, comment: String }
    /// let def = define_hook::<Decision>("approval.decision").with_schema();
    /// let schema = def.schema().expect("a schema");
    /// assert_eq!(schema["properties"]["approved"]["type"], "boolean");
    /// assert_eq!(schema["properties"]["comment"]["type"], "string");
    /// ```
    pub fn with_schema(self) -> Self
    where
        T: schemars::JsonSchema,
    {
        // Nested types inlined (no `$defs` to resolve), so the schema stands alone wherever it
        // is shown: in an API answer, a UI form, an OpenAPI component.
        let schema = schemars::generate::SchemaSettings::draft2020_12()
            .with(|s| s.inline_subschemas = true)
            .into_generator()
            .into_root_schema_for::<T>()
            .to_value();
        self.with_schema_value(schema)
    }

    /// Publish a JSON Schema written by hand (for a payload type without `JsonSchema`). It
    /// describes the payload to senders; what is accepted is still decided by decoding into
    /// `T` and [`HookDef::validate`].
    pub fn with_schema_value(mut self, schema: Value) -> Self {
        self.schema = Some(Arc::new(schema));
        self
    }

    /// The published JSON Schema of the payload, if any.
    pub fn schema(&self) -> Option<&Value> {
        self.schema.as_deref()
    }

    /// The published JSON Schema, shared (what a registry keeps).
    pub fn schema_shared(&self) -> Option<Arc<Value>> {
        self.schema.clone()
    }

    /// The definition's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The other names hooks of this definition may be stored under.
    pub fn aliases(&self) -> &[String] {
        &self.aliases
    }

    /// Check a payload as a resume would: decode into `T`, then run the validation.
    pub fn check(&self, payload: &Value) -> Result<(), String> {
        let t: T = serde_path_to_error::deserialize(payload).map_err(|e| {
            let path = e.path().to_string();
            if path == "." {
                format!("invalid payload: {}", e.inner())
            } else {
                format!("invalid payload: field `{path}`: {}", e.inner())
            }
        })?;
        match &self.check {
            Some(f) => f(&t).map_err(|e| format!("invalid payload: {e}")),
            None => Ok(()),
        }
    }

    /// The check as a type-erased validator (what the engine runs at resume time).
    pub fn validator(&self) -> PayloadValidator
    where
        T: Send + Sync,
    {
        let def = self.clone();
        Arc::new(move |v: &Value| def.check(v))
    }

    /// Create a hook from this definition inside a workflow.
    pub fn create(&self, ctx: &Ctx, options: HookOptions) -> CreateHook<T> {
        ctx.create_hook_inner(options, HOOK_KIND_TOKEN, Some(self.name.clone()))
    }

    /// Resume the hook holding `token` with a payload of this definition's type, through an
    /// engine in this process or a [`ResumeHook`] client of a server (the seed's
    /// `hook.resume(token, payload)`). The payload is checked as the receiving side will
    /// check it before anything is sent.
    pub async fn resume<R: ResumeHook>(
        &self,
        via: &R,
        token: &str,
        payload: &T,
    ) -> Result<String, TypedResumeError<R::Error>>
    where
        T: serde::Serialize,
    {
        let value = serde_json::to_value(payload)
            .map_err(|e| TypedResumeError::Invalid(format!("invalid payload: {e}")))?;
        self.check(&value).map_err(TypedResumeError::Invalid)?;
        via.resume_hook_value(token, value)
            .await
            .map_err(TypedResumeError::Refused)
    }
}

/// Whatever can resume a hook by token with a JSON payload: the engine (in-process) and the
/// HTTP client implement it, so [`HookDef::resume`] works with either.
pub trait ResumeHook: Sync {
    /// The error the resume can fail with.
    type Error;
    /// Deliver `payload` to the hook holding `token`; the run's id once it is stored.
    fn resume_hook_value(
        &self,
        token: &str,
        payload: Value,
    ) -> impl Future<Output = Result<String, Self::Error>> + Send;
}

/// Why [`HookDef::resume`] failed.
#[derive(Debug, thiserror::Error)]
pub enum TypedResumeError<E> {
    /// The payload does not pass the definition's own check (nothing was sent).
    #[error("{0}")]
    Invalid(String),
    /// The receiving side refused it (unknown token, ...).
    #[error(transparent)]
    Refused(E),
}

impl<E> TypedResumeError<E> {
    /// Whether the payload failed the definition's own check (nothing was sent).
    pub fn is_invalid(&self) -> bool {
        matches!(self, TypedResumeError::Invalid(_))
    }
}
