//! A really full filesystem under SQLite (issue #17 point 7), against the real `tether`
//! binary: its database lives on a small tmpfs mounted for the test; under a load of
//! resumes the filesystem is filled to the last byte by another file. Callers get `507
//! storage_full` (never a 500, never a dropped connection), the database stays sound
//! (`PRAGMA integrity_check`), and once the filler is removed the same senders, retrying with
//! their `Idempotency-Key`s, get every payload delivered exactly once, in order.
//!
//! Mounting needs root (CI runs as root): elsewhere the test is ignored, saying so (the rule:
//! `tether-test-env`).

mod common;
mod faults_support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use faults_support::*;

/// Size of the filesystem the database lives on.
const FS_SIZE: &str = "8m";
/// Runs fed.
const RUNS: usize = 6;
/// Payloads per run.
const PAYLOADS: u64 = 120;
/// Concurrent senders.
const SENDERS: usize = 3;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Mounted {
    dir: tempfile::TempDir,
}

impl Mounted {
    /// Mount a tmpfs of `size` on a new temporary directory; `Err` says why it could not.
    fn tmpfs(size: &str) -> Result<Mounted, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Mounted { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Write zeros to `path` until the filesystem refuses more (`ENOSPC`); returns the bytes
/// written.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).expect("create the filler");
    let block = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    let mut size = block.len();
    // Big blocks first, then smaller ones, down to single bytes: not one byte left.
    while size > 0 {
        match file.write(&block[..size]) {
            Ok(0) => size /= 2,
            Ok(n) => written += n as u64,
            Err(_) => size /= 2,
        }
    }
    let _ = file.sync_all();
    written
}

/// `PRAGMA integrity_check` of the database file, through a read-only connection.
fn integrity(db: &Path) -> String {
    let conn = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .expect("open the database read-only");
    conn.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
        .expect("integrity_check")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(tether_root),
    ignore = "needs root: mounts a small tmpfs (run the tests as root)"
)]
async fn sqlite_on_a_really_full_filesystem() {
    tether_test_env::require_root("to mount a small tmpfs");
    let mounted = Mounted::tmpfs(FS_SIZE).unwrap_or_else(|why| panic!("{why}"));
    let db: PathBuf = mounted.path().join("tether.db");
    let server = Server::start(&db);
    let c = server.client.clone();
    let streams = start_streams(&c, RUNS).await;

    let tally = Arc::new(Tally::default());
    let senders = tokio::spawn(send_streams(
        vec![c.clone()],
        streams.clone(),
        (PAYLOADS, SENDERS),
        tally.clone(),
    ));
    let total = RUNS as u64 * PAYLOADS;
    tally.wait_answered(total / 4).await;

    // Fill the filesystem to the last byte while the senders go on.
    let filler = mounted.path().join("filler");
    let filled = fill(&filler);
    eprintln!("filled the filesystem with {filled} bytes");

    // Callers are told, precisely: 507 storage_full.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let full = tally
            .api_errors()
            .iter()
            .any(|(status, code, _)| *status == 507 && code == "storage_full");
        if full {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no 507 storage_full while the filesystem is full (answered {} of {total}; errors \
             {:?})",
            tally.answered(),
            tally.api_errors()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answered_when_full = tally.answered();
    // Reads go on meanwhile, and the server is up.
    let run = c
        .get_run(&streams[0].run_id)
        .await
        .expect("a read while full");
    assert_eq!(run.run_id, streams[0].run_id);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(integrity(&db), "ok", "the database is sound while full");

    // Space comes back: everything accepted, and everything still to send, once, in order.
    std::fs::remove_file(&filler).expect("remove the filler");
    finish_streams(senders, &c, &streams, PAYLOADS).await;
    let refused = tally.assert_only_errors(507, "storage_full");
    eprintln!(
        "{} payloads answered before the disk filled up, {} refused attempts with 507, all \
         {total} delivered once",
        answered_when_full, refused
    );
    drop(server);
    assert_eq!(integrity(&db), "ok", "the database is sound after recovery");
}
