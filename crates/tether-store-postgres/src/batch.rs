//! The state of one batch's transaction: which run rows it holds locked, what it read up
//! front (run rows, hook holders) and may reuse, and how its statements go out (awaited,
//! pipelined, or kept in the write buffer).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use deadpool_postgres::ClientWrapper;
use tether_core::event::{CommandIndex, EventBody};
use tether_store::plan::RunRow;
use tether_store::{Ending, OpResult, StoreError, WriteOp};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::buffer::{RunUpdate, WriteBuffer};
use crate::children::parent_link;

/// The advisory lock key under which queue admissions are counted (`pg_advisory_xact_lock`):
/// "tether.q" in ASCII.
const ADMISSION_LOCK: i64 = 0x7465_7468_6572_2e71;
use crate::error::db_err;
use crate::pipeline::{self, OwnedParams, Pipeline};
use crate::rows::{col, from_db, opt_from_db, parse_status};

/// The run columns `status, last_seq, wake_at, owner, lease_until, epoch, parent_run_id,
/// parent_cmd`, starting at column `at` of `row`.
fn run_row(row: &Row, at: usize, run_id: &str) -> Result<RunRow, StoreError> {
    let what = |field: &str| format!("{field} of run {run_id}");
    let status: String = col(row, at, &what("status"))?;
    Ok(RunRow {
        status: parse_status(&status, run_id)?,
        last_seq: from_db(col(row, at + 1, &what("last_seq"))?, &what("last_seq"))?,
        wake_at: opt_from_db(col(row, at + 2, &what("wake_at"))?, &what("wake_at"))?,
        owner: col(row, at + 3, &what("owner"))?,
        lease_until: opt_from_db(
            col(row, at + 4, &what("lease_until"))?,
            &what("lease_until"),
        )?,
        epoch: from_db(col(row, at + 5, &what("epoch"))?, &what("epoch"))?,
        parent: parent_link(row, at + 6, &what("parent"))?,
    })
}

/// Whether appending `body` writes nothing outside its run's row, journal and hooks.
fn stays_in_run(body: &EventBody) -> bool {
    !matches!(
        body,
        EventBody::SignalSent { .. }
            | EventBody::SignalWaited { .. }
            | EventBody::SignalReleased { .. }
            | EventBody::HookSpawned { .. }
            | EventBody::ChildStarted { .. }
            | EventBody::CancelRequested { .. }
            | EventBody::StateGet { .. }
            | EventBody::StateSet { .. }
            | EventBody::StateIncr { .. }
            | EventBody::StateDelete { .. }
    )
}

/// Whether `sql` changes data (as opposed to reading, locking or notifying).
fn is_write(sql: &str) -> bool {
    let head = sql.trim_start().get(..6).unwrap_or("").to_ascii_uppercase();
    matches!(head.as_str(), "INSERT" | "UPDATE" | "DELETE")
}

/// Query parameters.
pub(crate) type Params<'p> = [&'p (dyn ToSql + Sync)];

/// The transaction of a batch, and which run rows it holds locked.
///
/// The transaction is opened and ended by commands sent in the pipeline ([`Batch::begin`],
/// [`Batch::finish`]): `BEGIN` goes out with the batch's first statement and `COMMIT` behind
/// its last writes, so neither costs a round trip of its own.
pub(crate) struct Batch<'t> {
    /// The connection the transaction is open on (statements are prepared and cached on it).
    tx: &'t ClientWrapper,
    /// Whether `COMMIT` was sent: the transaction is over on the server from then on (committed,
    /// or rolled back if a statement before it failed), and must not be rolled back.
    commit_sent: bool,
    /// Runs whose row this transaction has locked (and keeps locked until it ends).
    locked: HashSet<String>,
    /// Runs whose journal grew in the ops kept so far, with their last `seq`.
    grown: HashMap<String, u64>,
    /// Journal growth by the current op (forgotten if the op is refused).
    op_grown: Vec<(String, u64)>,
    /// Rows written so far (inserted, updated or deleted): how a refused op is checked to
    /// have written nothing.
    writes: AtomicU64,
    /// Run rows read by the up-front lock, each handed out once by [`Batch::lock_run`] (the op
    /// that takes it may change the row; a later op reads it again).
    rows: HashMap<String, RunRow>,
    /// Holders of the batch's resume tokens, read after the up-front lock (`None`: no hook
    /// holds the token). Valid while only resumes have run: a resume never changes a hook.
    holders: HashMap<String, Option<(String, CommandIndex)>>,
    /// Statements sent without waiting for their replies (see [`crate::pipeline`]).
    pipeline: Pipeline<'t>,
    /// Writes kept to be sent as one statement per kind (see [`crate::buffer`]).
    buffer: Mutex<WriteBuffer>,
}

