//! Retention on PostgreSQL: the rule of [`tether_store::retention`] in SQL. Several nodes share
//! the database, so each batch first takes a transaction-scoped advisory lock without
//! waiting: one node deletes at a time, the others find it taken and skip their turn.

use deadpool_postgres::Pool;
use tether_store::retention::{Windowed, WINDOWED};
use tether_store::StoreError;

use crate::error::{pool_err, Ctx};
use crate::rows::bound;

/// Lock of one retention batch, per schema (so stores in separate schemas of one database,
/// such as tests, do not keep each other waiting): keys `(hashtext(RETENTION_LOCK),
/// hashtext(current_schema()))`.
const RETENTION_LOCK: &str = "tether_retention";

/// The ended main runs the rule allows deleting at `$1`, oldest first, at most `$2`
/// (`ended_at`: the `updated_at` of an ended run, kept by the database since 0011).
const SELECT_ROOTS: &str = "
    SELECT r.id FROM runs r
     WHERE r.root_run IS NULL
       AND r.ended_at IS NOT NULL
       AND r.ended_at < $1
       AND NOT EXISTS (
           SELECT 1 FROM runs t
            WHERE t.root_run = r.id
              AND (t.ended_at IS NULL OR t.ended_at >= $1))
     ORDER BY r.ended_at
     LIMIT $2
     FOR UPDATE OF r SKIP LOCKED";

/// [`tether_store::Store::delete_ended_before`] in one transaction; `Ok(0)` when another
/// node holds the retention lock.
pub(crate) async fn delete_ended_before(
    pool: &Pool,
    cutoff_ms: u64,
    max_runs: usize,
) -> Result<u64, StoreError> {
    let what = "delete ended runs";
    let mut client = pool.get().await.map_err(|e| pool_err(what, &e))?;
    let tx = client
        .transaction()
        .await
        .ctx("begin retention transaction")?;
    let locked: bool = tx
        .query_one(
            "SELECT pg_try_advisory_xact_lock(hashtext($1), hashtext(current_schema()))",
            &[&RETENTION_LOCK],
        )
        .await
        .ctx("take the retention lock")?
        .try_get(0)
        .ctx("take the retention lock")?;
    if !locked {
        tracing::debug!("another node is deleting ended runs; skipping this turn");
        return Ok(0);
    }
    // Token ends left by deleted runs whose reservation ended before the cutoff.
    tx.execute(
        "DELETE FROM hook_ends e WHERE e.reserved_until < $1
            AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = e.run_id)",
        &[&bound(cutoff_ms)],
    )
    .await
    .ctx("delete ended reservations")?;
    let limit = i64::try_from(max_runs).unwrap_or(i64::MAX);
    let roots: Vec<String> = tx
        .query(SELECT_ROOTS, &[&bound(cutoff_ms), &limit])
        .await
        .ctx("select ended runs to delete")?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()
        .ctx("select ended runs to delete")?;
    if roots.is_empty() {
        tx.commit().await.ctx("commit retention")?;
        return Ok(0);
    }
    let threads: Vec<String> = tx
        .query("SELECT id FROM runs WHERE root_run = ANY($1)", &[&roots])
        .await
        .ctx("select the threads of ended runs")?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()
        .ctx("select the threads of ended runs")?;
    let mut runs = roots.clone();
    runs.extend(threads);
    let done_signals: Vec<String> = runs.iter().map(|id| format!("{id}/done")).collect();
    tx.execute(
        "DELETE FROM signals WHERE signal_id = ANY($1)",
        &[&done_signals],
    )
    .await
    .ctx("delete the kept signals of ended runs")?;
    for (table, column, ids) in [
        ("signal_waits", "run_id", &runs),
        ("idempotency", "run_id", &runs),
        ("signal_keys", "delivered_to", &runs),
        ("hooks", "run_id", &runs),
        ("events", "run_id", &runs),
        ("run_state", "root_run", &roots),
    ] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE {column} = ANY($1)"),
            &[ids],
        )
        .await
        .ctx(&format!("delete the {table} rows of ended runs"))?;
    }
    // Their token ends, except reservations still running at the cutoff (those go below, in
    // a later call, once they have ended).
    tx.execute(
        "DELETE FROM hook_ends WHERE run_id = ANY($1)
            AND (reserved_until IS NULL OR reserved_until < $2)",
        &[&runs, &bound(cutoff_ms)],
    )
    .await
    .ctx("delete the token ends of ended runs")?;
    let deleted = tx
        .execute("DELETE FROM runs WHERE id = ANY($1)", &[&runs])
        .await
        .ctx("delete ended runs")?;
    tx.commit().await.ctx("commit retention")?;
    Ok(deleted)
}

/// [`tether_store::Store::delete_keys_before`]: each kind of [`WINDOWED`] in turn, the oldest
/// first, with what the kinds before it left of `max_keys`, in one transaction (rows another
/// transaction holds are skipped: they go next time).
pub(crate) async fn delete_keys_before(
    pool: &Pool,
    cutoff_ms: u64,
    max_keys: usize,
) -> Result<u64, StoreError> {
    let what = "delete expired idempotency keys";
    let mut client = pool.get().await.map_err(|e| pool_err(what, &e))?;
    let tx = client
        .transaction()
        .await
        .ctx("begin the idempotency window's transaction")?;
    let mut deleted = 0u64;
    for kind in WINDOWED {
        let left = (max_keys as u64).saturating_sub(deleted);
        if left == 0 {
            break;
        }
        let (sql, what) = match kind {
            Windowed::HookKey => (
                "DELETE FROM idempotency WHERE (token, key) IN (
                     SELECT token, key FROM idempotency WHERE created_at < $1
                      ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
                "delete expired idempotency keys",
            ),
            Windowed::SignalKey => (
                "DELETE FROM signal_keys WHERE (signal_id, key) IN (
                     SELECT signal_id, key FROM signal_keys WHERE created_at < $1
                      ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
                "delete expired signal keys",
            ),
            Windowed::KeptPayload => (
                "DELETE FROM pending_payloads WHERE id IN (
                     SELECT id FROM pending_payloads WHERE created_at < $1
                      ORDER BY created_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)",
                "delete expired kept payloads",
            ),
        };
        let limit = i64::try_from(left).unwrap_or(i64::MAX);
        deleted += tx
            .execute(sql, &[&bound(cutoff_ms), &limit])
            .await
            .ctx(what)?;
    }
    tx.commit().await.ctx("commit the idempotency window")?;
    Ok(deleted)
}
