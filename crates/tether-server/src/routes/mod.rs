//! The handlers, one module per resource.

pub(crate) mod hooks;
pub(crate) mod links;
pub(crate) mod meta;
pub(crate) mod metrics;
pub(crate) mod resume_or_start;
pub(crate) mod runs;
pub(crate) mod schedules;
pub(crate) mod threads;
pub(crate) mod webhooks;
