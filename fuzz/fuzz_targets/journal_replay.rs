#![no_main]
//! cargo-fuzz target `journal_replay`: see `tether_fuzz::journal_replay` for the property it checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tether_fuzz::journal_replay(data));
