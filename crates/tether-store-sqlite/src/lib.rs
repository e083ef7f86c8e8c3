//! Embedded SQLite backend for Tether.
//!
//! [`SqliteStore`] implements [`tether_store::Store`] on one database file:
//!
//! - **durable by default**: WAL journal with `synchronous=FULL`, so every group commit is
//!   fsynced before [`Store::commit`] returns;
//! - **one writer**: all commits go through a single connection, one `BEGIN IMMEDIATE`
//!   transaction per batch; an op decides a refusal before it writes, so a refused op leaves
//!   no trace without a savepoint per op;
//! - **reader threads**: reads run on up to 8 `query_only` connections, each on a thread of
//!   its own (a read goes to an idle one, or waits behind the least busy), which WAL lets
//!   proceed while the writer commits;
//! - **versioned schema**: migrations under `migrations/` are applied in one transaction when
//!   the store is opened and recorded in `schema_migrations`; a database written by a newer
//!   version is refused.
//!
//! All SQLite calls run on the store's own threads (`workers.rs`): the writer connection's
//! and the readers', not on Tokio's blocking pool.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tether_store::StoreError> {
//! let store = tether_store_sqlite::SqliteStore::open("sqlite://data/tether.db").await?;
//! # drop(store); Ok(()) }
//! ```

mod append;
mod children;
mod config;
mod conn;
mod error;
mod hooks;
mod lock;
mod migrate;
mod pending;
mod read;
mod retention;
mod rows;
mod schedules;
mod signals;
mod threads;
mod workers;
mod write;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use rusqlite::Connection;
use tether_core::event::Event;
use tether_store::{
    HookEnd, HookRecord, OpResult, QueueDepth, RunCount, RunFilter, RunRecord, ScheduleRecord,
    Store, StoreError, WriteOp,
};

use crate::error::join_err;
use crate::workers::Workers;

