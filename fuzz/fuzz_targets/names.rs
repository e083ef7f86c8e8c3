#![no_main]
//! cargo-fuzz target `names`: see `tether_fuzz::names` for the property it checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tether_fuzz::names(data));
