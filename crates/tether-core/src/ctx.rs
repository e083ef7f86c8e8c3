//! [`Ctx`]: everything a workflow may do that touches the world. Each call is a journaled
//! command, **issued when the method is called** (not when its future is first polled): in
//! `join(ctx.set(..), ctx.step(..))` the `set` comes first in the journal, whatever order the
//! futures finish in. Every `ctx` method follows this one rule.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::error::{StepError, WorkflowError};
use crate::event::HOOK_KIND_TOKEN;
use crate::hook::{CreateHook, HookOptions};
use crate::patch::Patch;
use crate::state::{Drawn, HookTiming, Shared};
use crate::step::{RetryPolicy, StepFuture, StepTask};
use crate::timer::Sleep;

/// The workflow context: handed to every workflow function, cheap to clone.
#[derive(Clone)]
pub struct Ctx {
    pub(crate) state: Shared,
    run_id: Arc<str>,
}

impl fmt::Debug for Ctx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx").field("run_id", &self.run_id).finish()
    }
}

/// Longest hook token a workflow may choose.
pub const MAX_TOKEN_LEN: usize = 512;

/// Why a chosen token cannot be used, if it cannot (checked before any command is issued, so
/// the refusal is the same on replay).
fn token_problem(token: &str) -> Option<String> {
    if token.is_empty() {
        Some("a hook token may not be empty; pass a token or let Tether generate one".into())
    } else if token.len() > MAX_TOKEN_LEN {
        Some(format!(
            "a hook token may be at most {MAX_TOKEN_LEN} bytes (this one has {})",
            token.len()
        ))
    } else if token.contains('\0') {
        Some("a hook token may not contain a NUL character".into())
    } else {
        None
    }
}

