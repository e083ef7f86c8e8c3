//! Sets `cfg(tether_postgres)` / `cfg(tether_root)` when the tests needing PostgreSQL / root
//! run (the resource is there, or under CI): the one rule is in `tether-test-env`.

fn main() {
    tether_test_env::emit_cfgs(&[
        tether_test_env::Resource::Postgres,
        tether_test_env::Resource::Root,
    ]);
}
