//! Embeds the git commit the harness is built from (`TETHER_GIT_COMMIT`), so every JSON line
//! says which code it measured. `unknown` when built outside a git checkout; `-dirty` when
//! tracked files differed from the commit when this script last ran, which is when HEAD last
//! moved (the index is not watched: `git status` rewrites it, and watching it rebuilt the
//! binary on every cargo command).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    // Run again when HEAD moves (a commit, a checkout, a reset). Only files that exist are
    // named: cargo takes a missing one as changed, and would run this script every build.
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for what in &watched {
        if let Some(path) = git(&["rev-parse", "--git-path", what]) {
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    let commit = match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(c) if !c.is_empty() => {
            let dirty = git(&[
                "--no-optional-locks",
                "status",
                "--porcelain",
                "--untracked-files=no",
            ])
            .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{c}-dirty")
            } else {
                c
            }
        }
        _ => "unknown".to_string(),
    };
    println!("cargo:rustc-env=TETHER_GIT_COMMIT={commit}");
}
