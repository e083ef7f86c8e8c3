#![no_main]
//! cargo-fuzz target `body_decode`: see `tether_fuzz::body_decode` for the property it checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tether_fuzz::body_decode(data));
