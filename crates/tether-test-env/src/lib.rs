//! The one rule for tests that need something the machine may not have (a PostgreSQL server,
//! a browser), shared by every test-owning package of the workspace. A dev- and
//! build-dependency only: never part of a release build.
//!
//! The rule:
//!
//! - A test that needs a [`Resource`] is marked
//!   `#[cfg_attr(not(tether_postgres), ignore = "needs PostgreSQL: ...")]` (or
//!   `tether_browser`, `tether_root`). The package's `build.rs` calls [`emit_cfgs`], which sets the cfg when
//!   the resource is there **or** when running under CI ([`is_ci`]). So locally a missing
//!   resource shows up in cargo's own output as `ignored, needs PostgreSQL ...` and in the
//!   `N ignored` count, never as `ok`.
//! - Under CI the tests always run, and a missing resource makes each of them fail with a
//!   message saying what to set ([`postgres_url`], [`browser`]); the build script also warns.
//!   Nothing is skipped under CI.
//! - `cargo test -- --ignored` runs the ignored tests anyway: they fail the same way.
//!
//! `CI` counts as set when it holds anything but nothing, `0` or `false` (any case).

mod browser;
mod build;
mod ci;
mod postgres;
mod root;

pub use browser::{browser, find_browser, Browser, CHROMEDRIVER_VAR, CHROMIUM_VAR};
pub use build::{emit_cfgs, Resource};
pub use ci::{ci_value_means_ci, is_ci, CI_VAR};
pub use postgres::{find_postgres_url, postgres_url, POSTGRES_VAR};
pub use root::{is_root, require_root};