fn ms_to_time(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn time_to_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Ctx {
    pub(crate) fn new(state: Shared) -> Self {
        let run_id = Arc::from(state.lock().run_id.as_str());
        Ctx { state, run_id }
    }

    /// The id of the run.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Run a side effect as a step with the default [`RetryPolicy`] (3 attempts): `body` is
    /// called with `input` for each attempt (Tether clones it per attempt, so nothing else has
    /// to be cloned by hand):
    ///
    /// ```ignore
    /// let greeting: String = ctx
    ///     .step("greet", name, |name| async move { Ok(format!("hello {name}")) })
    ///     .await?;
    /// ```
    ///
    /// Several values go in a tuple, none in `()`. The result is journaled; on replay the body
    /// does not run again. The body may run more than once (a retry, or a crash before its
    /// result was committed): make it idempotent. Issued when called (like every `ctx`
    /// method).
    pub fn step<I, T, F, Fut>(&self, name: &str, input: I, body: F) -> StepFuture<T>
    where
        I: Clone + Send + Sync + 'static,
        T: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, StepError>> + Send + 'static,
    {
        self.step_with(name, RetryPolicy::default(), input, body)
    }

    /// [`Ctx::step`] with an explicit retry policy.
    pub fn step_with<I, T, F, Fut>(
        &self,
        name: &str,
        policy: RetryPolicy,
        input: I,
        body: F,
    ) -> StepFuture<T>
    where
        I: Clone + Send + Sync + 'static,
        T: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, StepError>> + Send + 'static,
    {
        let body = Arc::new(body);
        let cmd = self.state.lock().issue_step(name, |cmd| StepTask {
            cmd,
            name: name.to_string(),
            policy,
            body: Arc::new(move || {
                let fut = body(input.clone());
                Box::pin(async move {
                    let v = fut.await?;
                    serde_json::to_value(v).map_err(|e| {
                        StepError::fatal(format!("step result is not serializable: {e}"))
                    })
                })
            }),
        });
        StepFuture {
            state: self.state.clone(),
            cmd,
            name: name.to_string(),
            _t: PhantomData,
        }
    }

    /// Sleep durably for `duration`.
    pub fn sleep(&self, duration: Duration) -> Sleep {
        let mut st = self.state.lock();
        let at = st.env.now_ms().saturating_add(duration.as_millis() as u64);
        let cmd = st.issue_timer(at);
        Sleep {
            state: self.state.clone(),
            cmd,
            done: false,
        }
    }

    /// Sleep durably until `deadline` (wall clock).
    pub fn sleep_until(&self, deadline: SystemTime) -> Sleep {
        let cmd = self.state.lock().issue_timer(time_to_ms(deadline));
        Sleep {
            state: self.state.clone(),
            cmd,
            done: false,
        }
    }

    /// The current time, journaled: replay returns the time read the first time.
    pub fn now(&self) -> SystemTime {
        let mut st = self.state.lock();
        let live = st.env.now_ms();
        match st.draw(Drawn::Now(live)) {
            Drawn::Now(ms) => ms_to_time(ms),
            _ => ms_to_time(live),
        }
    }

    /// A random number, journaled.
    pub fn random(&self) -> u64 {
        let mut st = self.state.lock();
        let mut b = [0u8; 8];
        st.env.random_bytes(&mut b);
        match st.draw(Drawn::Random(u64::from_le_bytes(b))) {
            Drawn::Random(v) => v,
            _ => u64::from_le_bytes(b),
        }
    }

    /// A random (v4) UUID, journaled.
    pub fn uuid(&self) -> uuid::Uuid {
        let mut st = self.state.lock();
        let mut b = [0u8; 16];
        st.env.random_bytes(&mut b);
        let live = uuid::Builder::from_random_bytes(b).into_uuid();
        match st.draw(Drawn::Uuid(live.to_string())) {
            Drawn::Uuid(s) => s.parse().unwrap_or(live),
            _ => live,
        }
    }

    /// Whether the run takes the new branch of the change `change_id` (Temporal's patching
    /// model; see `docs/versioning.md`):
    ///
    /// ```ignore
    /// if ctx.patched("send-receipt").await {
    ///     ctx.step("receipt", order.clone(), send_receipt).await?; // new code
    /// }
    /// ```
    ///
    /// The first time a run reaches this call with code that has it, a marker
    /// ([`crate::EventBody::Patched`]) is journaled and the answer is `true`, once the marker
    /// is committed (so nothing of the new branch runs before the journal says the run took
    /// it); a replay that reaches the marker answers `true` again, across restarts. A run that
    /// went on past this point under the code before the change (its journal goes on, with no
    /// marker here) answers `false` at once and must take the old branch; nothing is written.
    /// A marker takes no command index, so the commands after it keep their indexes in old
    /// journals. Once `true` for a change id, `true` for the rest of the run. Decided when
    /// called, like every `ctx` command.
    pub fn patched(&self, change_id: &str) -> Patch {
        let answer = self.state.lock().patched(change_id);
        Patch {
            state: self.state.clone(),
            change_id: change_id.to_string(),
            answer,
        }
    }

    /// The old branch of change `change_id` is gone: journal its marker like
    /// [`Ctx::patched`] (so code that still asks `patched` takes the new branch for this run),
    /// without branching and without waiting (nothing depends on the answer). Replaying a run that passed this point under the code before the
    /// change fails with a non-determinism error naming the change (that run needs the old
    /// branch back). Once no run older than the deprecation remains, the call can go too:
    /// markers no code asks for are ignored.
    pub fn deprecate_patch(&self, change_id: &str) {
        self.state.lock().deprecate_patch(change_id)
    }

    /// Create a token hook receiving payloads of type `T`. Resolves once the hook holds its
    /// token; fails with [`crate::WorkflowError::HookConflict`] when another active hook holds
    /// it (the holder is not disturbed).
    pub fn create_hook<T>(&self, options: HookOptions) -> CreateHook<T> {
        self.create_hook_inner(options, HOOK_KIND_TOKEN, None)
    }

    pub(crate) fn create_hook_inner<T>(
        &self,
        options: HookOptions,
        kind: &str,
        definition: Option<String>,
    ) -> CreateHook<T> {
        if let Some(problem) = options.token.as_deref().and_then(token_problem) {
            return CreateHook {
                state: self.state.clone(),
                cmd: 0,
                refused: Some(WorkflowError::with_code("invalid_token", problem)),
                _t: PhantomData,
            };
        }
        let metadata = options.metadata.unwrap_or(Value::Null);
        let mut st = self.state.lock();
        let timing = HookTiming {
            expires_at_ms: options.expires.map(|e| e.at_ms(st.env.now_ms())),
            reserve_ms: options
                .reserve_for
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        };
        let cmd = st.issue_hook(options.token, kind, metadata, definition, timing);
        drop(st);
        CreateHook {
            state: self.state.clone(),
            cmd,
            refused: None,
            _t: PhantomData,
        }
    }

    /// The server's public base URL (see [`crate::Environment::public_base_url`]).
    pub fn public_base_url(&self) -> String {
        self.state.lock().env.public_base_url()
    }

    /// Whether the run has been asked to cancel (awaits then fail with `Cancelled`).
    pub fn is_cancelled(&self) -> bool {
        self.state.lock().cancelled.is_some()
    }
}
