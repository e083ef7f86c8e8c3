//! The read side: plain queries on a pooled connection.

use deadpool_postgres::Pool;
use tether_core::event::{Event, RunStatus};
use tether_store::{HookEnd, HookRecord, QueueDepth, RunCount, RunFilter, RunRecord, StoreError};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::error::{pool_err, Ctx};
use crate::rows::{
    bound, col, event_from_row, from_db, hook_from_row, run_from_row, EVENT_COLUMNS, HOOK_COLUMNS,
    HOOK_END_COLUMNS, RUN_COLUMNS,
};

/// `list_runs` page size when the filter says 0.
const DEFAULT_LIMIT: usize = 100;
/// Largest `list_runs` page.
const MAX_LIMIT: usize = 1_000;

/// Run `sql` on a pooled connection (as a cached prepared statement) and return its rows.
pub(crate) async fn query(
    pool: &Pool,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    what: &str,
) -> Result<Vec<Row>, StoreError> {
    let client = pool.get().await.map_err(|e| pool_err(what, &e))?;
    let stmt = client.prepare_cached(sql).await.ctx(what)?;
    client.query(&stmt, params).await.ctx(what)
}

/// One run.
pub(crate) async fn get_run(pool: &Pool, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1");
    let rows = query(pool, &sql, &[&run_id], "read run").await?;
    rows.first().map(run_from_row).transpose()
}

/// Runs matching `filter`, newest first (by creation time, then id).
pub(crate) async fn list_runs(
    pool: &Pool,
    filter: &RunFilter,
) -> Result<Vec<RunRecord>, StoreError> {
    let status = filter.status.map(|s| s.as_str());
    let workflow = filter.workflow.as_deref();
    let limit = match filter.limit {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    };
    let limit = bound(limit as u64);
    let cursor = filter
        .before
        .as_ref()
        .map(|c| (bound(c.created_at_ms), c.run_id.as_str()));
    // One statement per filter shape (each gets a plan that uses its index). Hook threads
    // belong to their run; they are listed with it (`list_threads`), not here.
    let mut conditions = vec!["root_run IS NULL".to_owned()];
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
    if let Some(status) = &status {
        params.push(status);
        conditions.push(format!("status = ${}", params.len()));
    }
    if let Some(workflow) = &workflow {
        params.push(workflow);
        conditions.push(format!("workflow = ${}", params.len()));
    }
    if let Some((created_at, run_id)) = &cursor {
        params.push(created_at);
        params.push(run_id);
        conditions.push(format!(
            "(created_at, id) < (${}, ${})",
            params.len() - 1,
            params.len()
        ));
    }
    params.push(&limit);
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE {}
         ORDER BY created_at DESC, id DESC LIMIT ${}",
        conditions.join(" AND "),
        params.len()
    );
    let rows = query(pool, &sql, &params, "list runs").await?;
    rows.iter().map(run_from_row).collect()
}

/// Journal entries of a run with `seq > after_seq`, in order.
pub(crate) async fn load_journal(
    pool: &Pool,
    run_id: &str,
    after_seq: u64,
) -> Result<Vec<Event>, StoreError> {
    let sql =
        format!("SELECT {EVENT_COLUMNS} FROM events WHERE run_id = $1 AND seq > $2 ORDER BY seq");
    let rows = query(pool, &sql, &[&run_id, &bound(after_seq)], "load journal").await?;
    rows.iter().map(|row| event_from_row(row, run_id)).collect()
}

