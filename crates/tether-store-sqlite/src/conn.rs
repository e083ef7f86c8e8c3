//! Opening connections with Tether's pragmas, and the pool of reader connections.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tether_store::StoreError;

use crate::error::Ctx;

/// How long a connection waits for a lock held by another connection before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_millis(5_000);

/// Most reads at once, and so most reader connections, each on a thread of its own
/// (`workers.rs`): a read waits for one rather than open another. Opening a connection costs more than most reads (SQLite parses the
/// whole schema on its first statement, and every statement is prepared anew): when reads
/// overlapped past the connections kept, each extra read opened and closed one. Measured with
/// callgrind on `tether bench resume-throughput --n 3000 --concurrency 16 --max-live-runs
/// 300` (rebuilding evicted runs reads them): 365 connections opened for ~8,800 reads, their
/// schema parsing alone 10% of all instructions (BENCHMARKS.md).
pub(crate) const MAX_READERS: usize = 8;

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 64;

/// What the WAL file is cut back to (`PRAGMA journal_size_limit`) when SQLite starts writing
/// it from the beginning again after a checkpoint: about one automatic checkpoint's worth
/// (`wal_autocheckpoint`, 1,000 pages of 4 KiB, plus frame headers). SQLite reuses the WAL
/// file rather than truncate it, so without a limit the file keeps the size of the longest
/// stretch between two restarts — a reader that keeps the checkpoint from restarting the WAL
/// makes it longer — for ever: the 20-minute soak saw that high-water mark rise in steps
/// (docs/guarantees.md, "The soak"). With it, a stretched WAL is given back at the next
/// restart; an ordinary cycle hardly passes it, so the file is seldom cut and regrown.
pub(crate) const WAL_SIZE_LIMIT: i64 = 4 * 1024 * 1024;

/// Open the writer connection, creating the file if missing, with WAL, `synchronous=FULL`
/// (every commit is fsynced), [`WAL_SIZE_LIMIT`], foreign keys and a busy timeout.
pub(crate) fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .ctx(&format!("open database {}", path.display()))?;
    common_setup(&conn)?;
    note_shared_page_cache(&conn);

    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .ctx("set journal_mode=WAL")?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(
            path = %path.display(),
            journal_mode = %mode,
            "SQLite refused WAL mode; readers will block the writer"
        );
    }
    let limit: i64 = conn
        .query_row(
            &format!("PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}"),
            [],
            |row| row.get(0),
        )
        .ctx("set journal_size_limit")?;
    if limit != WAL_SIZE_LIMIT {
        tracing::warn!(
            path = %path.display(),
            journal_size_limit = limit,
            "SQLite did not take the WAL size limit; the WAL file may stay at its largest size"
        );
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .ctx("set synchronous=FULL")?;
    let synchronous: i64 = conn
        .pragma_query_value(None, "synchronous", |row| row.get(0))
        .ctx("read synchronous")?;
    // 2 = FULL, 3 = EXTRA: both fsync on every commit.
    if synchronous < 2 {
        return Err(StoreError::config(format!(
            "SQLite kept synchronous={synchronous}; refusing to run without fsync on commit"
        )));
    }
    Ok(conn)
}

/// Open a reader connection on an existing database (`query_only`: it never writes).
pub(crate) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .ctx(&format!("open reader on {}", path.display()))?;
    common_setup(&conn)?;
    conn.pragma_update(None, "query_only", true)
        .ctx("set query_only")?;
    Ok(conn)
}

/// Say once, at the first writer opened, when this SQLite was compiled with
/// `SQLITE_ENABLE_MEMORY_MANAGEMENT` (libsqlite3-sys's default): then all connections of the
/// process share one page cache behind one mutex, which the writer waits on behind the
/// readers. This repository's `.cargo/config.toml` builds SQLite without it.
fn note_shared_page_cache(conn: &Connection) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let shared = conn
            .query_row(
                "SELECT sqlite_compileoption_used('ENABLE_MEMORY_MANAGEMENT')",
                [],
                |row| row.get::<_, bool>(0),
            )
            .unwrap_or(false);
        if shared {
            tracing::info!(
                "SQLite was compiled with SQLITE_ENABLE_MEMORY_MANAGEMENT: its connections \
                 share one page cache and its lock, which slows the writer under load; build \
                 with LIBSQLITE3_FLAGS=\"-USQLITE_ENABLE_MEMORY_MANAGEMENT \
                 -DSQLITE_DEFAULT_MEMSTATUS=0\" (docs/operations.md)"
            );
        }
    });
}

/// Settings every connection gets.
fn common_setup(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT).ctx("set busy_timeout")?;
    conn.pragma_update(None, "foreign_keys", true)
        .ctx("set foreign_keys=ON")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This repository builds SQLite with a page cache per connection (`.cargo/config.toml`):
    /// fails when that setting is lost (a moved config file, a new libsqlite3-sys that spells
    /// its flags otherwise), which would bring back the shared cache's lock on the writer.
    #[test]
    fn sqlite_is_built_without_the_shared_page_cache() {
        let conn = Connection::open_in_memory().expect("an in-memory database opens");
        let used = |option: &str| -> bool {
            conn.query_row("SELECT sqlite_compileoption_used(?1)", [option], |r| {
                r.get(0)
            })
            .expect("sqlite_compileoption_used answers")
        };
        assert!(
            !used("ENABLE_MEMORY_MANAGEMENT"),
            "SQLite was compiled with SQLITE_ENABLE_MEMORY_MANAGEMENT; build from the \
             repository root so that .cargo/config.toml sets LIBSQLITE3_FLAGS"
        );
        // The check itself sees options: this one libsqlite3-sys always sets.
        assert!(used("THREADSAFE=1"));
    }
}
