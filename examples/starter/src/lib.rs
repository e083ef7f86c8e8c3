//! A starter project for Tether: your workflows, and the one place they are registered.
//!
//! [`app`] is shared by the binary (`src/main.rs`: `serve`, `replay`, `runs`, `hooks`,
//! `signal`) and by the tests (`tests/workflows.rs`, on `tether::testing::TestEnv`), so both
//! run exactly the same registrations.

pub mod workflows;

/// Every workflow and hook definition of this project.
///
/// Add yours here: `.workflow("name", function)` for a workflow, `.hook(&definition)` for a
/// typed hook definition (its payloads are then checked when they are sent, before any run
/// sees them).
pub fn app() -> tether::App {
    tether::App::new()
        .about("Tether starter: an approval and a webhook collector, served by Tether.")
        .version(env!("CARGO_PKG_VERSION"))
        .workflow("approval", workflows::approval::approval)
        .hook(&workflows::approval::decision_hook())
        .workflow("webhook", workflows::webhook::webhook)
}