/// A run and its whole journal: both statements on one connection, sent together (one round
/// trip; the journal's runs after the run's).
pub(crate) async fn load_run(
    pool: &Pool,
    run_id: &str,
) -> Result<Option<(RunRecord, Vec<Event>)>, StoreError> {
    const WHAT: &str = "load run and journal";
    let client = pool.get().await.map_err(|e| pool_err(WHAT, &e))?;
    let run_sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1");
    let journal_sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE run_id = $1 ORDER BY seq");
    let run_stmt = client.prepare_cached(&run_sql).await.ctx(WHAT)?;
    let journal_stmt = client.prepare_cached(&journal_sql).await.ctx(WHAT)?;
    let params: [&(dyn ToSql + Sync); 1] = [&run_id];
    let (run, journal) = futures::try_join!(
        client.query_opt(&run_stmt, &params),
        client.query(&journal_stmt, &params)
    )
    .ctx(WHAT)?;
    let Some(run) = run else {
        return Ok(None);
    };
    let journal = journal
        .iter()
        .map(|row| event_from_row(row, run_id))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some((run_from_row(&run)?, journal)))
}

/// The active hook holding `token`.
pub(crate) async fn get_hook(pool: &Pool, token: &str) -> Result<Option<HookRecord>, StoreError> {
    let sql = format!("SELECT {HOOK_COLUMNS} FROM hooks WHERE token = $1");
    let rows = query(pool, &sql, &[&token], "read hook").await?;
    rows.first().map(hook_from_row).transpose()
}

/// The recorded end of `token`, if any.
pub(crate) async fn get_hook_end(pool: &Pool, token: &str) -> Result<Option<HookEnd>, StoreError> {
    let sql = format!("SELECT {HOOK_END_COLUMNS} FROM hook_ends WHERE token = $1");
    let rows = query(pool, &sql, &[&token], "read hook end").await?;
    rows.first().map(crate::rows::hook_end_from_row).transpose()
}

/// The active hooks of a run, by creation time then command index.
pub(crate) async fn list_hooks(pool: &Pool, run_id: &str) -> Result<Vec<HookRecord>, StoreError> {
    let sql =
        format!("SELECT {HOOK_COLUMNS} FROM hooks WHERE run_id = $1 ORDER BY created_at, hook_cmd");
    let rows = query(pool, &sql, &[&run_id], "list hooks").await?;
    rows.iter().map(hook_from_row).collect()
}

/// Ids of unfinished runs with work to do that `node` may take, oldest first: one indexed
/// part per reason (pending, running, due timer, entries past the checkpoint), then only the
/// runs without owner, owned by `node`, or whose lease ended before `now_ms`.
pub(crate) async fn runs_needing_work(
    pool: &Pool,
    now_ms: u64,
    node: &str,
    queues: Option<&[String]>,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let queues: Option<Vec<&str>> = queues.map(|q| q.iter().map(String::as_str).collect());
    // Status names are literals (not parameters) so that the planner can match the partial
    // indexes' predicates even with a generic plan; the lease filter sits in every part so
    // that no part needs more than its own index. `unapplied` is `last_seq > applied_seq`,
    // kept by the database (0011) so that moving a journal on does not touch an index.
    let rows = query(
        pool,
        "SELECT id FROM (
           SELECT id, created_at, queue FROM runs
               WHERE status = 'pending'
                 AND (owner IS NULL OR owner = $2 OR lease_until < $1)
         UNION SELECT id, created_at, queue FROM runs
               WHERE status = 'running'
                 AND (owner IS NULL OR owner = $2 OR lease_until < $1)
         UNION SELECT id, created_at, queue FROM runs
               WHERE wake_at <= $1 AND status NOT IN ('completed', 'failed', 'cancelled')
                 AND (owner IS NULL OR owner = $2 OR lease_until < $1)
         UNION SELECT id, created_at, queue FROM runs
               WHERE unapplied
                 AND status NOT IN ('completed', 'failed', 'cancelled')
                 AND (owner IS NULL OR owner = $2 OR lease_until < $1)
         ) AS work
         WHERE $4::TEXT[] IS NULL OR queue = ANY($4)
         ORDER BY created_at, id
         LIMIT $3",
        &[&bound(now_ms), &node, &bound(limit as u64), &queues],
        "select runs needing work",
    )
    .await?;
    rows.iter()
        .map(|row| col(row, 0, "select runs needing work"))
        .collect()
}

