//! What an append writes, entry by entry (the contract on [`crate::WriteOp::Append`]). The
//! planner walks the entries once; for each side effect it asks the backend's transaction
//! through [`AppendBackend`] (register a hook, send a signal ...) and turns the entry into the
//! one to write (a `HookConflict` for a taken token, `delivered_to` filled in, the state op's
//! outputs, a `SignalReceived` right after a wait that took a payload at once).

use std::collections::VecDeque;

use serde_json::Value;
use tether_core::event::{CommandIndex, Event, EventBody, ThreadInfo};

use super::child::{self, ChildBackend, NewChild};
use super::hook_end::{self, HookEndBackend, HookRelease};
use super::keep::{self, PendingBackend};
use super::run::RunRow;
use super::signal::{self, SignalBackend, SignalOutcome};
use super::state::{self, StateBackend};
use crate::{Ending, StoreError};

/// A hook to register.
#[derive(Clone, Copy, Debug)]
pub struct NewHook<'a> {
    /// The run creating it.
    pub run_id: &'a str,
    /// Its command index.
    pub cmd: CommandIndex,
    /// The token.
    pub token: &'a str,
    /// `hook` (or `webhook` later).
    pub kind: &'a str,
    /// User metadata.
    pub metadata: &'a Value,
    /// Hook definition name.
    pub definition: Option<&'a str>,
    /// When it expires, if it does.
    pub expires_at_ms: Option<u64>,
    /// How long its token stays reserved once it lets it go (at most
    /// [`hook_end::MAX_RESERVE_MS`]).
    pub reserve_ms: Option<u64>,
    /// Commit time.
    pub at_ms: u64,
}

/// A new hook thread to create.
#[derive(Clone, Debug)]
pub struct NewThread<'a> {
    /// The thread's run id.
    pub hook_id: &'a str,
    /// The workflow it runs.
    pub workflow: &'a str,
    /// Its input.
    pub args: &'a Value,
    /// Its place in the namespace.
    pub info: ThreadInfo,
    /// Its task queue (the spawn's `task_queue`).
    pub queue: &'a str,
    /// Commit time.
    pub at_ms: u64,
}

