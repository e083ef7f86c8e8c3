//! The hooks this node's commits created, by token: what `resume_hook` needs (the hook to
//! name in the `Resume` op, and its definition to validate the payload) without reading the
//! store for every payload.
//!
//! The writer updates it from every committed entry (`HookCreated` adds, `HookDisposed` and a
//! run's end remove). It can only be stale for hooks another node changed (PostgreSQL
//! clusters): the store then refuses the `Resume`, whose `expect` names the cached hook, and
//! `resume_hook` reads the store and tries once more. It holds at most [`MAX_CACHED_HOOKS`]
//! hooks; when full it starts over empty (tokens not in it are read from the store).

use std::collections::HashMap;

use parking_lot::Mutex;
use tether_core::{CommandIndex, Event, EventBody};

/// Most hooks the cache holds: twice the default live-run cache. An entry costs about 1 KB of
/// RSS as measured (`tether bench suspended --n 100000`: +110 MB with a 200,000 cap, +65 MB
/// with 50,000), so at most about 25 MB.
pub(crate) const MAX_CACHED_HOOKS: usize = 20_000;

/// A hook as `resume_hook` needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CachedHook {
    /// The run holding the token.
    pub run_id: String,
    /// The hook's command index in that run.
    pub hook_cmd: CommandIndex,
    /// The hook definition validating its payloads, if any.
    pub definition: Option<String>,
    /// A webhook's hook: its payloads must be webhook requests.
    pub webhook: bool,
}

/// The engine's hook cache: a [`HookTable`] behind its lock.
#[derive(Default)]
pub(crate) struct HookCache {
    table: Mutex<HookTable>,
}

impl HookCache {
    /// The hook holding `token`, as far as this node knows.
    #[inline]
    pub(crate) fn get(&self, token: &str) -> Option<CachedHook> {
        self.table.lock().get(token)
    }

    /// Forget `token` (the store said no such hook holds it).
    pub(crate) fn forget(&self, token: &str) {
        self.table.lock().forget(token);
    }

    /// Take in entries `run_id` committed.
    #[inline]
    pub(crate) fn committed(&self, run_id: &str, events: &[Event]) {
        self.table.lock().committed(run_id, events);
    }
}

/// Hooks by token, and the tokens of each run (to drop them when it ends).
#[derive(Default)]
pub(crate) struct HookTable {
    by_token: HashMap<String, CachedHook>,
    by_run: HashMap<String, Vec<String>>,
}

impl HookTable {
    /// The hook holding `token`, as far as this node knows.
    pub(crate) fn get(&self, token: &str) -> Option<CachedHook> {
        self.by_token.get(token).cloned()
    }

    /// Forget `token` (the store said no such hook holds it).
    pub(crate) fn forget(&mut self, token: &str) {
        if let Some(hook) = self.by_token.remove(token) {
            self.drop_from_run(&hook.run_id, token);
        }
    }

    /// Take in entries `run_id` committed.
    pub(crate) fn committed(&mut self, run_id: &str, events: &[Event]) {
        for e in events {
            match &e.body {
                EventBody::HookCreated {
                    cmd,
                    token,
                    definition,
                    kind,
                    ..
                } => {
                    if self.by_token.len() >= MAX_CACHED_HOOKS {
                        // Start over rather than stop caching: entries for runs that ended on
                        // other nodes are never removed otherwise, and would fill it for good.
                        self.by_token.clear();
                        self.by_run.clear();
                    }
                    let hook = CachedHook {
                        run_id: run_id.to_owned(),
                        hook_cmd: *cmd,
                        definition: definition.clone(),
                        webhook: kind == tether_core::HOOK_KIND_WEBHOOK,
                    };
                    if let Some(old) = self.by_token.insert(token.clone(), hook) {
                        // The store gave the token to this run: the old holder let it go.
                        self.drop_from_run(&old.run_id, token);
                    }
                    self.by_run
                        .entry(run_id.to_owned())
                        .or_default()
                        .push(token.clone());
                }
                EventBody::HookDisposed {
                    hook_cmd, token, ..
                }
                | EventBody::HookExpired { hook_cmd, token } => {
                    let held = self
                        .by_token
                        .get(token)
                        .is_some_and(|h| h.run_id == run_id && h.hook_cmd == *hook_cmd);
                    if held {
                        self.forget(token);
                    }
                }
                body if body.is_terminal() => self.run_ended(run_id),
                _ => {}
            }
        }
    }

