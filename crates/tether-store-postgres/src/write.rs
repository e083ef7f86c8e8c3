//! Group commit: a batch of [`WriteOp`]s applied in order in one transaction; an op decides a
//! refusal before it writes, so a refused op leaves no trace (checked per op); the run rows an op writes are locked
//! (`FOR UPDATE`) first, so nodes sharing the database never hand out one `seq` twice. The
//! ops themselves live in `journal`, `hooks` and `lease`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool_postgres::{Pool, Transaction};
use tether_core::event::{CommandIndex, EventBody, RunStatus};
use tether_store::{Fence, OpResult, StoreError, WakeAt, WriteOp};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::error::{db_err, is_transient_conflict, pool_err};
use crate::hooks::{self, Delivery};
use crate::journal::{self, Change};
use crate::lease;
use crate::rows::{col, from_db, opt_from_db, parse_status};
use crate::threads;

/// How many times a batch the server aborted to break a deadlock (or a serialization
/// conflict) with another node is run again before its error is returned.
const MAX_ATTEMPTS: u32 = 5;

/// Largest `pg_notify` payload PostgreSQL takes is 8,000 bytes; longer run ids go unannounced
/// (a notification is only a wake-up hint: the engine polls as well).
const MAX_NOTIFY_PAYLOAD: usize = 7_999;

/// Apply `ops` in one transaction on a pooled connection, announcing on `channel` the runs
/// whose journal grew. A refusal rolls back that op only; a database error rolls back the
/// whole batch and is returned (after a few new attempts when the server aborted the batch to
/// break a deadlock with another writer).
pub(crate) async fn commit(
    pool: &Pool,
    ops: &[WriteOp],
    channel: &str,
    instance: &str,
) -> Result<Vec<OpResult>, StoreError> {
    let mut attempt = 1;
    loop {
        let mut client = pool.get().await.map_err(|e| pool_err("commit", &e))?;
        match run_batch(&mut client, ops, channel, instance).await {
            Ok(results) => return Ok(results),
            Err(BatchError { error, retry: true }) if attempt < MAX_ATTEMPTS => {
                tracing::debug!(%error, attempt, "batch aborted by a conflict with another writer; running it again");
                drop(client);
                tokio::time::sleep(Duration::from_millis(u64::from(attempt * attempt) * 5)).await;
                attempt += 1;
            }
            Err(e) => return Err(e.error),
        }
    }
}

/// One attempt at a batch.
async fn run_batch(
    client: &mut deadpool_postgres::Client,
    ops: &[WriteOp],
    channel: &str,
    instance: &str,
) -> Result<Vec<OpResult>, BatchError> {
    let tx = client.transaction().await.wctx("begin write transaction")?;
    let applied = apply_all(&tx, ops, channel, instance).await;
    match applied {
        Ok(results) => {
            tx.commit().await.wctx("commit write transaction")?;
            Ok(results)
        }
        Err(e) => {
            // Best effort: the server rolls back on its own if the connection is gone.
            if let Err(rollback) = tx.rollback().await {
                tracing::debug!(error = %rollback, "rollback of a failed batch failed");
            }
            Err(e)
        }
    }
}

/// Apply every op in order, then queue the notifications (sent by the server at commit).
async fn apply_all(
    tx: &Transaction<'_>,
    ops: &[WriteOp],
    channel: &str,
    instance: &str,
) -> Result<Vec<OpResult>, BatchError> {
    let mut batch = Batch {
        tx,
        locked: HashSet::new(),
        grown: HashMap::new(),
        op_grown: Vec::new(),
        writes: AtomicU64::new(0),
        rows: HashMap::new(),
        holders: HashMap::new(),
    };
    batch.prelock(ops).await?;
    // No savepoint per op: every op decides a refusal from reads (and row locks), before it
    // writes. A savepoint would cost a round trip per op and a subtransaction per written op
    // (past 64 of them, every snapshot in the database gets slower). Checked here: a refused
    // op that wrote fails the whole batch rather than keep a trace of the refused op. Row
    // locks a refused op took stay held until the batch ends, which is harmless.
    let mut results = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        if i > 0 {
            tether_store::crash_point!("store.mid_batch");
        }
        batch.op_grown.clear();
        let writes_before = batch.writes.load(Ordering::Relaxed);
        let result = apply(&mut batch, op).await?;
        if !matches!(op, WriteOp::Resume { .. }) {
            // Other ops change hooks and rows the caches hold.
            batch.rows.clear();
            batch.holders.clear();
        }
        if result.is_ok() {
            for (run_id, seq) in batch.op_grown.drain(..) {
                let last = batch.grown.entry(run_id).or_insert(seq);
                *last = (*last).max(seq);
            }
        } else if batch.writes.load(Ordering::Relaxed) != writes_before {
            return Err(StoreError::Corrupt(format!(
                "a refused op ({result:?}) wrote rows; the batch was rolled back (a bug in \
                 tether-store-postgres: refusals must be decided before writing)"
            ))
            .into());
        }
        results.push(result);
    }
    notify(tx, &batch.grown, channel, instance).await?;
    Ok(results)
}

