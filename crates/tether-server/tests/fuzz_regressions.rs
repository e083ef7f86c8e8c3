//! Every input saved under `fuzz/regressions/<target>/` (crashers the fuzzers found, and
//! hostile inputs worth keeping), run through the same checks the cargo-fuzz targets apply
//! (`fuzz/src/lib.rs`, compiled in here), so the normal `cargo test` covers them without
//! cargo-fuzz or a nightly toolchain.

#[allow(dead_code)]
#[path = "../../../fuzz/src/lib.rs"]
mod checks;

use std::path::PathBuf;

/// The saved inputs of `target`, by file name (there is at least one per target).
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("dir entry").path();
            let data = std::fs::read(&path).expect("read input");
            (path.display().to_string(), data)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no saved inputs in {}", dir.display());
    out
}

/// Run `check` on every saved input of `target`, naming the input that fails.
fn run(target: &str, check: fn(&[u8])) {
    for (name, data) in inputs(target) {
        if let Err(panic) = std::panic::catch_unwind(|| check(&data)) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{name}: {message}");
        }
    }
}

#[test]
fn body_decode() {
    run("body_decode", checks::body_decode);
}

#[test]
fn journal_replay() {
    run("journal_replay", checks::journal_replay);
}

#[test]
fn names() {
    run("names", checks::names);
}

#[test]
fn webhook_request() {
    run("webhook_request", checks::webhook_request);
}

#[test]
fn http_request() {
    run("http_request", checks::http_request);
}
