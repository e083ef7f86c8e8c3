//! What a test-owning package's `build.rs` emits.

use crate::browser::{find_browser, CHROMEDRIVER_VAR, CHROMIUM_VAR};
use crate::ci::{is_ci, CI_VAR};
use crate::postgres::{find_postgres_url, POSTGRES_VAR};
use crate::root::is_root;

/// Something from the machine a test may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// A PostgreSQL server ([`POSTGRES_VAR`]); cfg `tether_postgres`.
    Postgres,
    /// Chromium and chromedriver ([`CHROMIUM_VAR`], [`CHROMEDRIVER_VAR`], `PATH`); cfg
    /// `tether_browser`.
    Browser,
    /// Root rights (to mount a filesystem, restart the PostgreSQL cluster); cfg `tether_root`.
    Root,
}

impl Resource {
    /// The cfg set when the tests needing it run.
    pub fn cfg(self) -> &'static str {
        match self {
            Resource::Postgres => "tether_postgres",
            Resource::Browser => "tether_browser",
            Resource::Root => "tether_root",
        }
    }

    /// The variables its detection reads.
    fn vars(self) -> &'static [&'static str] {
        match self {
            Resource::Postgres => &[POSTGRES_VAR],
            Resource::Browser => &[CHROMIUM_VAR, CHROMEDRIVER_VAR, "PATH"],
            Resource::Root => &[],
        }
    }

    /// Whether the machine has it.
    fn available(self) -> bool {
        match self {
            Resource::Postgres => find_postgres_url().is_some(),
            Resource::Browser => find_browser().is_some(),
            Resource::Root => is_root(),
        }
    }

    /// Its name in messages.
    fn name(self) -> &'static str {
        match self {
            Resource::Postgres => "PostgreSQL",
            Resource::Browser => "a browser (chromium and chromedriver)",
            Resource::Root => "root",
        }
    }

    /// What to do to provide it.
    fn how(self) -> &'static str {
        match self {
            Resource::Postgres => "set TETHER_TEST_POSTGRES=postgres://...",
            Resource::Browser => "install chromium and chromedriver",
            Resource::Root => "run the tests as root",
        }
    }
}

/// For a `build.rs`: declare the cfg of each resource, set it when the resource is there or
/// under CI, and ask cargo to run the script again when what it read changes (`CI` and the
/// resource's variables; for the browser, the binaries found, or the `PATH` folders it was
/// looked for in, so installing it is noticed). Under CI a missing resource also gets a
/// build warning; the tests needing it then fail, each saying what to set.
///
/// Changing one of these variables rebuilds the package (and what depends on it).
pub fn emit_cfgs(resources: &[Resource]) {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed={CI_VAR}");
    let ci = is_ci();
    for &resource in resources {
        let cfg = resource.cfg();
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        for var in resource.vars() {
            println!("cargo::rerun-if-env-changed={var}");
        }
        if resource == Resource::Browser {
            watch_browser_paths();
        }
        let available = resource.available();
        if available || ci {
            println!("cargo::rustc-cfg={cfg}");
        }
        if !available && ci {
            println!(
                "cargo::warning={CI_VAR} is set but {} is missing: the tests needing it will \
                 fail ({})",
                resource.name(),
                resource.how()
            );
        }
    }
}

/// Rerun when the browser appears or goes: watch the binaries found, else every folder of
/// `PATH` that exists (a folder's entries changing is noticed).
fn watch_browser_paths() {
    match find_browser() {
        Some(b) => {
            println!("cargo::rerun-if-changed={}", b.chromium.display());
            println!("cargo::rerun-if-changed={}", b.chromedriver.display());
        }
        None => {
            let Some(path) = std::env::var_os("PATH") else {
                return;
            };
            for dir in std::env::split_paths(&path).filter(|d| d.is_dir()) {
                println!("cargo::rerun-if-changed={}", dir.display());
            }
        }
    }
}
