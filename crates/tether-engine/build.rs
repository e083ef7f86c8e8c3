//! Sets `cfg(tether_postgres)` when the PostgreSQL tests can run (`TETHER_TEST_POSTGRES` is
//! set, or under CI): the one rule is in `tether-test-env`.

fn main() {
    tether_test_env::emit_cfgs(&[tether_test_env::Resource::Postgres]);
}
