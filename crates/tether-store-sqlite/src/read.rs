//! The read side: plain queries on a reader connection.

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use tether_core::event::{Event, RunStatus};
use tether_store::{HookRecord, QueueDepth, RunCount, RunFilter, RunRecord, StoreError};

use crate::error::Ctx;
use crate::rows::{RawEvent, RawHook, RawRun, EVENT_COLUMNS, HOOK_COLUMNS, RUN_COLUMNS};

/// `list_runs` page size when the filter says 0.
const DEFAULT_LIMIT: usize = 100;
/// Largest `list_runs` page.
const MAX_LIMIT: usize = 1_000;

/// A `u64` bound as an SQLite integer, saturating (stored values never exceed `i64::MAX`).
pub(crate) fn bound(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// One run.
pub(crate) fn get_run(conn: &Connection, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
    let raw = conn
        .prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"))
        .and_then(|mut stmt| stmt.query_row([run_id], RawRun::from_row).optional())
        .ctx("read run")?;
    raw.map(RawRun::into_record).transpose()
}

/// Runs matching `filter`, newest first (by creation time, then id).
pub(crate) fn list_runs(
    conn: &Connection,
    filter: &RunFilter,
) -> Result<Vec<RunRecord>, StoreError> {
    // Hook threads belong to their run; they are listed with it, not here.
    let mut conditions = vec!["root_run IS NULL".to_string()];
    let mut args: Vec<SqlValue> = Vec::new();
    if let Some(status) = filter.status {
        args.push(SqlValue::Text(status.as_str().to_owned()));
        conditions.push(format!("status = ?{}", args.len()));
    }
    if let Some(workflow) = &filter.workflow {
        args.push(SqlValue::Text(workflow.clone()));
        conditions.push(format!("workflow = ?{}", args.len()));
    }
    if let Some(cursor) = &filter.before {
        args.push(SqlValue::Integer(bound(cursor.created_at_ms)));
        args.push(SqlValue::Text(cursor.run_id.clone()));
        conditions.push(format!(
            "(created_at < ?{a} OR (created_at = ?{a} AND id < ?{b}))",
            a = args.len() - 1,
            b = args.len()
        ));
    }
    let limit = match filter.limit {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    };
    args.push(SqlValue::Integer(bound(limit as u64)));
    let where_clause = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM runs {where_clause}
         ORDER BY created_at DESC, id DESC LIMIT ?{}",
        args.len()
    );
    let raws = conn
        .prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(params_from_iter(args), RawRun::from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .ctx("list runs")?;
    raws.into_iter().map(RawRun::into_record).collect()
}

/// A run, then its whole journal, on one connection.
pub(crate) fn load_run(
    conn: &Connection,
    run_id: &str,
) -> Result<Option<(RunRecord, Vec<Event>)>, StoreError> {
    match get_run(conn, run_id)? {
        Some(run) => Ok(Some((run, load_journal(conn, run_id, 0)?))),
        None => Ok(None),
    }
}

/// Journal entries of a run with `seq > after_seq`, in order.
pub(crate) fn load_journal(
    conn: &Connection,
    run_id: &str,
    after_seq: u64,
) -> Result<Vec<Event>, StoreError> {
    let raws = conn
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE run_id = ?1 AND seq > ?2 ORDER BY seq"
        ))
        .and_then(|mut stmt| {
            stmt.query_map(params![run_id, bound(after_seq)], RawEvent::from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .ctx("load journal")?;
    raws.into_iter().map(|raw| raw.into_event(run_id)).collect()
}

/// The active hook holding `token`.
pub(crate) fn get_hook(conn: &Connection, token: &str) -> Result<Option<HookRecord>, StoreError> {
    let raw = conn
        .prepare_cached(&format!(
            "SELECT {HOOK_COLUMNS} FROM hooks WHERE token = ?1"
        ))
        .and_then(|mut stmt| stmt.query_row([token], RawHook::from_row).optional())
        .ctx("read hook")?;
    raw.map(RawHook::into_record).transpose()
}

/// The active hooks of a run, by creation time then command index.
pub(crate) fn list_hooks(conn: &Connection, run_id: &str) -> Result<Vec<HookRecord>, StoreError> {
    let raws = conn
        .prepare_cached(&format!(
            "SELECT {HOOK_COLUMNS} FROM hooks WHERE run_id = ?1 ORDER BY created_at, hook_cmd"
        ))
        .and_then(|mut stmt| {
            stmt.query_map([run_id], RawHook::from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .ctx("list hooks")?;
    raws.into_iter().map(RawHook::into_record).collect()
}

/// Ids of runs that are pending or running, or unfinished with a due `wake_at`; oldest first.
pub(crate) fn runs_needing_work(
    conn: &Connection,
    now_ms: u64,
    node: &str,
    queues: Option<&[String]>,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    // The served queues as a JSON array (NULL: every queue).
    let queues = queues
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::corrupt(format!("encode the served queues: {e}")))?;
    // One indexed part per reason, so the poll stays cheap with many suspended runs; then keep
    // the runs this node may take.
    conn.prepare_cached(
        "SELECT id FROM runs WHERE id IN (
             SELECT id FROM runs WHERE status = ?1
             UNION SELECT id FROM runs WHERE status = ?2
             UNION SELECT id FROM runs
                   WHERE wake_at <= ?3 AND status NOT IN (?4, ?5, ?6)
             UNION SELECT id FROM runs
                   WHERE last_seq > applied_seq
                     AND status <> 'completed' AND status <> 'failed'
                     AND status <> 'cancelled')
         AND (owner IS NULL OR owner = ?8 OR lease_until < ?3)
         AND (?9 IS NULL OR queue IN (SELECT value FROM json_each(?9)))
         ORDER BY created_at, id
         LIMIT ?7",
    )
    .and_then(|mut stmt| {
        stmt.query_map(
            params![
                RunStatus::Pending.as_str(),
                RunStatus::Running.as_str(),
                bound(now_ms),
                RunStatus::Completed.as_str(),
                RunStatus::Failed.as_str(),
                RunStatus::Cancelled.as_str(),
                bound(limit as u64),
                node,
                queues,
            ],
            |row| row.get(0),
        )?
        .collect::<rusqlite::Result<Vec<String>>>()
    })
    .ctx("select runs needing work")
}

/// The shared state of `run_id`'s namespace; `None` if the run does not exist.
pub(crate) fn get_state(
    conn: &Connection,
    run_id: &str,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, StoreError> {
    let root: Option<String> = conn
        .prepare_cached("SELECT COALESCE(root_run, id) FROM runs WHERE id = ?1")
        .and_then(|mut stmt| stmt.query_row([run_id], |r| r.get(0)).optional())
        .ctx("find the run's namespace")?;
    let Some(root) = root else {
        return Ok(None);
    };
    let rows: Vec<(String, String)> = conn
        .prepare_cached("SELECT key, value FROM run_state WHERE root_run = ?1 ORDER BY key")
        .and_then(|mut stmt| {
            stmt.query_map([&root], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .ctx("read shared state")?;
    let mut map = serde_json::Map::new();
    for (k, v) in rows {
        let value = serde_json::from_str(&v)
            .map_err(|e| StoreError::corrupt(format!("shared state {k:?}: {e}")))?;
        map.insert(k, value);
    }
    Ok(Some(map))
}

/// The hook threads of `run_id`'s namespace, oldest first.
pub(crate) fn list_threads(conn: &Connection, run_id: &str) -> Result<Vec<RunRecord>, StoreError> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM runs
         WHERE root_run = (SELECT COALESCE(root_run, id) FROM runs WHERE id = ?1)
         ORDER BY created_at, id"
    );
    let raws = conn
        .prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map([run_id], RawRun::from_row)?
                .collect::<rusqlite::Result<Vec<RawRun>>>()
        })
        .ctx("list hook threads")?;
    raws.into_iter().map(RawRun::into_record).collect()
}

/// How many runs per workflow and status, ordered by workflow then status.
pub(crate) fn count_runs(conn: &Connection) -> Result<Vec<RunCount>, StoreError> {
    let rows: Vec<(String, String, i64)> = conn
        .prepare_cached(
            "SELECT workflow, status, COUNT(*) FROM runs
             GROUP BY workflow, status ORDER BY workflow, status",
        )
        .and_then(|mut stmt| {
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .ctx("count runs")?;
    rows.into_iter()
        .map(|(workflow, status, count)| {
            let status = RunStatus::parse(&status).ok_or_else(|| {
                StoreError::corrupt(format!(
                    "runs of {workflow:?} have unknown status `{status}`"
                ))
            })?;
            Ok(RunCount {
                workflow,
                status,
                count: u64::try_from(count).unwrap_or(0),
            })
        })
        .collect()
}

/// Per queue, the unfinished runs not admitted yet, ordered by queue.
pub(crate) fn queue_depths(conn: &Connection) -> Result<Vec<QueueDepth>, StoreError> {
    conn.prepare_cached(
        "SELECT queue, COUNT(*) FROM runs
         WHERE admitted_at IS NULL
           AND status <> 'completed' AND status <> 'failed' AND status <> 'cancelled'
         GROUP BY queue ORDER BY queue",
    )
    .and_then(|mut stmt| {
        stmt.query_map([], |r| {
            Ok(QueueDepth {
                queue: r.get(0)?,
                waiting: r.get(1)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()
    })
    .ctx("count queued runs")
}
