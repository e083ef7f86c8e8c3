//! Issuing commands from workflow code: steps, timers, hook creation and disposal, and the
//! journaled values of `now`, `random` and `uuid`. Each takes the next command index and is
//! answered from the journal on replay, or queued in the outbox when new.

use std::collections::VecDeque;

use serde_json::Value;

use super::{Drawn, HookPhase, HookSlot, HookTiming, RunState, StepSlot, TimerSlot};
use crate::event::{CommandIndex, EventBody};
use crate::step::StepTask;

impl RunState {
    /// Issue a step. Returns its index; queues its body to run unless the journal has its result.
    pub fn issue_step(
        &mut self,
        name: &str,
        make_task: impl FnOnce(CommandIndex) -> StepTask,
    ) -> CommandIndex {
        let cmd = self.take_cmd();
        let replayed = match self.recorded.get(&cmd) {
            Some(
                EventBody::StepCompleted { name: n, .. } | EventBody::StepFailed { name: n, .. },
            ) if n == name => true,
            Some(other) => {
                let other = other.clone();
                self.mismatch(cmd, &other, format!("step {name:?}"));
                true
            }
            None => false,
        };
        self.steps.insert(
            cmd,
            StepSlot {
                result: None,
                waker: None,
            },
        );
        if !replayed && self.cancelled.is_none() {
            self.step_tasks.push(make_task(cmd));
        }
        cmd
    }

    /// Issue a timer due at `fire_at_ms` (live) or at the journaled time (replay).
    pub fn issue_timer(&mut self, fire_at_ms: u64) -> CommandIndex {
        let cmd = self.take_cmd();
        let at = match self.recorded.get(&cmd) {
            Some(EventBody::TimerStarted { fire_at_ms, .. }) => *fire_at_ms,
            Some(other) => {
                let other = other.clone();
                self.mismatch(cmd, &other, "a timer".into());
                fire_at_ms
            }
            // Asked to cancel: a new timer is not written (its `Sleep` fails with `Cancelled`).
            None if self.cancelled.is_some() => fire_at_ms,
            None => {
                self.outbox
                    .push(EventBody::TimerStarted { cmd, fire_at_ms });
                fire_at_ms
            }
        };
        self.timers.insert(
            cmd,
            TimerSlot {
                fire_at_ms: at,
                committed: false,
                fired: false,
                abandoned: false,
                waker: None,
            },
        );
        cmd
    }

    /// Issue a hook creation. `token` is the caller's choice, or `None` for a generated one.
    pub fn issue_hook(
        &mut self,
        token: Option<String>,
        kind: &str,
        metadata: Value,
        definition: Option<String>,
        timing: HookTiming,
    ) -> CommandIndex {
        let cmd = self.take_cmd();
        let issued_desc = match &token {
            Some(t) => format!("a hook with token {t:?}"),
            None => "a hook with a generated token".into(),
        };
        // The journaled expiry wins over the one computed now: it was computed from the clock
        // when the hook was created, and a replay must expire the hook at the same point.
        let mut expires_at_ms = timing.expires_at_ms;
        let recorded_token = match self.recorded.get(&cmd) {
            Some(EventBody::HookCreated {
                token: rt,
                generated,
                expires_at_ms: recorded_expiry,
                ..
            }) if token.as_deref().map_or(*generated, |t| t == rt) => {
                expires_at_ms = *recorded_expiry;
                Some(rt.clone())
            }
            Some(EventBody::HookConflict { token: rt, .. })
                if token.as_deref().is_none_or(|t| t == rt) =>
            {
                expires_at_ms = None;
                Some(rt.clone())
            }
            Some(other) => {
                let other = other.clone();
                self.mismatch(cmd, &other, issued_desc);
                Some(String::new())
            }
            None => None,
        };
        let token = match recorded_token {
            Some(t) => t,
            // Asked to cancel: a new hook is not written (no token is taken; its creation
            // fails with `Cancelled`).
            None if self.cancelled.is_some() => token.unwrap_or_default(),
            None => {
                let generated = token.is_none();
                let t = token.unwrap_or_else(|| self.generate_token());
                self.outbox.push(EventBody::HookCreated {
                    cmd,
                    token: t.clone(),
                    kind: kind.to_string(),
                    metadata,
                    definition,
                    generated,
                    expires_at_ms,
                    reserve_ms: timing.reserve_ms,
                });
                t
            }
        };
        self.hooks.insert(
            cmd,
            HookSlot {
                token,
                phase: HookPhase::Creating,
                expires_at_ms,
                expired: false,
                buffer: VecDeque::new(),
                waker: None,
            },
        );
        cmd
    }

    /// 160 bits from the environment's (cryptographic, in the engine) random source.
    fn generate_token(&self) -> String {
        let mut bytes = [0u8; 20];
        self.env.random_bytes(&mut bytes);
        let mut s = String::with_capacity(40);
        for b in bytes {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// Dispose a hook (explicitly or on drop): releases its token.
    pub fn issue_dispose(&mut self, hook_cmd: CommandIndex) {
        if self.teardown {
            return;
        }
        let Some(slot) = self.hooks.get_mut(&hook_cmd) else {
            return;
        };
        // An expired hook's token is gone already: nothing to dispose.
        if slot.phase != HookPhase::Active || slot.expired {
            return;
        }
        slot.phase = HookPhase::Disposed;
        let token = slot.token.clone();
        let cmd = self.take_cmd();
        match self.recorded.get(&cmd) {
            Some(EventBody::HookDisposed { hook_cmd: h, .. }) if *h == hook_cmd => {}
            Some(other) => {
                let other = other.clone();
                self.mismatch(cmd, &other, format!("disposal of hook #{hook_cmd}"));
            }
            None => self.outbox.push(EventBody::HookDisposed {
                cmd,
                hook_cmd,
                token,
            }),
        }
    }

    /// `now`, `random`, `uuid`: journaled values, answered from the journal on replay.
    pub fn draw(&mut self, want: Drawn) -> Drawn {
        let cmd = self.take_cmd();
        let rec = self.recorded.get(&cmd).cloned();
        match (rec, want) {
            (None, Drawn::Now(ms)) => {
                self.outbox.push(EventBody::Now { cmd, ms });
                Drawn::Now(ms)
            }
            (None, Drawn::Random(value)) => {
                self.outbox.push(EventBody::Random { cmd, value });
                Drawn::Random(value)
            }
            (None, Drawn::Uuid(value)) => {
                self.outbox.push(EventBody::Uuid {
                    cmd,
                    value: value.clone(),
                });
                Drawn::Uuid(value)
            }
            (Some(EventBody::Now { ms, .. }), Drawn::Now(_)) => Drawn::Now(ms),
            (Some(EventBody::Random { value, .. }), Drawn::Random(_)) => Drawn::Random(value),
            (Some(EventBody::Uuid { value, .. }), Drawn::Uuid(_)) => Drawn::Uuid(value),
            (Some(other), want) => {
                let issued = match want {
                    Drawn::Now(_) => "ctx.now()",
                    Drawn::Random(_) => "ctx.random()",
                    Drawn::Uuid(_) => "ctx.uuid()",
                };
                self.mismatch(cmd, &other, issued.into());
                want
            }
        }
    }
}
