//! The PostgreSQL server tests run against.

use crate::ci::{is_ci, CI_VAR};

/// The variable naming the server, e.g. `postgres://postgres@127.0.0.1:5432/test`.
pub const POSTGRES_VAR: &str = "TETHER_TEST_POSTGRES";

/// The server URL from [`POSTGRES_VAR`], when set to something other than blanks.
pub fn find_postgres_url() -> Option<String> {
    std::env::var(POSTGRES_VAR)
        .ok()
        .filter(|url| !url.trim().is_empty())
}

/// The server URL, for a test that needs it (and is marked
/// `#[cfg_attr(not(tether_postgres), ignore = ...)]`). Panics, saying what to set, when there
/// is none: such a test only runs without a server under CI or with `--ignored`, and then it
/// must fail, not pass.
pub fn postgres_url() -> String {
    match find_postgres_url() {
        Some(url) => url,
        None if is_ci() => panic!(
            "this test needs PostgreSQL and {CI_VAR} is set, so it cannot be skipped: set \
             {POSTGRES_VAR}=postgres://postgres@127.0.0.1:5432/test (any server; each test \
             makes its own schema)"
        ),
        None => panic!(
            "this test needs PostgreSQL: set \
             {POSTGRES_VAR}=postgres://postgres@127.0.0.1:5432/test"
        ),
    }
}