/// `pg_notify(channel, '~instance~run_id:last_seq')` (see [`crate::notify::payload`]) for every run whose journal grew in the batch
/// (including runs that received a delivery from another run's op).
async fn notify(
    tx: &Transaction<'_>,
    grown: &HashMap<String, u64>,
    channel: &str,
    instance: &str,
) -> Result<(), BatchError> {
    let payloads: Vec<String> = grown
        .iter()
        .map(|(run_id, seq)| crate::notify::payload(instance, run_id, *seq))
        .filter(|p| p.len() <= MAX_NOTIFY_PAYLOAD)
        .collect();
    if payloads.is_empty() {
        return Ok(());
    }
    let stmt = tx
        .prepare_cached("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
        .await
        .wctx("announce journal growth")?;
    tx.execute(&stmt, &[&channel, &payloads])
        .await
        .wctx("announce journal growth")?;
    Ok(())
}

/// A batch failure, and whether running the batch again may succeed (the server aborted it to
/// break a deadlock with another writer).
#[derive(Debug)]
pub(crate) struct BatchError {
    error: StoreError,
    retry: bool,
}

impl From<StoreError> for BatchError {
    fn from(error: StoreError) -> Self {
        BatchError {
            error,
            retry: false,
        }
    }
}

/// Adds context to driver results on the write path, remembering whether the failure is a
/// transient conflict.
pub(crate) trait Wctx<T> {
    /// Map the error, with `what` as context.
    fn wctx(self, what: &str) -> Result<T, BatchError>;
}

impl<T> Wctx<T> for Result<T, tokio_postgres::Error> {
    fn wctx(self, what: &str) -> Result<T, BatchError> {
        self.map_err(|e| BatchError {
            retry: is_transient_conflict(&e),
            error: db_err(what, &e),
        })
    }
}

/// The run columns `status, last_seq, wake_at, owner, lease_until, epoch`, starting at column
/// `at` of `row`.
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
    })
}

/// Whether `sql` changes data (as opposed to reading, locking or notifying).
fn is_write(sql: &str) -> bool {
    let head = sql.trim_start().get(..6).unwrap_or("").to_ascii_uppercase();
    matches!(head.as_str(), "INSERT" | "UPDATE" | "DELETE")
}

/// Query parameters.
pub(crate) type Params<'p> = [&'p (dyn ToSql + Sync)];

/// The transaction of a batch, and which run rows it holds locked.
pub(crate) struct Batch<'t, 'c> {
    tx: &'t Transaction<'c>,
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
}

/// The parts of a run the write path needs.
pub(crate) struct RunRow {
    pub(crate) status: RunStatus,
    pub(crate) last_seq: u64,
    pub(crate) wake_at: Option<u64>,
    pub(crate) owner: Option<String>,
    pub(crate) lease_until: Option<u64>,
    pub(crate) epoch: u64,
}

impl RunRow {
    /// Whether `fence` (if any) matches the run's owner and epoch.
    pub(crate) fn fence_holds(&self, fence: Option<&Fence>) -> bool {
        match fence {
            None => true,
            Some(f) => self.owner.as_deref() == Some(f.node.as_str()) && self.epoch == f.epoch,
        }
    }
}

