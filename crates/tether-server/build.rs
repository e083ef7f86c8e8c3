//! Sets `cfg(tether_postgres)` when the PostgreSQL tests run and `cfg(tether_browser)` when
//! the web UI's browser test runs (Chromium and chromedriver
//! are there, or under CI): the one rule is in `tether-test-env`.

fn main() {
    tether_test_env::emit_cfgs(&[
        tether_test_env::Resource::Browser,
        tether_test_env::Resource::Postgres,
    ]);
}
