//! Retention on SQLite: the rule of [`tether_store::retention`] in SQL. One process owns a
//! database file, so no cluster-wide lock is needed: the writer connection serialises.

use rusqlite::{params, Connection, TransactionBehavior};
use tether_store::retention::{Windowed, WINDOWED};
use tether_store::StoreError;

use crate::error::Ctx;

/// The ended main runs the rule allows deleting at `?1`, oldest first, at most `?2`. The
/// status test is spelled as in `runs_ended_idx` (0005_retention) so that index is used.
const SELECT_ROOTS: &str = "
    INSERT INTO temp.retention_roots (id)
    SELECT r.id FROM runs r
     WHERE r.root_run IS NULL
       AND (r.status = 'completed' OR r.status = 'failed' OR r.status = 'cancelled')
       AND r.updated_at < ?1
       AND NOT EXISTS (
           SELECT 1 FROM runs t
            WHERE t.root_run = r.id
              AND ((t.status <> 'completed' AND t.status <> 'failed' AND t.status <> 'cancelled')
                   OR t.updated_at >= ?1))
     ORDER BY r.updated_at
     LIMIT ?2";

/// Everything that belongs to the selected namespaces, children before the runs they point at.
const DELETE_NAMESPACES: &str = "
    INSERT INTO temp.retention_runs (id)
        SELECT id FROM temp.retention_roots
        UNION ALL
        SELECT t.id FROM runs t WHERE t.root_run IN (SELECT id FROM temp.retention_roots);
    DELETE FROM signals WHERE signal_id IN (SELECT id || '/done' FROM temp.retention_runs);
    DELETE FROM signal_waits WHERE run_id IN (SELECT id FROM temp.retention_runs);
    DELETE FROM idempotency WHERE run_id IN (SELECT id FROM temp.retention_runs);
    DELETE FROM signal_keys WHERE delivered_to IN (SELECT id FROM temp.retention_runs);
    DELETE FROM hooks WHERE run_id IN (SELECT id FROM temp.retention_runs);
    DELETE FROM events WHERE run_id IN (SELECT id FROM temp.retention_runs);
    DELETE FROM run_state WHERE root_run IN (SELECT id FROM temp.retention_roots);";

/// The token ends of the runs being deleted, except reservations still running at `?1`
/// (those go with [`DELETE_ORPHAN_ENDS`] once they end before a cutoff).
const DELETE_ENDS: &str = "
    DELETE FROM hook_ends
     WHERE run_id IN (SELECT id FROM temp.retention_runs)
       AND (reserved_until IS NULL OR reserved_until < ?1)";

/// Token ends left by deleted runs whose reservation ended before `?1`.
const DELETE_ORPHAN_ENDS: &str = "
    DELETE FROM hook_ends
     WHERE reserved_until < ?1
       AND NOT EXISTS (SELECT 1 FROM runs WHERE runs.id = hook_ends.run_id)";

/// [`tether_store::Store::delete_ended_before`] in one immediate transaction.
pub(crate) fn delete_ended_before(
    conn: &mut Connection,
    cutoff_ms: u64,
    max_runs: usize,
) -> Result<u64, StoreError> {
    let cutoff = i64::try_from(cutoff_ms).unwrap_or(i64::MAX);
    let limit = i64::try_from(max_runs).unwrap_or(i64::MAX);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .ctx("begin retention transaction")?;
    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS retention_roots (id TEXT NOT NULL PRIMARY KEY);
         CREATE TEMP TABLE IF NOT EXISTS retention_runs (id TEXT NOT NULL PRIMARY KEY);
         DELETE FROM temp.retention_roots;
         DELETE FROM temp.retention_runs;",
    )
    .ctx("prepare retention tables")?;
    // Token ends whose run is gone and whose reservation ended before the cutoff (ends of
    // deleted runs whose reservation still ran then).
    tx.execute(DELETE_ORPHAN_ENDS, params![cutoff])
        .ctx("delete ended reservations")?;
    let roots = tx
        .execute(SELECT_ROOTS, params![cutoff, limit])
        .ctx("select ended runs to delete")?;
    if roots == 0 {
        tx.commit().ctx("commit retention")?;
        return Ok(0);
    }
    tx.execute_batch(DELETE_NAMESPACES)
        .ctx("delete the journals, hooks, keys and state of ended runs")?;
    tx.execute(DELETE_ENDS, params![cutoff])
        .ctx("delete the token ends of ended runs")?;
    let runs = tx
        .execute(
            "DELETE FROM runs WHERE id IN (SELECT id FROM temp.retention_runs)",
            [],
        )
        .ctx("delete ended runs")?;
    tx.execute_batch("DELETE FROM temp.retention_roots; DELETE FROM temp.retention_runs;")
        .ctx("clear retention tables")?;
    tx.commit().ctx("commit retention")?;
    Ok(runs as u64)
}

/// [`tether_store::Store::delete_keys_before`]: each kind of [`WINDOWED`] in turn, the oldest
/// first, with what the kinds before it left of `max_keys`, in one immediate transaction.
pub(crate) fn delete_keys_before(
    conn: &mut Connection,
    cutoff_ms: u64,
    max_keys: usize,
) -> Result<u64, StoreError> {
    let cutoff = i64::try_from(cutoff_ms).unwrap_or(i64::MAX);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
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
                     SELECT token, key FROM idempotency WHERE created_at < ?1
                      ORDER BY created_at LIMIT ?2)",
                "delete expired idempotency keys",
            ),
            Windowed::SignalKey => (
                "DELETE FROM signal_keys WHERE (signal_id, key) IN (
                     SELECT signal_id, key FROM signal_keys WHERE created_at < ?1
                      ORDER BY created_at LIMIT ?2)",
                "delete expired signal keys",
            ),
            Windowed::KeptPayload => (
                "DELETE FROM pending_payloads WHERE id IN (
                     SELECT id FROM pending_payloads WHERE created_at < ?1
                      ORDER BY created_at, id LIMIT ?2)",
                "delete expired kept payloads",
            ),
        };
        let limit = i64::try_from(left).unwrap_or(i64::MAX);
        let n = tx.execute(sql, params![cutoff, limit]).ctx(what)?;
        deleted += n as u64;
    }
    tx.commit().ctx("commit the idempotency window")?;
    Ok(deleted)
}