/// A Tether store in one SQLite database file. Cheap to clone: clones share the connections.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// The writer's and the readers' threads; dropping them closes the connections.
    workers: Workers,
    /// The file's one-process lock (read-write stores only). Declared last, so it is released
    /// after the connections are closed.
    _lock: Option<lock::DbLock>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Open (creating it, and its parent directories, if missing) the database named by
    /// `url_or_path`: `sqlite://relative/path.db`, `sqlite:///absolute/path.db`,
    /// `sqlite:path.db` or a plain path. Brings the schema up to date.
    ///
    /// One process per file: the store holds an exclusive OS lock on `<file>.lock` (beside
    /// the database, holding the holder's pid and host) until its last clone is dropped or
    /// the process ends, however it ends. A second read-write open of the file while it is
    /// held, from another process or this one, is refused at once;
    /// [`SqliteStore::open_read_only`] does not take the lock.
    ///
    /// Errors: [`StoreError::Config`] for a URL it cannot use, a file another store holds
    /// open (the message names the holder's pid) or a database whose schema is
    /// newer than this code, [`StoreError::Corrupt`] for a file that is not a database,
    /// [`StoreError::Unavailable`] for I/O errors.
    pub async fn open(url_or_path: &str) -> Result<SqliteStore, StoreError> {
        let location = url_or_path.to_owned();
        tokio::task::spawn_blocking(move || SqliteStore::open_blocking(&location))
            .await
            .map_err(|e| join_err("open database", e))?
    }

    /// [`SqliteStore::open`] on the calling thread (for tests and synchronous start-up code;
    /// do not call it from an async task).
    pub fn open_blocking(url_or_path: &str) -> Result<SqliteStore, StoreError> {
        let path = config::database_path(url_or_path)?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::unavailable(format!("create directory {}: {e}", parent.display()))
            })?;
        }
        // Before the first connection: a second process must not even migrate the file.
        let lock = lock::acquire(&path)?;
        let mut writer = conn::open_writer(&path)?;
        let applied = migrate::migrate(&mut writer, now_ms())?;
        tracing::debug!(
            path = %path.display(),
            lock = %lock.path().display(),
            applied,
            "opened SQLite store"
        );
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                workers: Workers::start(writer, &path)?,
                path,
                _lock: Some(lock),
            }),
        })
    }

    /// Open an existing database only to read it (`tether replay`): the file must exist and
    /// hold Tether's tables at exactly this code's schema version; nothing is created or
    /// migrated, and every connection is `query_only`, so SQLite itself refuses writes. It
    /// takes no lock: it works while a server holds the file open.
    ///
    /// Errors: [`StoreError::Config`] for a missing file, a file without Tether's tables or at
    /// another schema version; as [`SqliteStore::open`] otherwise.
    pub async fn open_read_only(url_or_path: &str) -> Result<SqliteStore, StoreError> {
        let location = url_or_path.to_owned();
        tokio::task::spawn_blocking(move || {
            let path = config::database_path(&location)?;
            if !path.is_file() {
                return Err(StoreError::config(format!(
                    "no database file at {} (nothing was created: this open only reads)",
                    path.display()
                )));
            }
            let conn = conn::open_reader(&path)?;
            migrate::check_version(&conn, &path.display().to_string())?;
            Ok(SqliteStore {
                inner: Arc::new(Inner {
                    workers: Workers::start(conn, &path)?,
                    path,
                    _lock: None,
                }),
            })
        })
        .await
        .map_err(|e| join_err("open database", e))?
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Cap the database file at `pages` pages (`PRAGMA max_page_count`; a page is 4 KiB by
    /// default), or lift the cap with `None`. A commit that would grow the file past it fails
    /// with [`StoreError::Full`], exactly as on a full disk, and is rolled back whole. A cap
    /// below the current size holds the file at its current size. Returns the cap in force.
    pub async fn set_max_pages(&self, pages: Option<u64>) -> Result<u64, StoreError> {
        // SQLite's own ceiling (2^32 - 2 pages) is what "no cap" means.
        let pages = pages.unwrap_or(4_294_967_294).min(4_294_967_294);
        self.with_writer("set max_page_count", move |conn| {
            conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |row| {
                row.get::<_, i64>(0)
            })
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(|e| error::db_err("set max_page_count", e))
        })
        .await
    }

    /// Refuse (`true`) or allow again (`false`) every write, as a read-only file would
    /// (`PRAGMA query_only` on the writer connection): commits fail with
    /// [`StoreError::ReadOnly`]; reads go on. For maintenance windows and tests.
    pub async fn set_read_only(&self, read_only: bool) -> Result<(), StoreError> {
        self.with_writer("set query_only", move |conn| {
            conn.pragma_update(None, "query_only", read_only)
                .map_err(|e| error::db_err("set query_only", e))
        })
        .await
    }

    /// Run `f` on the writer connection, on the writer's thread.
    async fn with_writer<T, F>(&self, what: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.inner.workers.write(what, move |conn| f(conn)).await
    }

    /// The schema version this code creates and expects (the highest migration it knows).
    pub fn schema_version() -> i64 {
        migrate::latest_version()
    }

    /// Run `f` on a reader connection, on its thread.
    async fn read<T, F>(&self, what: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.inner.workers.read(what, f).await
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[async_trait]
impl Store for SqliteStore {
    async fn commit(&self, ops: Vec<WriteOp>) -> Result<Vec<OpResult>, StoreError> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let n = ops.len();
        let result = self
            .inner
            .workers
            .write("commit", move |writer| write::commit(writer, ops))
            .await;
        if let Err(e) = &result {
            tracing::warn!(error = %e, ops = n, "SQLite commit failed; the batch was rolled back");
        }
        result
    }

    async fn get_run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        let run_id = run_id.to_owned();
        self.read("get_run", move |c| read::get_run(c, &run_id))
            .await
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        let filter = filter.clone();
        self.read("list_runs", move |c| read::list_runs(c, &filter))
            .await
    }

    async fn load_journal(&self, run_id: &str, after_seq: u64) -> Result<Vec<Event>, StoreError> {
        let run_id = run_id.to_owned();
        self.read("load_journal", move |c| {
            read::load_journal(c, &run_id, after_seq)
        })
        .await
    }

    async fn load_run(&self, run_id: &str) -> Result<Option<(RunRecord, Vec<Event>)>, StoreError> {
        let run_id = run_id.to_owned();
        self.read("load_run", move |c| read::load_run(c, &run_id))
            .await
    }

    async fn get_hook(&self, token: &str) -> Result<Option<HookRecord>, StoreError> {
        let token = token.to_owned();
        self.read("get_hook", move |c| read::get_hook(c, &token))
            .await
    }

    async fn get_hook_end(&self, token: &str) -> Result<Option<HookEnd>, StoreError> {
        let token = token.to_owned();
        self.read("get_hook_end", move |c| hooks::hook_end(c, &token))
            .await
    }

    async fn list_hooks(&self, run_id: &str) -> Result<Vec<HookRecord>, StoreError> {
        let run_id = run_id.to_owned();
        self.read("list_hooks", move |c| read::list_hooks(c, &run_id))
            .await
    }

    async fn runs_needing_work(
        &self,
        now_ms: u64,
        node: &str,
        queues: Option<&[String]>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let node = node.to_owned();
        let queues = queues.map(<[String]>::to_vec);
        self.read("runs_needing_work", move |c| {
            read::runs_needing_work(c, now_ms, &node, queues.as_deref(), limit)
        })
        .await
    }

    async fn get_state(
        &self,
        run_id: &str,
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>, StoreError> {
        let run_id = run_id.to_owned();
        self.read("get_state", move |c| read::get_state(c, &run_id))
            .await
    }

    async fn list_threads(&self, run_id: &str) -> Result<Vec<RunRecord>, StoreError> {
        let run_id = run_id.to_owned();
        self.read("list_threads", move |c| read::list_threads(c, &run_id))
            .await
    }

    async fn list_children(&self, run_id: &str) -> Result<Vec<RunRecord>, StoreError> {
        let run_id = run_id.to_owned();
        self.read("list_children", move |c| {
            children::list_children(c, &run_id)
        })
        .await
    }

    async fn count_runs(&self) -> Result<Vec<RunCount>, StoreError> {
        self.read("count_runs", read::count_runs).await
    }

    async fn queue_depths(&self) -> Result<Vec<QueueDepth>, StoreError> {
        self.read("queue_depths", read::queue_depths).await
    }

    async fn delete_ended_before(
        &self,
        cutoff_ms: u64,
        max_runs: usize,
    ) -> Result<u64, StoreError> {
        self.inner
            .workers
            .write("delete_ended_before", move |writer| {
                retention::delete_ended_before(writer, cutoff_ms, max_runs)
            })
            .await
    }

    async fn delete_keys_before(&self, cutoff_ms: u64, max_keys: usize) -> Result<u64, StoreError> {
        self.inner
            .workers
            .write("delete_keys_before", move |writer| {
                retention::delete_keys_before(writer, cutoff_ms, max_keys)
            })
            .await
    }

    async fn get_schedule(&self, id: &str) -> Result<Option<ScheduleRecord>, StoreError> {
        let id = id.to_owned();
        self.read("get_schedule", move |c| schedules::get_schedule(c, &id))
            .await
    }

    async fn list_schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError> {
        self.read("list_schedules", schedules::list_schedules).await
    }

    fn backend_name(&self) -> &'static str {
        "sqlite"
    }
}
