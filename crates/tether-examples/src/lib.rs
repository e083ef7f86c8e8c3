//! The example workflows bundled with `tether dev`. Their names and input/output shapes are part
//! of Tether's interface; each module's doc says what it shows.
//!
//! ```
//! let mut registry = tether::Registry::new();
//! tether_examples::register(&mut registry);
//! assert!(registry.get("approval").is_some());
//! ```

pub mod approval;
pub mod collect;
pub mod enrich;
pub mod expiring_approval;
pub mod fan_out;
pub mod github_events;
pub mod handoff;
pub mod slack_bot;
pub mod steps;
pub mod timeout_approval;
pub mod wait_signal;
pub mod webhook_echo;

use tether::Registry;

/// Register every bundled example (and the hook definitions they use).
pub fn register(registry: &mut Registry) {
    registry
        .workflow("approval", approval::approval)
        .hook(&approval::decision_hook())
        .workflow("collect", collect::collect)
        .workflow("slack_bot", slack_bot::slack_bot)
        .workflow("handoff", handoff::handoff)
        .workflow("timeout_approval", timeout_approval::timeout_approval)
        .workflow("expiring_approval", expiring_approval::expiring_approval)
        .workflow("steps", steps::steps)
        .workflow("fan_out", fan_out::fan_out)
        .workflow("enrich", enrich::enrich)
        .workflow("enrich_hook", enrich::enrich_hook)
        .workflow("wait_signal", wait_signal::wait_signal)
        .workflow("webhook_echo", webhook_echo::webhook_echo)
        .workflow("github_events", github_events::github_events);
}