/// Largest `pg_notify` payload PostgreSQL takes is 8,000 bytes; longer run ids go unannounced
/// (a notification is only a wake-up hint: the engine polls as well).
const MAX_NOTIFY_PAYLOAD: usize = 7_999;

impl<'t> Batch<'t> {
    /// A batch on the connection `tx`, with no transaction open yet ([`Batch::begin`]).
    pub(crate) fn new(tx: &'t ClientWrapper) -> Self {
        Batch {
            tx,
            commit_sent: false,
            locked: HashSet::new(),
            grown: HashMap::new(),
            op_grown: Vec::new(),
            writes: AtomicU64::new(0),
            rows: HashMap::new(),
            holders: HashMap::new(),
            pipeline: Pipeline::default(),
            buffer: Mutex::new(WriteBuffer::default()),
        }
    }

    /// Start an op: the count of writes so far, for [`Batch::end_op`].
    pub(crate) fn begin_op(&mut self) -> u64 {
        self.op_grown.clear();
        self.writes.load(Ordering::Relaxed)
    }

    /// End an op: forget what it changed from the caches, keep its journal growth if it
    /// succeeded, and fail the batch if it was refused but wrote.
    pub(crate) fn end_op(
        &mut self,
        op: &WriteOp,
        result: &OpResult,
        writes_before: u64,
    ) -> Result<(), StoreError> {
        self.forget_changed(op);
        if result.is_ok() {
            for (run_id, seq) in self.op_grown.drain(..) {
                let last = self.grown.entry(run_id).or_insert(seq);
                *last = (*last).max(seq);
            }
        } else if self.writes.load(Ordering::Relaxed) != writes_before {
            return Err(StoreError::corrupt(format!(
                "a refused op ({result:?}) wrote rows; the batch was rolled back (a bug in \
                 tether-store-postgres: refusals must be decided before writing)"
            )));
        }
        Ok(())
    }

    /// Open the transaction: `BEGIN` is sent without waiting for its reply (read with the
    /// replies of the writes, at [`Batch::finish`]); the first statement goes right behind it.
    ///
    /// The batch's statements run with their prepared statement's generic plan: each has its
    /// rows named by key (`= ANY($1)`, `unnest`), so the plan does not depend on the values,
    /// and a custom plan is made again at every execution (0.1–0.2 ms per statement in `bind`
    /// under `log_min_duration_statement=0`, on a batch of steps). `SET LOCAL` ends with the
    /// transaction: reads on the same pooled connection keep the server's default.
    pub(crate) async fn begin(&self) -> Result<(), StoreError> {
        self.pipeline
            .send(
                "begin write transaction",
                pipeline::command(
                    self.tx,
                    "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan",
                ),
            )
            .await
    }

    /// Whether `COMMIT` was sent (then the transaction is over on the server whatever this
    /// batch's outcome: a failed batch must not send `ROLLBACK`).
    pub(crate) fn commit_sent(&self) -> bool {
        self.commit_sent
    }