/// The side effects of an append's entries, done by a backend in the batch's transaction
/// (signals through [`SignalBackend`], shared state through [`StateBackend`], kept payloads
/// through [`PendingBackend`]). Each is a few statements of SQL; the planner decides when to call which and what the entry
/// then says.
#[allow(async_fn_in_trait)] // generic use only: the caller's concrete future keeps its `Send`
pub trait AppendBackend:
    SignalBackend + StateBackend + PendingBackend + ChildBackend + HookEndBackend
{
    /// The namespace (root run) of `run_id`, taking whatever lock its shared state needs;
    /// asked once per append, at the first entry that needs it.
    async fn namespace(&mut self, run_id: &str) -> Result<String, StoreError>;

    /// Create a hook thread (nothing if its id is taken).
    async fn create_thread(&mut self, thread: NewThread<'_>) -> Result<(), StoreError>;

    /// Register a hook; `Some(holder run)` when another active hook holds its token.
    async fn register_hook(&mut self, hook: &NewHook<'_>) -> Result<Option<String>, StoreError>;

    /// Release `token` if `run_id`'s hook `hook_cmd` holds it, recording the token's
    /// [`hook_end::end_of`] (from the released row's `reserve_ms`) if there is one.
    async fn release_hook(
        &mut self,
        token: &str,
        run_id: &str,
        hook_cmd: CommandIndex,
        how: HookRelease,
        at_ms: u64,
    ) -> Result<(), StoreError>;
}

/// What an append writes: its entries (numbered from the run's `last_seq`), and the ending
/// when one of them is terminal (the run then takes its status, output and error, loses its
/// owner, `wake_at`, hooks and signal waits; the append's `status` and `wake_at` are ignored).
#[derive(Clone, Debug, PartialEq)]
pub struct AppendPlan {
    /// The entries as written.
    pub written: Vec<Event>,
    /// The run's ending, if an entry ended it.
    pub ending: Option<Ending>,
}

impl AppendPlan {
    /// The run's `last_seq` after the append.
    pub fn last_seq(&self, before: u64) -> u64 {
        self.written.last().map_or(before, |e| e.seq)
    }
}

/// Walk `events` of an append to `run_id` (whose journal ends at `last_seq`), doing each
/// entry's side effect through `backend`; the entries to write and the ending. The backend
/// writes the entries and updates the run afterwards.
pub async fn plan_append<B: AppendBackend>(
    backend: &mut B,
    run_id: &str,
    events: Vec<EventBody>,
    run: &RunRow,
    at_ms: u64,
) -> Result<AppendPlan, StoreError> {
    let mut seq = run.last_seq;
    let mut ending = None;
    let mut written: Vec<Event> = Vec::with_capacity(events.len());
    // The namespace, found (and its shared state locked) at the first entry needing it.
    let mut root: Option<String> = None;
    // Entries still to write; a signal taken at once puts its `SignalReceived` in front.
    let mut queue: VecDeque<EventBody> = events.into();
    while let Some(body) = queue.pop_front() {
        let body = match body {
            EventBody::StateGet { .. }
            | EventBody::StateSet { .. }
            | EventBody::StateIncr { .. }
            | EventBody::StateDelete { .. } => {
                let ns = namespace(backend, &mut root, run_id).await?;
                state::state_op(backend, &ns, body).await?
            }
            EventBody::HookSpawned {
                ref hook_id,
                ref workflow,
                ref args,
                ref retry,
                ref fail_signal,
                ref task_queue,
                ..
            } => {
                let ns = namespace(backend, &mut root, run_id).await?;
                let info = ThreadInfo {
                    root_run: ns,
                    parent_run: run_id.to_owned(),
                    retry: retry.clone(),
                    fail_signal: fail_signal.clone(),
                };
                let thread = NewThread {
                    hook_id,
                    workflow,
                    args,
                    info,
                    queue: task_queue,
                    at_ms,
                };
                // A taken id (only on a repeated outside request) creates nothing.
                backend.create_thread(thread).await?;
                crate::crash_point!("store.mid_spawn");
                body
            }
            EventBody::SignalSent {
                cmd,
                signal_id,
                payload,
                ..
            } => {
                let outcome = signal::send(backend, &signal_id, &payload, at_ms, run_id).await?;
                let delivered_to = match outcome {
                    SignalOutcome::ToSelf { wait_cmd } => {
                        queue.push_front(EventBody::SignalReceived {
                            wait_cmd,
                            payload: payload.clone(),
                        });
                        Some(run_id.to_owned())
                    }
                    SignalOutcome::To(other) => Some(other),
                    SignalOutcome::Kept => None,
                };
                EventBody::SignalSent {
                    cmd,
                    signal_id,
                    payload,
                    delivered_to,
                }
            }
            EventBody::SignalWaited { cmd, ref signal_id } => {
                let taken = signal::wait(backend, run_id, cmd, signal_id, at_ms).await?;
                if let Some(payload) = taken {
                    queue.push_front(EventBody::SignalReceived {
                        wait_cmd: cmd,
                        payload,
                    });
                }
                body
            }
            EventBody::SignalReleased {
                cmd,
                wait_cmd,
                signal_id,
                ..
            } => {
                let released =
                    signal::release_wait(backend, run_id, wait_cmd, &signal_id, &written, at_ms)
                        .await?;
                let returned = released.returned.is_some();
                let delivered_to = match (released.outcome, released.returned) {
                    (SignalOutcome::ToSelf { wait_cmd: to }, Some(payload)) => {
                        queue.push_front(EventBody::SignalReceived {
                            wait_cmd: to,
                            payload,
                        });
                        Some(run_id.to_owned())
                    }
                    (SignalOutcome::ToSelf { .. }, None) | (SignalOutcome::Kept, _) => None,
                    (SignalOutcome::To(other), _) => Some(other),
                };
                EventBody::SignalReleased {
                    cmd,
                    wait_cmd,
                    signal_id,
                    returned,
                    delivered_to,
                }
            }
            EventBody::HookCreated {
                cmd,
                token,
                kind,
                metadata,
                definition,
                generated,
                expires_at_ms,
                reserve_ms,
            } => {
                let hook = NewHook {
                    run_id,
                    cmd,
                    token: &token,
                    kind: &kind,
                    metadata: &metadata,
                    definition: definition.as_deref(),
                    expires_at_ms,
                    reserve_ms: reserve_ms.map(|r| r.min(hook_end::MAX_RESERVE_MS)),
                    at_ms,
                };
                // Registered first, the reservation looked at after: a reservation committed
                // by a concurrent writer releasing the token is then seen (the insert waited
                // for it), never missed.
                let mut outcome = backend.register_hook(&hook).await?;
                if outcome.is_none() {
                    let end = backend.hook_end(&token).await?;
                    if let Some(holder) = hook_end::reserved_against(end.as_ref(), run_id, at_ms) {
                        backend.unregister_hook(&token, run_id, cmd).await?;
                        outcome = Some(holder.to_owned());
                    } else if end.is_some() {
                        backend.forget_hook_end(&token).await?;
                    }
                }
                match outcome {
                    None => {
                        // Payloads kept for the token follow the hook, oldest first.
                        let kept = keep::take_for_hook(backend, &token, run_id, at_ms).await?;
                        for payload in kept.into_iter().rev() {
                            queue.push_front(EventBody::HookReceived {
                                hook_cmd: cmd,
                                payload,
                            });
                        }
                        EventBody::HookCreated {
                            cmd,
                            token,
                            kind,
                            metadata,
                            definition,
                            generated,
                            expires_at_ms,
                            reserve_ms,
                        }
                    }
                    Some(holder_run) => EventBody::HookConflict {
                        cmd,
                        token,
                        holder_run,
                    },
                }
            }
            EventBody::HookDisposed {
                hook_cmd,
                ref token,
                ..
            } => {
                backend
                    .release_hook(token, run_id, hook_cmd, HookRelease::Disposed, at_ms)
                    .await?;
                body
            }
            EventBody::HookExpired {
                hook_cmd,
                ref token,
            } => {
                backend
                    .release_hook(token, run_id, hook_cmd, HookRelease::Expired, at_ms)
                    .await?;
                body
            }
            EventBody::ChildStarted {
                cmd,
                ref child_run_id,
                ref workflow,
                ref input,
                detached,
            } => {
                let new = NewChild {
                    parent_run_id: run_id,
                    parent_cmd: cmd,
                    child_run_id,
                    workflow,
                    input,
                    detached,
                    at_ms,
                };
                // A taken id (the same start journaled again) creates nothing.
                backend.create_child(new).await?;
                body
            }
            EventBody::CancelRequested { ref reason } => {
                child::cascade_cancel(backend, run_id, reason, at_ms).await?;
                body
            }
            other => {
                if let Some(end) = Ending::of(&other) {
                    // What an ending releases besides the run's own rows: its parent hears.
                    child::report_end(backend, run.parent.as_ref(), &end, at_ms).await?;
                    ending = Some(end);
                }
                other
            }
        };
        seq += 1;
        written.push(Event { seq, at_ms, body });
    }
    Ok(AppendPlan { written, ending })
}

/// The namespace of `run_id`, asked of the backend the first time only.
async fn namespace<B: AppendBackend>(
    backend: &mut B,
    root: &mut Option<String>,
    run_id: &str,
) -> Result<String, StoreError> {
    if let Some(ns) = root {
        return Ok(ns.clone());
    }
    let ns = backend.namespace(run_id).await?;
    *root = Some(ns.clone());
    Ok(ns)
}

#[cfg(test)]
#[path = "append_tests.rs"]
mod tests;
