//! Sets `cfg(tether_browser)` when the web UI's browser test runs (Chromium and chromedriver
//! are there, or under CI), and `cfg(tether_postgres)` when the PostgreSQL tests can run
//! (`TETHER_TEST_POSTGRES` is set, or under CI): the one rule is in `tether-test-env`.

fn main() {
    tether_test_env::emit_cfgs(&[
        tether_test_env::Resource::Browser,
        tether_test_env::Resource::Postgres,
    ]);
}