    /// Every hook of an ended run is released.
    fn run_ended(&mut self, run_id: &str) {
        for token in self.by_run.remove(run_id).unwrap_or_default() {
            if self
                .by_token
                .get(&token)
                .is_some_and(|h| h.run_id == run_id)
            {
                self.by_token.remove(&token);
            }
        }
    }

    fn drop_from_run(&mut self, run_id: &str, token: &str) {
        if let Some(tokens) = self.by_run.get_mut(run_id) {
            tokens.retain(|t| t != token);
            if tokens.is_empty() {
                self.by_run.remove(run_id);
            }
        }
    }

    /// How many hooks the cache holds.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_token.len()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn created(seq: u64, cmd: CommandIndex, token: &str, definition: Option<&str>) -> Event {
        Event {
            seq,
            at_ms: 0,
            body: EventBody::HookCreated {
                cmd,
                token: token.into(),
                kind: "hook".into(),
                metadata: json!(null),
                definition: definition.map(str::to_owned),
                generated: false,
                expires_at_ms: None,
                reserve_ms: None,
            },
        }
    }

    fn disposed(seq: u64, hook_cmd: CommandIndex, token: &str) -> Event {
        Event {
            seq,
            at_ms: 0,
            body: EventBody::HookDisposed {
                cmd: hook_cmd + 10,
                hook_cmd,
                token: token.into(),
            },
        }
    }

    #[test]
    fn created_hooks_are_found_until_disposed_or_their_run_ends() {
        let mut cache = HookTable::default();
        cache.committed(
            "a",
            &[
                created(2, 1, "t1", Some("approval")),
                created(3, 2, "t2", None),
            ],
        );
        assert_eq!(
            cache.get("t1"),
            Some(CachedHook {
                run_id: "a".into(),
                hook_cmd: 1,
                definition: Some("approval".into()),
                webhook: false,
            })
        );
        cache.committed("a", &[disposed(4, 1, "t1")]);
        assert_eq!(cache.get("t1"), None, "a disposed hook is gone");
        assert!(cache.get("t2").is_some());
        let end = Event {
            seq: 5,
            at_ms: 0,
            body: EventBody::RunCompleted { output: json!(1) },
        };
        cache.committed("a", &[end]);
        assert_eq!(cache.get("t2"), None, "an ended run holds no hook");
        assert_eq!(cache.len(), 0);
        assert!(cache.by_run.is_empty());
    }

    #[test]
    fn a_full_cache_starts_over() {
        let mut cache = HookTable::default();
        for i in 0..MAX_CACHED_HOOKS {
            cache.committed(&format!("r{i}"), &[created(2, 1, &format!("t{i}"), None)]);
        }
        assert_eq!(cache.len(), MAX_CACHED_HOOKS);
        cache.committed("new", &[created(2, 1, "fresh", None)]);
        assert_eq!(cache.len(), 1, "the full cache was emptied first");
        assert!(cache.get("fresh").is_some());
        assert_eq!(cache.by_run.len(), 1);
    }

    #[test]
    fn a_disposal_of_another_hook_or_run_leaves_the_holder() {
        let mut cache = HookTable::default();
        cache.committed("a", &[created(2, 1, "t", None)]);
        cache.committed("b", &[disposed(2, 1, "t")]);
        cache.committed("a", &[disposed(3, 7, "t")]);
        assert_eq!(cache.get("t").map(|h| h.run_id), Some("a".into()));
        // The token moved to run b (a released it on another node): b holds it, and a's end
        // does not take it from b.
        cache.committed("b", &[created(3, 1, "t", None)]);
        let end = Event {
            seq: 9,
            at_ms: 0,
            body: EventBody::RunCancelled {
                reason: Some("x".into()),
            },
        };
        cache.committed("a", &[end]);
        assert_eq!(cache.get("t").map(|h| h.run_id), Some("b".into()));
        cache.forget("t");
        assert_eq!(cache.get("t"), None);
        assert!(cache.by_run.is_empty());
    }
}
