//! The lease ops of a group commit: `Claim`, `Release` and `RenewLeases`, under the run row
//! lock like every other write.

use tether_store::plan;
use tether_store::{Fence, OpOutcome, OpRejected, OpResult, StoreError};

use crate::rows::to_db;
use crate::write::Batch;

/// Take the run's lease for `node` if the planner grants it (see [`plan::claim`]).
pub(crate) async fn claim(
    b: &mut Batch<'_, '_>,
    run_id: &str,
    node: &str,
    lease_until_ms: u64,
    now_ms: u64,
) -> Result<OpResult, StoreError> {
    let run = b.lock_run(run_id).await?;
    let epoch = match plan::claim(run.as_ref(), run_id, node, now_ms) {
        Ok(epoch) => epoch,
        Err(refused) => return Ok(Err(refused)),
    };
    b.send(
        "UPDATE runs SET owner = $2, lease_until = $3, epoch = $4 WHERE id = $1",
        vec![
            Box::new(run_id.to_owned()),
            Box::new(node.to_owned()),
            Box::new(to_db(lease_until_ms, "lease end")?),
            Box::new(to_db(epoch, "epoch")?),
        ],
        "claim run",
    )
    .await?;
    Ok(Ok(OpOutcome::Claimed { epoch }))
}

/// Give the lease up if `fence` still matches the run's owner and epoch; a no-op otherwise.
pub(crate) async fn release(
    b: &mut Batch<'_, '_>,
    run_id: &str,
    fence: &Fence,
) -> Result<OpResult, StoreError> {
    // An epoch past BIGINT matches no stored one.
    let Ok(epoch) = i64::try_from(fence.epoch) else {
        return release_nothing(b, run_id).await;
    };
    let released = b
        .execute(
            "UPDATE runs SET owner = NULL, lease_until = NULL
             WHERE id = $1 AND owner = $2 AND epoch = $3",
            &[&run_id, &fence.node, &epoch],
            "release run",
        )
        .await?;
    if released == 0 {
        return release_nothing(b, run_id).await;
    }
    Ok(Ok(OpOutcome::Updated))
}

/// The answer to a release that matched nothing: `Updated` if the run exists.
async fn release_nothing(b: &Batch<'_, '_>, run_id: &str) -> Result<OpResult, StoreError> {
    let exists = b
        .query_opt("SELECT 1 FROM runs WHERE id = $1", &[&run_id], "load run")
        .await?;
    if exists.is_none() {
        return Ok(Err(OpRejected::RunNotFound {
            run_id: run_id.to_owned(),
        }));
    }
    Ok(Ok(OpOutcome::Updated))
}

/// Extend every lease `node` holds to `lease_until_ms`.
pub(crate) async fn renew(
    b: &mut Batch<'_, '_>,
    node: &str,
    lease_until_ms: u64,
) -> Result<OpResult, StoreError> {
    let count = b
        .execute(
            // Rows locked in id order, like every batch's first locks: no deadlock with a
            // node taking over some of these runs at the same moment.
            "UPDATE runs SET lease_until = $2
             WHERE owner = $1
               AND id IN (SELECT id FROM runs WHERE owner = $1 ORDER BY id FOR UPDATE)",
            &[&node, &to_db(lease_until_ms, "lease end")?],
            "renew leases",
        )
        .await?;
    Ok(Ok(OpOutcome::Renewed { count }))
}