    /// After the last op: send the buffered writes, the notifications and `COMMIT` back to back,
    /// and read every reply. `Ok` means the batch is committed. If a statement failed, the
    /// server aborted the transaction there and the `COMMIT` behind it rolled it back: the
    /// first failure is returned, and nothing of the batch was kept.
    pub(crate) async fn finish(&mut self, channel: &str, instance: &str) -> Result<(), StoreError> {
        self.flush_buffer().await?;
        // `pg_notify(channel, '~instance~run_id:last_seq')` (see [`crate::notify::payload`])
        // for every run whose journal grew (runs that received a delivery from another run's
        // op included).
        let payloads: Vec<String> = self
            .grown
            .iter()
            .map(|(run_id, seq)| crate::notify::payload(instance, run_id, *seq))
            .filter(|p| p.len() <= MAX_NOTIFY_PAYLOAD)
            .collect();
        if !payloads.is_empty() {
            self.send(
                "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p",
                vec![Box::new(channel.to_owned()), Box::new(payloads)],
                "announce journal growth",
            )
            .await?;
        }
        self.commit_sent = true;
        self.pipeline
            .send(
                "commit write transaction",
                pipeline::command(self.tx, "COMMIT"),
            )
            .await?;
        self.pipeline.settle().await
    }

    /// Send a statement whose answer the op does not need (a write, or `pg_notify`) without
    /// waiting for it; its failure fails the batch when the replies are read, before commit.
    /// Counts as a write whatever it touches, so a refused op must not send one.
    pub(crate) async fn send(
        &self,
        sql: &str,
        params: OwnedParams,
        what: &'static str,
    ) -> Result<(), StoreError> {
        self.flush_buffer().await?;
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.send_now(sql, params, what).await
    }

    /// [`Batch::send`] without sending the buffer first (nor counting a write: the buffer's
    /// writes were counted when kept).
    async fn send_now(
        &self,
        sql: &str,
        params: OwnedParams,
        what: &'static str,
    ) -> Result<(), StoreError> {
        let stmt = self.prepared(sql, what).await?;
        self.pipeline
            .send(what, pipeline::execute(self.tx, stmt, params))
            .await
    }

    /// The write buffer, to keep a write in (counted as a write).
    pub(crate) fn buffer(&self) -> MutexGuard<'_, WriteBuffer> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        // The buffer is only changed by whole pushes and takes; a panic cannot tear it.
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keep `run_id`'s row change in the write buffer.
    pub(crate) fn update_run(&self, run_id: &str, update: RunUpdate) {
        self.buffer().run(run_id, update);
    }

    /// Send what the write buffer holds (pipelined, one statement per kind).
    async fn flush_buffer(&self) -> Result<(), StoreError> {
        let statements = self
            .buffer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        for (sql, params, what) in statements {
            self.send_now(sql, params, what).await?;
        }
        Ok(())
    }

    /// `sql` prepared on the batch's connection (from its cache after the first time).
    async fn prepared(
        &self,
        sql: &str,
        what: &str,
    ) -> Result<tokio_postgres::Statement, StoreError> {
        let stmt = self.pipeline.alongside(self.tx.prepare_cached(sql)).await;
        self.checked(stmt, what).await
    }

    /// A statement's result, its failure reported as the failure of an earlier pipelined
    /// statement if there was one (the transaction was aborted there), else as its own.
    async fn checked<T>(
        &self,
        result: Result<T, tokio_postgres::Error>,
        what: &str,
    ) -> Result<T, StoreError> {
        match result {
            Ok(v) => Ok(v),
            Err(error) => Err(match self.pipeline.settle().await {
                Err(earlier) => earlier,
                Ok(()) => db_err(what, error),
            }),
        }
    }

    /// Run a statement; the number of rows it touched.
    pub(crate) async fn execute(
        &self,
        sql: &str,
        params: &Params<'_>,
        what: &str,
    ) -> Result<u64, StoreError> {
        self.flush_buffer().await?;
        let stmt = self.prepared(sql, what).await?;
        let n = self
            .checked(
                self.pipeline
                    .alongside(self.tx.execute(&stmt, params))
                    .await,
                what,
            )
            .await?;
        if is_write(sql) {
            self.writes.fetch_add(n, Ordering::Relaxed);
        }
        Ok(n)
    }