impl Batch<'_, '_> {
    /// Run a statement; the number of rows it touched.
    pub(crate) async fn execute(
        &self,
        sql: &str,
        params: &Params<'_>,
        what: &str,
    ) -> Result<u64, BatchError> {
        let stmt = self.tx.prepare_cached(sql).await.wctx(what)?;
        let n = self.tx.execute(&stmt, params).await.wctx(what)?;
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
    ) -> Result<Option<Row>, BatchError> {
        let stmt = self.tx.prepare_cached(sql).await.wctx(what)?;
        let row = self.tx.query_opt(&stmt, params).await.wctx(what)?;
        if row.is_some() && is_write(sql) {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        Ok(row)
    }

    /// Lock, before any op runs and in one order (by id), the rows of the runs the batch names
    /// (the holders of the tokens it resumes included): two nodes writing to the same runs
    /// then queue up instead of deadlocking. Skipped when the batch names at most one run.
    async fn prelock(&mut self, ops: &[WriteOp]) -> Result<(), BatchError> {
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
                WriteOp::Resume { token, .. } => tokens.push(token),
                WriteOp::CreateRun { .. }
                | WriteOp::RenewLeases { .. }
                | WriteOp::Signal { .. } => {}
            }
        }
        run_ids.sort_unstable();
        run_ids.dedup();
        tokens.sort_unstable();
        tokens.dedup();
        if run_ids.len() + tokens.len() <= 1 {
            return Ok(());
        }
        let stmt = self
            .tx
            .prepare_cached(
                "SELECT id, status, last_seq, wake_at, owner, lease_until, epoch FROM runs
                 WHERE id IN (SELECT unnest($1::text[])
                              UNION SELECT run_id FROM hooks WHERE token = ANY($2::text[]))
                 ORDER BY id
                 FOR UPDATE",
            )
            .await
            .wctx("lock runs")?;
        let rows = self
            .tx
            .query(&stmt, &[&run_ids, &tokens])
            .await
            .wctx("lock runs")?;
        for row in rows {
            let run_id: String = col(&row, 0, "lock runs")?;
            let run = run_row(&row, 1, &run_id)?;
            self.locked.insert(run_id.clone());
            self.rows.insert(run_id, run);
        }
        if !tokens.is_empty() {
            // Read after the lock: a holder whose row is held now keeps its hooks until the
            // batch ends (the resume checks it holds the row before trusting the answer).
            let stmt = self
                .tx
                .prepare_cached("SELECT token, run_id, hook_cmd FROM hooks WHERE token = ANY($1)")
                .await
                .wctx("look up hooks")?;
            let found = self
                .tx
                .query(&stmt, &[&tokens])
                .await
                .wctx("look up hooks")?;
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
    pub(crate) async fn lock_run(&mut self, run_id: &str) -> Result<Option<RunRow>, BatchError> {
        if let Some(run) = self.rows.remove(run_id) {
            return Ok(Some(run));
        }
        let row = self
            .query_opt(
                "SELECT status, last_seq, wake_at, owner, lease_until, epoch
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

/// Apply one op.
async fn apply(b: &mut Batch<'_, '_>, op: &WriteOp) -> Result<OpResult, BatchError> {
    match op {
        WriteOp::CreateRun {
            run_id,
            workflow,
            input,
            at_ms,
        } => journal::create_run(b, run_id, workflow, input, *at_ms).await,
        WriteOp::Append {
            run_id,
            events,
            status,
            wake_at,
            fence,
            at_ms,
        } => {
            let change = Change {
                status: *status,
                wake_at: *wake_at,
                fence: fence.as_ref(),
                at_ms: *at_ms,
            };
            journal::append(b, run_id, events, change).await
        }
        WriteOp::Resume {
            token,
            payload,
            idempotency_key,
            expect,
            at_ms,
        } => {
            let delivery = Delivery {
                token,
                payload,
                key: idempotency_key.as_deref(),
                expect: expect.as_ref(),
                at_ms: *at_ms,
            };
            hooks::resume(b, &delivery).await
        }
        WriteOp::RequestCancel {
            run_id,
            reason,
            at_ms,
        } => {
            let change = Change {
                status: None,
                wake_at: WakeAt::Keep,
                fence: None,
                at_ms: *at_ms,
            };
            let cancel = [EventBody::CancelRequested {
                reason: reason.clone(),
            }];
            journal::append(b, run_id, &cancel, change).await
        }
        WriteOp::MarkBlocked {
            run_id,
            error,
            fence,
            at_ms,
        } => journal::mark_blocked(b, run_id, error, fence.as_ref(), *at_ms).await,
        WriteOp::Checkpoint {
            run_id,
            applied_seq,
        } => journal::checkpoint(b, run_id, *applied_seq).await,
        WriteOp::Claim {
            run_id,
            node,
            lease_until_ms,
            now_ms,
        } => lease::claim(b, run_id, node, *lease_until_ms, *now_ms).await,
        WriteOp::Release { run_id, fence } => lease::release(b, run_id, fence).await,
        WriteOp::RenewLeases {
            node,
            lease_until_ms,
        } => lease::renew(b, node, *lease_until_ms).await,
        WriteOp::Signal {
            signal_id,
            payload,
            at_ms,
        } => threads::signal(b, signal_id, payload, *at_ms).await,
        WriteOp::SpawnHook {
            run_id,
            hook_id,
            workflow,
            args,
            retry,
            at_ms,
        } => {
            let spawn = threads::SpawnHookOp {
                run_id,
                hook_id,
                workflow,
                args,
                retry,
                at_ms: *at_ms,
            };
            threads::spawn_hook(b, spawn).await
        }
    }
}
