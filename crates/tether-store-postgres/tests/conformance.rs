//! The shared conformance suite (`tether-store-conformance`), run against PostgreSQL: every case gets a
//! store in a fresh schema (`t_` + random hex) of the server named by `TETHER_TEST_POSTGRES`,
//! dropped after the case. Without that variable the cases are ignored (cargo lists them, with
//! the reason), except under CI, where they run and fail (the rule: `tether-test-env`).

mod common;

use common::fresh_store;

tether_store_conformance::conformance_tests!(
    #[cfg_attr(
        not(tether_postgres),
        ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
    )]
    store: fresh_store()
);
