//! Crash points: named places on the write path where a test build makes the process abort
//! (`std::process::abort`, as abrupt as `kill -9`), so tests can restart it and check that
//! nothing accepted was lost or applied twice.
//!
//! Compiled in only with the cargo feature `crash-points` (of this crate, forwarded by
//! `tether-engine` and `tether-cli`); without it [`crash_point!`](crate::crash_point) expands
//! to nothing. With it, the environment variable `TETHER_CRASH_POINT=<name>` (or
//! `<name>:<n>`, abort at the `n`-th hit, counted from 1) arms one point for the process.
//!
//! The points are listed in [`CRASH_POINTS`]; `docs/guarantees.md` says what each one proves.

/// The environment variable that arms a crash point.
pub const CRASH_POINT_VAR: &str = "TETHER_CRASH_POINT";

/// Every crash point the code has, in the order a write goes through them.
pub const CRASH_POINTS: &[&str] = &[
    // The group-commit writer took a batch and has not called the store yet.
    "writer.before_append",
    // Inside the store's transaction, between two ops of one batch (not committed).
    "store.mid_batch",
    // Inside the store's transaction, a hook thread's run row created, its `HookSpawned`
    // record not yet written (not committed).
    "store.mid_spawn",
    // The batch committed; nothing handed to the runs, no caller answered.
    "writer.after_append",
    // A live run got committed entries (the callers were answered), or on PostgreSQL heard
    // of them (`LISTEN/NOTIFY`, which may come first), and has not applied them.
    "actor.before_apply",
    // A step's body finished; its result is not journaled.
    "step.before_journal",
    // A due timer was picked to fire; its `TimerFired` entry is not written.
    "timer.before_fire",
];

/// Abort the process here if this crash point is armed (feature `crash-points` only).
///
/// `crash_point!("writer.before_append")`: the name must be one of [`CRASH_POINTS`].
#[cfg(feature = "crash-points")]
#[macro_export]
macro_rules! crash_point {
    ($name:literal) => {
        $crate::crash::hit($name)
    };
}

/// Abort the process here if this crash point is armed (feature `crash-points` only: without
/// it, this expands to nothing).
#[cfg(not(feature = "crash-points"))]
#[macro_export]
macro_rules! crash_point {
    ($name:literal) => {};
}

/// Parse `name` or `name:n` (n >= 1) into the name and the hit to abort at.
pub fn parse_spec(spec: &str) -> Option<(&str, u64)> {
    let spec = spec.trim();
    let (name, nth) = match spec.rsplit_once(':') {
        Some((name, n)) => (name, n.parse::<u64>().ok().filter(|n| *n >= 1)?),
        None => (spec, 1),
    };
    CRASH_POINTS.contains(&name).then_some((name, nth))
}

#[cfg(feature = "crash-points")]
mod armed {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;

    /// The point armed for this process, and how often it was reached.
    struct Armed {
        name: String,
        nth: u64,
        hits: AtomicU64,
    }

    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();

    fn armed() -> Option<&'static Armed> {
        ARMED
            .get_or_init(|| {
                let spec = std::env::var(super::CRASH_POINT_VAR).ok()?;
                match super::parse_spec(&spec) {
                    Some((name, nth)) => Some(Armed {
                        name: name.to_string(),
                        nth,
                        hits: AtomicU64::new(0),
                    }),
                    None => {
                        eprintln!(
                            "tether: ignoring {}={spec:?}: not a crash point (known: {})",
                            super::CRASH_POINT_VAR,
                            super::CRASH_POINTS.join(", ")
                        );
                        None
                    }
                }
            })
            .as_ref()
    }

    /// Called by `crash_point!`: abort if `name` is armed and this is its `n`-th hit.
    pub fn hit(name: &'static str) {
        let Some(armed) = armed() else { return };
        if armed.name != name {
            return;
        }
        let n = armed.hits.fetch_add(1, Ordering::SeqCst) + 1;
        if n == armed.nth {
            eprintln!("tether: crash point {name} reached (hit {n}): aborting");
            std::process::abort();
        }
    }
}

#[cfg(feature = "crash-points")]
pub use armed::hit;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!(
            parse_spec("writer.before_append"),
            Some(("writer.before_append", 1))
        );
        assert_eq!(
            parse_spec("store.mid_batch:3"),
            Some(("store.mid_batch", 3))
        );
        assert_eq!(parse_spec("store.mid_batch:0"), None);
        assert_eq!(parse_spec("store.mid_batch:x"), None);
        assert_eq!(parse_spec("nowhere"), None);
    }
}
