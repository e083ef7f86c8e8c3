//! PostgreSQL backend for Tether: several nodes (processes, machines) share one database.
//!
//! [`PostgresStore`] implements [`tether_store::Store`] with the same semantics as the SQLite
//! backend, checked by the same conformance suite:
//!
//! - **group commit**: each [`Store::commit`] is one transaction on a pooled connection; an op
//!   decides a refusal before it writes, so a refused op leaves no trace; any database error rolls
//!   the whole batch back (a batch the server aborted to break a deadlock with another node is
//!   run again a few times first);
//! - **safe across nodes**: an op locks its run's row (`SELECT ... FOR UPDATE`) before it
//!   hands out `seq` numbers, checks fences or takes leases, so two nodes writing to one run
//!   queue up and every journal stays dense; one active hook per token is enforced by the
//!   primary key of `hooks` (`INSERT ... ON CONFLICT DO NOTHING`), never by a prior lookup;
//! - **threads, shared state, signals**: a namespace's state and a signal id's queues are
//!   each guarded by a transaction-scoped advisory lock, so an increment is never lost and a
//!   signal and a wait arriving at once on two nodes always meet;
//! - **wake-ups**: a commit that grows journals calls `pg_notify` (delivered at commit), and
//!   [`Store::subscribe`] streams them from a dedicated `LISTEN` connection that reconnects
//!   with back-off; a notification is only a hint, the engine also polls;
//! - **versioned schema**: migrations under `migrations/` are applied when the store is opened,
//!   in one transaction holding an advisory lock, so processes starting at once take turns; a
//!   database whose schema is newer than this code is refused.
//!
//! Times and sequence numbers are `BIGINT`, JSON values `TEXT`. Connections use no TLS, and
//! start with `lock_timeout=30s` (a write stuck behind a frozen peer fails instead of stalling
//! the node) and `idle_in_transaction_session_timeout=60s` (a frozen process's open
//! transaction is ended by the server, releasing its rows); `?options=-c ...` in the URL
//! overrides them.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tether_store::StoreError> {
//! use tether_store::Store;
//! use tether_store_postgres::{PostgresOptions, PostgresStore};
//!
//! let store = PostgresStore::open("postgres://tether@127.0.0.1:5432/tether").await?;
//! assert_eq!(store.backend_name(), "postgres");
//!
//! // Tables in their own schema (created if missing), with a smaller pool:
//! let options = PostgresOptions {
//!     pool_size: 4,
//!     schema: Some("staging".into()),
//! };
//! let staging = PostgresStore::open_with("postgres://tether@127.0.0.1:5432/tether", options).await?;
//! # drop((store, staging)); Ok(()) }
//! ```

mod append;
mod batch;
mod buffer;
mod children;
mod config;
mod error;
mod hooks;
mod journal;
mod migrate;
mod notify;
mod ops;
mod pending;
mod pipeline;
mod read;
mod retention;
mod rows;
mod schedules;
mod signals;
mod threads;
mod write;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures::stream::BoxStream;
use tether_core::event::Event;
use tether_store::{
    HookEnd, HookRecord, OpResult, RunChanged, RunCount, RunFilter, RunRecord, Store, StoreError,
    WriteOp,
};
use tokio_postgres::NoTls;

pub use crate::config::{redact_url, PostgresOptions, DEFAULT_POOL_SIZE, MAX_SCHEMA_LEN};

use crate::error::{describe, pool_err, Ctx};
use crate::notify::Listener;

