//! Leases: claiming a run for a node (with a new epoch), releasing it, renewing every lease
//! of a node, and checking a writer's fence against the run's owner and epoch.

use rusqlite::{params, Connection, OptionalExtension};
use tether_store::{Fence, OpOutcome, OpRejected, OpResult, StoreError};

use crate::error::Ctx;
use crate::rows::parse_status;

/// `Some(refusal)` when `fence` is set and no longer matches the run's owner and epoch.
pub(crate) fn check_fence(
    conn: &Connection,
    run_id: &str,
    fence: Option<&Fence>,
) -> Result<Option<OpRejected>, StoreError> {
    let Some(fence) = fence else {
        return Ok(None);
    };
    let row: Option<(Option<String>, u64)> = conn
        .prepare_cached("SELECT owner, epoch FROM runs WHERE id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([run_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .ctx("check fence")?;
    Ok(match row {
        None => Some(OpRejected::RunNotFound {
            run_id: run_id.to_owned(),
        }),
        Some((Some(owner), epoch)) if owner == fence.node && epoch == fence.epoch => None,
        Some(_) => Some(OpRejected::Fenced {
            run_id: run_id.to_owned(),
        }),
    })
}

pub(crate) fn claim(
    conn: &Connection,
    run_id: String,
    node: &str,
    lease_until_ms: u64,
    now_ms: u64,
) -> Result<OpResult, StoreError> {
    let row: Option<(String, Option<String>, Option<u64>, u64)> = conn
        .prepare_cached("SELECT status, owner, lease_until, epoch FROM runs WHERE id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([&run_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()
        })
        .ctx("load run lease")?;
    let Some((status, owner, lease_until, epoch)) = row else {
        return Ok(Err(OpRejected::RunNotFound { run_id }));
    };
    let status = parse_status(&status, &run_id)?;
    if status.is_terminal() {
        return Ok(Err(OpRejected::RunFinished { run_id, status }));
    }
    if let Some(owner) = owner {
        let live = lease_until.is_some_and(|until| until >= now_ms);
        if owner != node && live {
            return Ok(Err(OpRejected::Owned { run_id, owner }));
        }
    }
    let epoch = epoch + 1;
    conn.prepare_cached("UPDATE runs SET owner = ?2, lease_until = ?3, epoch = ?4 WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute(params![run_id, node, lease_until_ms, epoch]))
        .ctx("claim run")?;
    Ok(Ok(OpOutcome::Claimed { epoch }))
}

pub(crate) fn release(
    conn: &Connection,
    run_id: String,
    fence: &Fence,
) -> Result<OpResult, StoreError> {
    let exists: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM runs WHERE id = ?1")
        .and_then(|mut stmt| stmt.query_row([&run_id], |r| r.get(0)).optional())
        .ctx("load run")?;
    if exists.is_none() {
        return Ok(Err(OpRejected::RunNotFound { run_id }));
    }
    conn.prepare_cached(
        "UPDATE runs SET owner = NULL, lease_until = NULL
         WHERE id = ?1 AND owner = ?2 AND epoch = ?3",
    )
    .and_then(|mut stmt| stmt.execute(params![run_id, fence.node, fence.epoch]))
    .ctx("release run")?;
    Ok(Ok(OpOutcome::Updated))
}

pub(crate) fn renew(
    conn: &Connection,
    node: &str,
    lease_until_ms: u64,
) -> Result<OpResult, StoreError> {
    let count = conn
        .prepare_cached("UPDATE runs SET lease_until = ?2 WHERE owner = ?1")
        .and_then(|mut stmt| stmt.execute(params![node, lease_until_ms]))
        .ctx("renew leases")?;
    Ok(Ok(OpOutcome::Renewed {
        count: count as u64,
    }))
}
