//! One process per database file: an exclusive advisory lock on `<db>.lock`, next to the
//! database, held for as long as a read-write store is open.
//!
//! The lock is an OS file lock (`flock` on Unix, `LockFileEx` on Windows) on an open file
//! handle: it is released when the handle is closed, when the last clone of the store is
//! dropped, and by the OS when the process dies (`kill -9` included), so it never goes stale.
//! It is taken per open file handle, so a second store on the same file in the *same*
//! process is refused as well. The file holds the holder's pid and host, for the error message
//! only: the lock, not the file's existence or content, is what counts, and the file is left in
//! place when the store closes (removing it would let two processes lock two different files).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use fs4::FileExt;
use fs4::TryLockError;
use tether_store::StoreError;

/// The held lock; dropping it closes the file, which releases the lock.
#[derive(Debug)]
pub(crate) struct DbLock {
    path: PathBuf,
    _file: File,
}

impl DbLock {
    /// The lock file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// The lock file of the database at `db` (whose parent directory exists): `<db>.lock`, beside
/// the real file when `db` is a symbolic link, so every name of one database finds one lock.
pub(crate) fn lock_path(db: &Path) -> PathBuf {
    let real = std::fs::canonicalize(db).unwrap_or_else(|_| {
        let parent = db.parent().filter(|p| !p.as_os_str().is_empty());
        match (parent.map(std::fs::canonicalize), db.file_name()) {
            (Some(Ok(dir)), Some(name)) => dir.join(name),
            _ => db.to_path_buf(),
        }
    });
    let mut name = real.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    real.with_file_name(name)
}

/// Take the exclusive lock of the database at `db`, without waiting.
///
/// Errors: [`StoreError::Config`] when another store (in this process or another) holds it,
/// naming the database, the holder and what to do; [`StoreError::Unavailable`] when the lock
/// file cannot be created or locked.
pub(crate) fn acquire(db: &Path) -> Result<DbLock, StoreError> {
    let path = lock_path(db);
    // Not truncated on open: until the lock is ours, the content is the holder's.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| {
            StoreError::unavailable(format!("create lock file {}: {e}", path.display()))
        })?;
    match FileExt::try_lock(&file) {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let holder = read_holder(&mut file);
            return Err(StoreError::config(format!(
                "database {} is already open in another {}: one process per SQLite file; \
                 stop the other process, or use PostgreSQL for several nodes",
                db.display(),
                describe(holder.as_deref(), &path),
            )));
        }
        Err(TryLockError::Error(e)) => {
            return Err(StoreError::unavailable(format!(
                "lock {}: {e}",
                path.display()
            )));
        }
    }
    // Ours now: say who holds it (best effort; only error messages read it).
    let me = format!("pid={} host={}\n", std::process::id(), host());
    let written = file
        .set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)))
        .and_then(|_| file.write_all(me.as_bytes()))
        .and_then(|()| file.flush());
    if let Err(e) = written {
        tracing::warn!(path = %path.display(), error = %e, "could not write the lock file's holder");
    }
    Ok(DbLock { path, _file: file })
}

/// The lock file's content (`pid=.. host=..`), if it has any.
fn read_holder(file: &mut File) -> Option<String> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(1024).read_to_string(&mut text).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// "process (pid 42 on host h, lock file ..)", or this process when the holder is us.
fn describe(holder: Option<&str>, lock: &Path) -> String {
    let field = |key: &str| {
        holder?
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_owned)
    };
    let pid = field("pid");
    let host_name = field("host");
    let ours = pid.as_deref() == Some(std::process::id().to_string().as_str())
        && host_name.as_deref() == Some(host().as_str());
    let who = match (&pid, &host_name) {
        (Some(pid), Some(h)) => format!("pid {pid} on host {h}"),
        (Some(pid), None) => format!("pid {pid}"),
        _ => "holder unknown".to_owned(),
    };
    if ours {
        format!(
            "store of this process ({who}; lock file {}; drop the first store before opening \
             the file again)",
            lock.display()
        )
    } else {
        format!("process ({who}; lock file {})", lock.display())
    }
}

/// This machine's name.
fn host() -> String {
    #[cfg(unix)]
    let name = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    #[cfg(not(unix))]
    let name = std::env::var("COMPUTERNAME").unwrap_or_default();
    if name.is_empty() {
        "unknown".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_file_sits_beside_the_database() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("t.db");
        let lock = lock_path(&db);
        assert_eq!(lock.file_name().and_then(|n| n.to_str()), Some("t.db.lock"));
        assert_eq!(
            lock.parent().map(|p| p.to_path_buf()),
            std::fs::canonicalize(dir.path()).ok()
        );
    }

    #[test]
    fn a_held_lock_is_refused_and_names_its_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("t.db");
        let held = acquire(&db).expect("first lock");
        let content = std::fs::read_to_string(held.path()).expect("read lock file");
        assert!(
            content.contains(&format!("pid={}", std::process::id())),
            "{content}"
        );
        match acquire(&db) {
            Err(StoreError::Config(msg)) => {
                assert!(msg.contains("one process per SQLite file"), "{msg}");
                assert!(msg.contains("this process"), "{msg}");
            }
            other => panic!("expected Config, got {other:?}"),
        }
        drop(held);
        acquire(&db).expect("free again after drop");
    }
}
