//! Leases: claiming a run for a node (with a new epoch), releasing it, renewing every lease
//! of a node, and checking a writer's fence against the run's owner and epoch.

use rusqlite::{params, Connection, OptionalExtension};
use tether_store::{Fence, OpOutcome, OpRejected, OpResult, StoreError};

use crate::error::Ctx;
use tether_store::plan;

use crate::write::read_run;

/// `Some(refusal)` when `fence` is set and the run does not exist or the fence no longer
/// matches its owner and epoch (see [`plan::fenced`]).
pub(crate) fn check_fence(
    conn: &Connection,
    run_id: &str,
    fence: Option<&Fence>,
) -> Result<Option<OpRejected>, StoreError> {
    if fence.is_none() {
        return Ok(None);
    }
    Ok(plan::fenced(read_run(conn, run_id)?, run_id, fence).err())
}

/// Take the run's lease for `node` if the planner grants it (see [`plan::claim`]).
pub(crate) fn claim(
    conn: &Connection,
    run_id: String,
    node: &str,
    lease_until_ms: u64,
    now_ms: u64,
) -> Result<OpResult, StoreError> {
    let run = read_run(conn, &run_id)?;
    let epoch = match plan::claim(run.as_ref(), &run_id, node, now_ms) {
        Ok(epoch) => epoch,
        Err(refused) => return Ok(Err(refused)),
    };
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
