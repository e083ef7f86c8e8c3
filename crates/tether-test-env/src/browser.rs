//! The browser the web UI's test drives: Chromium and chromedriver.

use std::path::PathBuf;

use crate::ci::{is_ci, CI_VAR};

/// The variable naming the Chromium binary (else `chromium`, `chromium-browser` or
/// `google-chrome` on `PATH`).
pub const CHROMIUM_VAR: &str = "TETHER_CHROMIUM";
/// The variable naming the chromedriver binary (else `chromedriver` on `PATH`).
pub const CHROMEDRIVER_VAR: &str = "TETHER_CHROMEDRIVER";

/// The names Chromium is looked up by on `PATH`.
const CHROMIUM_NAMES: &[&str] = &["chromium", "chromium-browser", "google-chrome"];
/// The names chromedriver is looked up by on `PATH`.
const CHROMEDRIVER_NAMES: &[&str] = &["chromedriver"];

/// A browser to drive.
#[derive(Debug, Clone)]
pub struct Browser {
    /// The Chromium binary.
    pub chromium: PathBuf,
    /// The chromedriver binary.
    pub chromedriver: PathBuf,
}

/// The binary named by `var`, else the first of `names` found on `PATH`.
fn find_binary(var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// Chromium and chromedriver, when both are found (see [`CHROMIUM_VAR`],
/// [`CHROMEDRIVER_VAR`]).
pub fn find_browser() -> Option<Browser> {
    Some(Browser {
        chromium: find_binary(CHROMIUM_VAR, CHROMIUM_NAMES)?,
        chromedriver: find_binary(CHROMEDRIVER_VAR, CHROMEDRIVER_NAMES)?,
    })
}

/// The browser, for a test that needs it (and is marked
/// `#[cfg_attr(not(tether_browser), ignore = ...)]`). Panics, saying what to install, when
/// there is none: such a test only runs without one under CI or with `--ignored`.
pub fn browser() -> Browser {
    match find_browser() {
        Some(b) => b,
        None => panic!(
            "this test needs chromium and chromedriver (Debian: apt-get install chromium \
             chromium-driver; or set {CHROMIUM_VAR} and {CHROMEDRIVER_VAR}){}",
            if is_ci() {
                format!("; {CI_VAR} is set, so it cannot be skipped")
            } else {
                String::new()
            }
        ),
    }
}
