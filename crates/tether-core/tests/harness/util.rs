//! Small helpers: the step runner [`execute`], journal printing and comparison, and a tiny
//! deterministic generator, [`Rng`].

use std::fmt::Write as _;

use futures::executor::block_on;
use tether_core::{ErrorInfo, Event, EventBody, StepTask};

/// Run a step to its final result as the engine's step runner does, minus the back-off sleeps:
/// attempts until success, a fatal error, or `policy.maximum_attempts`.
pub fn execute(task: &StepTask) -> EventBody {
    let max = task.policy.maximum_attempts.max(1);
    let mut attempt = 1;
    loop {
        match block_on((task.body)()) {
            Ok(output) => {
                return EventBody::StepCompleted {
                    cmd: task.cmd,
                    name: task.name.clone(),
                    output,
                    attempts: attempt,
                }
            }
            Err(e) if e.is_fatal() || attempt >= max => {
                return EventBody::StepFailed {
                    cmd: task.cmd,
                    name: task.name.clone(),
                    error: ErrorInfo::new("step_failed", e.message()),
                    attempts: attempt,
                }
            }
            Err(_) => attempt += 1,
        }
    }
}

/// Entries the machine issues for its own commands (everything with a command index except step
/// results, which the step runner writes, and patch markers, which take no index).
pub fn is_command_record(body: &EventBody) -> bool {
    matches!(body, EventBody::Patched { .. })
        || body.command_index().is_some()
            && !matches!(
                body,
                EventBody::StepCompleted { .. } | EventBody::StepFailed { .. }
            )
}

/// The journal, one entry a line, for failure messages.
pub fn dump(journal: &[Event]) -> String {
    let mut out = String::new();
    for e in journal {
        let body = serde_json::to_string(&e.body).unwrap_or_else(|err| err.to_string());
        let _ = writeln!(out, "  {:>4} @{} {body}", e.seq, e.at_ms);
    }
    out
}

/// Assert two journals are equal, pointing at the first entry that differs.
pub fn assert_same_journal(actual: &[Event], expected: &[Event], context: &str) {
    if let Some(i) =
        (0..actual.len().max(expected.len())).find(|&i| actual.get(i) != expected.get(i))
    {
        panic!(
            "{context}: journals differ at entry {}:\n  got      {:?}\n  expected {:?}\ngot:\n{}expected:\n{}",
            i + 1,
            actual.get(i),
            expected.get(i),
            dump(actual),
            dump(expected)
        );
    }
}

/// A tiny deterministic generator (xorshift64) for tests that shuffle deliveries.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator (a zero seed is replaced).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// `true` with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next_u64() % den < num
    }
}
