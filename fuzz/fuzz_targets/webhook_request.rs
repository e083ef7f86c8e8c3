#![no_main]
//! cargo-fuzz target `webhook_request`: see `tether_fuzz::webhook_request` for the property it checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tether_fuzz::webhook_request(data));
