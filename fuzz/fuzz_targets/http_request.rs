#![no_main]
//! cargo-fuzz target `http_request`: see `tether_fuzz::http_request` for the property it checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tether_fuzz::http_request(data));
