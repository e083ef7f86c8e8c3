//! Sets `cfg(tether_browser)` when the web UI's browser test runs (Chromium and chromedriver
//! are there, or under CI), and `cfg(tether_postgres)` when the tests on PostgreSQL run (a
//! server is configured, or under CI): the one rule is in `tether-test-env`.

fn main() {
    tether_test_env::emit_cfgs(&[
        tether_test_env::Resource::Browser,
        tether_test_env::Resource::Postgres,
    ]);
}