    /// Run a query returning at most one row (a row returned by a data-changing statement,
    /// such as `DELETE ... RETURNING`, counts as a write).
    pub(crate) async fn query_opt(
        &self,
        sql: &str,
        params: &Params<'_>,
        what: &str,
    ) -> Result<Option<Row>, StoreError> {
        self.flush_buffer().await?;
        let stmt = self.prepared(sql, what).await?;
        let row = self
            .checked(
                self.pipeline
                    .alongside(self.tx.query_opt(&stmt, params))
                    .await,
                what,
            )
            .await?;
        if row.is_some() && is_write(sql) {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        Ok(row)
    }

    /// Lock, before any op runs and in one order (by id), the rows of the runs the batch names
    /// (the holders of the tokens it resumes included): two nodes writing to the same runs
    /// then queue up instead of deadlocking. Skipped when the batch names one run and no token
    /// (its op locks the row itself); a lone resume takes it, as the lock and the hook lookup
    /// go out together and are one round trip instead of the resume's three (look up, lock,
    /// look up again under the lock).
    /// A batch that may admit runs to a limited queue first takes the cluster's admission lock
    /// (before any row lock, so no batch holding rows ever waits for it): admissions of every
    /// node are counted one at a time.
    pub(crate) async fn prelock(&mut self, ops: &[WriteOp]) -> Result<(), StoreError> {
        let admits = ops
            .iter()
            .any(|op| matches!(op, WriteOp::Claim { queues, .. } if !queues.limits.is_empty()));
        if admits {
            self.execute(
                "SELECT pg_advisory_xact_lock($1)",
                &[&ADMISSION_LOCK],
                "take the queue admission lock",
            )
            .await?;
        }
        let mut run_ids: Vec<&str> = Vec::new();
        let mut tokens: Vec<&str> = Vec::new();
        for op in ops {
            match op {
                WriteOp::Append { run_id, .. }
                | WriteOp::RequestCancel { run_id, .. }
                | WriteOp::MarkBlocked { run_id, .. }
                | WriteOp::Checkpoint { run_id, .. }
                | WriteOp::Claim { run_id, .. }
                | WriteOp::Release { run_id, .. }
                | WriteOp::SpawnHook { run_id, .. } => run_ids.push(run_id),
                WriteOp::Resume { token, .. } | WriteOp::ResumeOrKeep { token, .. } => {
                    tokens.push(token)
                }
                WriteOp::CreateRun { .. }
                | WriteOp::RenewLeases { .. }
                | WriteOp::Signal { .. }
                | WriteOp::Schedule(_) => {}
            }
        }
        run_ids.sort_unstable();
        run_ids.dedup();
        tokens.sort_unstable();
        tokens.dedup();
        if tokens.is_empty() && run_ids.len() <= 1 {
            return Ok(());
        }
        let stmt = self
            .prepared(
                // `id = ANY(array)`, not `id IN (subquery)`: the generic plan of the latter
                // hashes the whole table while it is small, and the table is mostly dead rows.
                "SELECT id, status, last_seq, wake_at, owner, lease_until, epoch,
                        parent_run_id, parent_cmd FROM runs
                 WHERE id = ANY($1::text[]
                                || ARRAY(SELECT run_id FROM hooks WHERE token = ANY($2::text[])))
                 ORDER BY id
                 FOR UPDATE",
                "lock runs",
            )
            .await?;
        let holders_stmt = self
            .prepared(
                "SELECT token, run_id, hook_cmd FROM hooks WHERE token = ANY($1)",
                "look up hooks",
            )
            .await?;
        // The hook lookup is sent right behind the lock, without waiting for it: the server
        // runs it once the lock is taken, so it reads the holders after the lock (a holder
        // whose row is held now keeps its hooks until the batch ends; the resume checks it
        // holds the row before trusting the answer).
        let lock_params: [&(dyn ToSql + Sync); 2] = [&run_ids, &tokens];
        let lookup_params: [&(dyn ToSql + Sync); 1] = [&tokens];
        let lock = self.tx.query(&stmt, &lock_params);
        let (rows, found) = if tokens.is_empty() {
            let rows = self.pipeline.alongside(lock).await;
            (self.checked(rows, "lock runs").await?, Vec::new())
        } else {
            let lookup = self.tx.query(&holders_stmt, &lookup_params);
            let (rows, found) = self
                .pipeline
                .alongside(futures::future::join(lock, lookup))
                .await;
            (
                self.checked(rows, "lock runs").await?,
                self.checked(found, "look up hooks").await?,
            )
        };
        for row in rows {
            let run_id: String = col(&row, 0, "lock runs")?;
            let run = run_row(&row, 1, &run_id)?;
            self.locked.insert(run_id.clone());
            self.rows.insert(run_id, run);
        }
        if !tokens.is_empty() {
            for token in &tokens {
                self.holders.insert((*token).to_owned(), None);
            }
            for row in found {
                let token: String = col(&row, 0, "look up hooks")?;
                let run_id: String = col(&row, 1, "look up hooks")?;
                let cmd: i64 = col(&row, 2, "look up hooks")?;
                let cmd = CommandIndex::try_from(cmd).map_err(|_| {
                    crate::error::bad_number(&format!("hook_cmd of hook of run {run_id}"), cmd)
                })?;
                self.holders.insert(token, Some((run_id, cmd)));
            }
        }
        Ok(())
    }

    /// The holder of `token` as read by the up-front lookup, if the batch made one and no op
    /// that changes hooks has run since.
    pub(crate) fn cached_holder(&self, token: &str) -> Option<Option<(String, CommandIndex)>> {
        self.holders.get(token).cloned()
    }

    /// Lock a run's row and read it; `None` if there is no such run.
    pub(crate) async fn lock_run(&mut self, run_id: &str) -> Result<Option<RunRow>, StoreError> {
        if let Some(run) = self.rows.remove(run_id) {
            return Ok(Some(run));
        }
        let row = self
            .query_opt(
                "SELECT status, last_seq, wake_at, owner, lease_until, epoch,
                        parent_run_id, parent_cmd
                 FROM runs WHERE id = $1 FOR UPDATE",
                &[&run_id],
                "load run",
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        self.mark_locked(run_id);
        Ok(Some(run_row(&row, 0, run_id)?))
    }

    /// Forget what the caches hold that `op` may have changed. A resume changes no hook and
    /// took its run row out of the cache; an append that stays within its run (no signal,
    /// thread or shared state) changes its run's row and the tokens it names (and, when it
    /// ends the run, every token the run held); anything else may change any row or hook.
    fn forget_changed(&mut self, op: &WriteOp) {
        match op {
            WriteOp::Resume { .. } | WriteOp::Checkpoint { .. } => {}
            WriteOp::RequestCancel { run_id, .. } | WriteOp::MarkBlocked { run_id, .. } => {
                self.rows.remove(run_id);
            }
            WriteOp::Append { run_id, events, .. } if events.iter().all(stays_in_run) => {
                self.rows.remove(run_id);
                for body in events {
                    match body {
                        EventBody::HookCreated { token, .. }
                        | EventBody::HookDisposed { token, .. }
                        | EventBody::HookExpired { token, .. } => {
                            self.holders.remove(token);
                        }
                        _ => {}
                    }
                }
                if events.iter().any(|body| Ending::of(body).is_some()) {
                    self.holders
                        .retain(|_, holder| holder.as_ref().is_none_or(|(run, _)| run != run_id));
                }
            }
            _ => {
                self.rows.clear();
                self.holders.clear();
            }
        }
    }

    /// Note that the current op wrote journal entries of `run_id` up to `last_seq`.
    pub(crate) fn note_growth(&mut self, run_id: &str, last_seq: u64) {
        self.op_grown.push((run_id.to_owned(), last_seq));
    }

    /// Whether this transaction already holds the run's row lock.
    pub(crate) fn holds(&self, run_id: &str) -> bool {
        self.locked.contains(run_id)
    }

    /// Note that the current op holds the run's row lock (it inserted the row).
    pub(crate) fn mark_locked(&mut self, run_id: &str) {
        self.locked.insert(run_id.to_owned());
    }
}
