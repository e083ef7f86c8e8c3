//! Root rights, for the tests that change the machine (mount a small filesystem, restart the
//! PostgreSQL cluster). CI runs as root.

use crate::ci::{is_ci, CI_VAR};

/// Whether this process runs as root (effective uid 0, read from `/proc/self/status`).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// For a test that needs root (and is marked `#[cfg_attr(not(tether_root), ignore = ...)]`):
/// panics, saying so, when this process is not root.
pub fn require_root(why: &str) {
    if is_root() {
        return;
    }
    if is_ci() {
        panic!("this test needs root ({why}) and {CI_VAR} is set, so it cannot be skipped: run it as root");
    }
    panic!("this test needs root ({why})");
}