/// The shared state of `run_id`'s namespace, as a JSON object; `None` if the run does not
/// exist.
pub(crate) async fn get_state(
    pool: &Pool,
    run_id: &str,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, StoreError> {
    // One statement: the run (to tell "no run" from "no state") and its namespace's keys.
    let rows = query(
        pool,
        "WITH ns AS (SELECT COALESCE(root_run, id) AS root FROM runs WHERE id = $1)
         SELECT s.key, s.value FROM ns LEFT JOIN run_state s ON s.root_run = ns.root
         ORDER BY s.key",
        &[&run_id],
        "read shared state",
    )
    .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut map = serde_json::Map::new();
    for row in &rows {
        let key: Option<String> = col(row, 0, "read shared state")?;
        let value: Option<String> = col(row, 1, "read shared state")?;
        if let (Some(key), Some(value)) = (key, value) {
            let value = serde_json::from_str(&value)
                .map_err(|e| StoreError::corrupt(format!("shared state {key:?}: {e}")))?;
            map.insert(key, value);
        }
    }
    Ok(Some(map))
}

/// The hook threads of `run_id`'s namespace (at any depth), oldest first.
pub(crate) async fn list_threads(pool: &Pool, run_id: &str) -> Result<Vec<RunRecord>, StoreError> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM runs
         WHERE root_run = (SELECT COALESCE(root_run, id) FROM runs WHERE id = $1)
         ORDER BY created_at, id"
    );
    let rows = query(pool, &sql, &[&run_id], "list hook threads").await?;
    rows.iter().map(run_from_row).collect()
}

/// The child runs of `run_id`, oldest first.
pub(crate) async fn list_children(pool: &Pool, run_id: &str) -> Result<Vec<RunRecord>, StoreError> {
    let sql =
        format!("SELECT {RUN_COLUMNS} FROM runs WHERE parent_run_id = $1 ORDER BY created_at, id");
    let rows = query(pool, &sql, &[&run_id], "list child runs").await?;
    rows.iter().map(run_from_row).collect()
}

/// How many runs per workflow and status, ordered by workflow then status (byte order).
pub(crate) async fn count_runs(pool: &Pool) -> Result<Vec<RunCount>, StoreError> {
    let sql = "SELECT workflow, status, COUNT(*) FROM runs GROUP BY workflow, status";
    let rows = query(pool, sql, &[], "count runs").await?;
    let mut counts = rows
        .iter()
        .map(|row| {
            let workflow: String = col(row, 0, "count runs: workflow")?;
            let status: String = col(row, 1, "count runs: status")?;
            let count: i64 = col(row, 2, "count runs: count")?;
            let status = RunStatus::parse(&status).ok_or_else(|| {
                StoreError::corrupt(format!(
                    "runs of {workflow:?} have unknown status `{status}`"
                ))
            })?;
            Ok(RunCount {
                workflow,
                status,
                count: from_db(count, "run count")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    counts.sort_by(|a, b| {
        (a.workflow.as_str(), a.status.as_str()).cmp(&(b.workflow.as_str(), b.status.as_str()))
    });
    Ok(counts)
}

/// Per queue, the unfinished runs not admitted yet, ordered by queue (byte order).
pub(crate) async fn queue_depths(pool: &Pool) -> Result<Vec<QueueDepth>, StoreError> {
    let sql = "SELECT queue, COUNT(*) FROM runs
               WHERE admitted_at IS NULL AND status NOT IN ('completed', 'failed', 'cancelled')
               GROUP BY queue";
    let rows = query(pool, sql, &[], "count queued runs").await?;
    let mut depths = rows
        .iter()
        .map(|row| {
            let count: i64 = col(row, 1, "count queued runs: count")?;
            Ok(QueueDepth {
                queue: col(row, 0, "count queued runs: queue")?,
                waiting: from_db(count, "queued runs")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    depths.sort_by(|a, b| a.queue.as_bytes().cmp(b.queue.as_bytes()));
    Ok(depths)
}
