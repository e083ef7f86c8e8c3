//! The shared conformance suite (`tether-store-conformance`), run against PostgreSQL: every case gets a
//! store in a fresh schema (`t_` + random hex) of the server named by `TETHER_TEST_POSTGRES`,
//! dropped after the case. Without that variable the cases are skipped, except under CI
//! (`CI` set), where they fail.

mod common;

use common::fresh_store;

tether_store_conformance::conformance_tests!(optional: fresh_store());