/// A Tether store in a PostgreSQL database. Cheap to clone: clones share the pool and the
/// `LISTEN` connection.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// The URL without its password, for messages.
    url: String,
    schema: Option<String>,
    channel: String,
    /// This instance's id in the notifications its commits send.
    instance: String,
    pool: Pool,
    listener: Listener,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.inner.url)
            .field("schema", &self.inner.schema)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Open the database at `url` (`postgres://user[:password]@host[:port]/database`, or
    /// `postgresql://...`) with the default [`PostgresOptions`], and bring its schema up to
    /// date. Must be called within a Tokio runtime.
    ///
    /// Errors: [`StoreError::Config`] for a URL it cannot use or a schema newer than this
    /// code, [`StoreError::Unavailable`] when the server cannot be reached or refuses.
    pub async fn open(url: &str) -> Result<PostgresStore, StoreError> {
        Self::open_with(url, PostgresOptions::default()).await
    }

    /// [`PostgresStore::open`] with Tether's tables in `schema`, created if missing; every
    /// pooled connection gets it as its `search_path`. Tests use it to give each case its own
    /// tables (see [`PostgresStore::drop_schema`]).
    pub async fn open_in_schema(url: &str, schema: &str) -> Result<PostgresStore, StoreError> {
        let options = PostgresOptions {
            schema: Some(schema.to_owned()),
            ..PostgresOptions::default()
        };
        Self::open_with(url, options).await
    }

    /// [`PostgresStore::open`] with explicit options (pool size, schema).
    pub async fn open_with(
        url: &str,
        options: PostgresOptions,
    ) -> Result<PostgresStore, StoreError> {
        Self::open_mode(url, options, false).await
    }

    /// Open the database at `url` only to read it (`tether replay`): no migration, no schema
    /// created, and every session runs with `default_transaction_read_only`, so the server
    /// itself refuses any write. Errors with [`StoreError::Config`] when the schema holds no
    /// Tether tables or is at another version than this code's.
    pub async fn open_read_only(
        url: &str,
        options: PostgresOptions,
    ) -> Result<PostgresStore, StoreError> {
        Self::open_mode(url, options, true).await
    }

    async fn open_mode(
        url: &str,
        options: PostgresOptions,
        read_only: bool,
    ) -> Result<PostgresStore, StoreError> {
        let mut settings = config::settings(url, &options)?;
        if read_only {
            settings.read_only();
        }
        let manager = Manager::from_config(
            settings.pg.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| {
                StoreError::config(format!("cannot build a connection pool: {}", describe(&e)))
            })?;
        let redacted = redact_url(url);
        let mut client = pool
            .get()
            .await
            .map_err(|e| pool_err("open the store", &e))?;
        let applied = if read_only {
            migrate::check_version(&client, settings.schema.as_deref()).await?;
            0
        } else {
            migrate::migrate(&mut client, settings.schema.as_deref(), now_ms()).await?
        };
        drop(client);
        tracing::debug!(url = %redacted, schema = ?settings.schema, applied, "opened PostgreSQL store");
        let instance = uuid::Uuid::new_v4().simple().to_string();
        let listener = Listener::new(
            settings.pg,
            settings.channel.clone(),
            instance.clone(),
            tokio::runtime::Handle::try_current().ok(),
        );
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                url: redacted,
                schema: settings.schema,
                channel: settings.channel,
                instance,
                pool,
                listener,
            }),
        })
    }

    /// Drop `schema` and everything in it (`DROP SCHEMA IF EXISTS ... CASCADE`), on a
    /// connection of its own. For tests that opened stores with
    /// [`PostgresStore::open_in_schema`]; a missing schema is not an error.
    pub async fn drop_schema(url: &str, schema: &str) -> Result<(), StoreError> {
        config::check_schema(schema)?;
        let settings = config::settings(url, &PostgresOptions::default())?;
        let redacted = redact_url(url);
        let (client, connection) = settings
            .pg
            .connect(NoTls)
            .await
            .ctx(&format!("connect to {redacted}"))?;
        let driver = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection used to drop a schema ended with an error");
            }
        });
        // Give up rather than wait forever behind a session that still uses the tables.
        let dropped = client
            .batch_execute(&format!(
                "SET lock_timeout = '15s'; SET client_min_messages TO warning;
                 DROP SCHEMA IF EXISTS {schema} CASCADE"
            ))
            .await
            .ctx(&format!("drop schema {schema}"));
        drop(client);
        // The connection ends once the client is gone.
        let _ = driver.await;
        dropped
    }

    /// Refresh PostgreSQL's planner statistics of the tables a resume and a run's end touch
    /// (`ANALYZE`). Autovacuum does this by itself once a table has changed enough (checked
    /// about once a minute); until then a table created empty is planned as if it were tiny,
    /// and the write path's batch statements scan it instead of using its keys. Worth calling
    /// after loading many runs into a new database at once; the benchmarks call it before
    /// their timed phase, as a database in steady state has its statistics.
    pub async fn analyze(&self) -> Result<(), StoreError> {
        const WHAT: &str = "analyze tables";
        let client = self
            .inner
            .pool
            .get()
            .await
            .map_err(|e| pool_err(WHAT, &e))?;
        client
            .batch_execute("ANALYZE runs, events, hooks, hook_ends, pending_payloads, signal_waits")
            .await
            .ctx(WHAT)
    }

    /// The schema holding Tether's tables, if the store was opened with one.
    pub fn schema(&self) -> Option<&str> {
        self.inner.schema.as_deref()
    }

    /// The `LISTEN/NOTIFY` channel commits are announced on: `tether_runs`, or
    /// `tether_runs_<schema>` for a store in a schema of its own.
    pub fn channel(&self) -> &str {
        &self.inner.channel
    }

    /// The schema version this code creates and expects (the highest migration it knows).
    pub fn schema_version() -> i64 {
        migrate::latest_version()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[async_trait]
impl Store for PostgresStore {
    async fn commit(&self, ops: Vec<WriteOp>) -> Result<Vec<OpResult>, StoreError> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let result = write::commit(
            &self.inner.pool,
            &ops,
            &self.inner.channel,
            &self.inner.instance,
        )
        .await;
        if let Err(e) = &result {
            tracing::warn!(error = %e, ops = ops.len(), "PostgreSQL commit failed; the batch was rolled back");
        }
        result
    }

    async fn get_run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        read::get_run(&self.inner.pool, run_id).await
    }

    async fn get_schedule(
        &self,
        id: &str,
    ) -> Result<Option<tether_store::ScheduleRecord>, StoreError> {
        schedules::get_schedule(&self.inner.pool, id).await
    }

    async fn list_schedules(&self) -> Result<Vec<tether_store::ScheduleRecord>, StoreError> {
        schedules::list_schedules(&self.inner.pool).await
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        read::list_runs(&self.inner.pool, filter).await
    }

    async fn load_journal(&self, run_id: &str, after_seq: u64) -> Result<Vec<Event>, StoreError> {
        read::load_journal(&self.inner.pool, run_id, after_seq).await
    }

    async fn load_run(&self, run_id: &str) -> Result<Option<(RunRecord, Vec<Event>)>, StoreError> {
        read::load_run(&self.inner.pool, run_id).await
    }

    async fn get_hook(&self, token: &str) -> Result<Option<HookRecord>, StoreError> {
        read::get_hook(&self.inner.pool, token).await
    }

    async fn get_hook_end(&self, token: &str) -> Result<Option<HookEnd>, StoreError> {
        read::get_hook_end(&self.inner.pool, token).await
    }

    async fn list_hooks(&self, run_id: &str) -> Result<Vec<HookRecord>, StoreError> {
        read::list_hooks(&self.inner.pool, run_id).await
    }

    async fn runs_needing_work(
        &self,
        now_ms: u64,
        node: &str,
        queues: Option<&[String]>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        read::runs_needing_work(&self.inner.pool, now_ms, node, queues, limit).await
    }

    fn subscribe(&self) -> Option<BoxStream<'static, RunChanged>> {
        self.inner.listener.subscribe()
    }

    async fn get_state(
        &self,
        run_id: &str,
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>, StoreError> {
        read::get_state(&self.inner.pool, run_id).await
    }

    async fn list_threads(&self, run_id: &str) -> Result<Vec<RunRecord>, StoreError> {
        read::list_threads(&self.inner.pool, run_id).await
    }

    async fn list_children(&self, run_id: &str) -> Result<Vec<RunRecord>, StoreError> {
        read::list_children(&self.inner.pool, run_id).await
    }

    async fn count_runs(&self) -> Result<Vec<RunCount>, StoreError> {
        read::count_runs(&self.inner.pool).await
    }

    async fn queue_depths(&self) -> Result<Vec<tether_store::QueueDepth>, StoreError> {
        read::queue_depths(&self.inner.pool).await
    }

    async fn delete_ended_before(
        &self,
        cutoff_ms: u64,
        max_runs: usize,
    ) -> Result<u64, StoreError> {
        retention::delete_ended_before(&self.inner.pool, cutoff_ms, max_runs).await
    }

    async fn delete_keys_before(&self, cutoff_ms: u64, max_keys: usize) -> Result<u64, StoreError> {
        retention::delete_keys_before(&self.inner.pool, cutoff_ms, max_keys).await
    }

    fn backend_name(&self) -> &'static str {
        "postgres"
    }
}
