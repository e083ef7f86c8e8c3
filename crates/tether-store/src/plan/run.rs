//! A run row and the decisions made from it alone: whether an op may write to the run, whether
//! a claim is granted, and which columns an append changes.

use std::borrow::Borrow;

use tether_core::event::RunStatus;

use super::child::ParentLink;
use crate::{Fence, OpRejected, WakeAt};

/// The columns of a run the write path reads (and, on backends shared by several processes,
/// locks) before deciding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRow {
    /// Lifecycle status.
    pub status: RunStatus,
    /// Sequence number of the last journal entry.
    pub last_seq: u64,
    /// When the run's earliest pending timer is due.
    pub wake_at: Option<u64>,
    /// The node holding the lease.
    pub owner: Option<String>,
    /// End of the lease.
    pub lease_until: Option<u64>,
    /// The epoch of the last claim.
    pub epoch: u64,
    /// The run that started it, when it is a child run (read with the row: it never changes,
    /// and an ending reports to it).
    pub parent: Option<ParentLink>,
}

impl RunRow {
    /// The node whose lease on the run is live at `now_ms` (through its last millisecond; an
    /// owner without a lease end holds none). A claim by another node is refused while it
    /// lasts ([`claim`]), and an entry another node commits for the run is left to the holder
    /// ([`crate::OpOutcome::Resumed`]'s `lease_holder`), which learns of it from the store.
    pub fn lease_holder(&self, now_ms: u64) -> Option<&str> {
        let live = self.lease_until.is_some_and(|until| until >= now_ms);
        self.owner.as_deref().filter(|_| live)
    }

    /// Whether a write carrying `fence` may write to this run: no fence, or one naming the
    /// run's owner and epoch.
    pub fn fence_holds(&self, fence: Option<&Fence>) -> bool {
        fence
            .is_none_or(|f| self.owner.as_deref() == Some(f.node.as_str()) && self.epoch == f.epoch)
    }
}

/// Whether an op may write to the run `run_id` (`run`: its row, owned or borrowed, `None` if
/// there is none): the row back, or the refusal, checked in this order: `RunNotFound`, then
/// `Fenced` (when `fence` is given), then `RunFinished`.
pub fn open<R: Borrow<RunRow>>(
    run: Option<R>,
    run_id: &str,
    fence: Option<&Fence>,
) -> Result<R, OpRejected> {
    let found = fenced(run, run_id, fence)?;
    let status = found.borrow().status;
    if status.is_terminal() {
        return Err(OpRejected::RunFinished {
            run_id: run_id.to_owned(),
            status,
        });
    }
    Ok(found)
}

/// The first two checks of [`open`] (`RunNotFound`, then `Fenced`), for ops that may touch
/// a finished run (`MarkBlocked`).
pub fn fenced<R: Borrow<RunRow>>(
    run: Option<R>,
    run_id: &str,
    fence: Option<&Fence>,
) -> Result<R, OpRejected> {
    let Some(found) = run else {
        return Err(OpRejected::RunNotFound {
            run_id: run_id.to_owned(),
        });
    };
    if !found.borrow().fence_holds(fence) {
        return Err(OpRejected::Fenced {
            run_id: run_id.to_owned(),
        });
    }
    Ok(found)
}

/// A claim of `run_id` by `node` at `now_ms` (see [`crate::WriteOp::Claim`]): the new epoch
/// to write with the owner and lease end, or the refusal. A lease is live through its last
/// millisecond; an owner without a lease end holds none.
pub fn claim(
    run: Option<&RunRow>,
    run_id: &str,
    node: &str,
    now_ms: u64,
) -> Result<u64, OpRejected> {
    let run = open(run, run_id, None)?;
    match run.lease_holder(now_ms) {
        Some(owner) if owner != node => Err(OpRejected::Owned {
            run_id: run_id.to_owned(),
            owner: owner.to_owned(),
        }),
        _ => Ok(run.epoch + 1),
    }
}

/// The columns a non-terminal append changes besides `last_seq` and `updated_at`: only those
/// whose value differs (a backend may skip writing the others: SQLite rewrites an index entry
/// for every indexed column an `UPDATE` names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunChange {
    /// The new status, if it differs.
    pub status: Option<RunStatus>,
    /// The new wake-up time, if it differs.
    pub wake_at: Option<Option<u64>>,
}

impl RunChange {
    /// What `status` and `wake_at` of an append change on `run`.
    pub fn of(run: &RunRow, status: Option<RunStatus>, wake_at: WakeAt) -> RunChange {
        RunChange {
            status: status.filter(|s| *s != run.status),
            wake_at: match wake_at {
                WakeAt::Set(at) if at != run.wake_at => Some(at),
                _ => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: RunStatus, owner: Option<&str>, lease_until: Option<u64>) -> RunRow {
        RunRow {
            status,
            last_seq: 3,
            wake_at: Some(10),
            owner: owner.map(str::to_owned),
            lease_until,
            epoch: 4,
            parent: None,
        }
    }

    #[test]
    fn refusals_come_in_order_not_found_fenced_finished() {
        let fence = Fence {
            node: "a".into(),
            epoch: 3,
        };
        assert!(matches!(
            open(None::<&RunRow>, "r", Some(&fence)),
            Err(OpRejected::RunNotFound { .. })
        ));
        let done = row(RunStatus::Completed, Some("a"), None);
        assert!(matches!(
            open(Some(&done), "r", Some(&fence)),
            Err(OpRejected::Fenced { .. })
        ));
        assert!(matches!(
            open(Some(&done), "r", None),
            Err(OpRejected::RunFinished { .. })
        ));
        let live = row(RunStatus::Running, Some("a"), Some(5));
        let current = Fence {
            node: "a".into(),
            epoch: 4,
        };
        assert_eq!(open(Some(&live), "r", Some(&current)), Ok(&live));
    }

    #[test]
    fn a_claim_takes_free_own_or_lapsed_leases_and_raises_the_epoch() {
        let held = row(RunStatus::Running, Some("a"), Some(100));
        assert_eq!(claim(Some(&held), "r", "a", 50), Ok(5), "its own");
        assert_eq!(claim(Some(&held), "r", "b", 101), Ok(5), "lapsed");
        assert!(matches!(
            claim(Some(&held), "r", "b", 100),
            Err(OpRejected::Owned { .. })
        ));
        let free = row(RunStatus::Pending, None, None);
        assert_eq!(claim(Some(&free), "r", "b", 0), Ok(5));
        let done = row(RunStatus::Failed, None, None);
        assert!(matches!(
            claim(Some(&done), "r", "b", 0),
            Err(OpRejected::RunFinished { .. })
        ));
    }

    #[test]
    fn an_append_changes_only_differing_columns() {
        let run = row(RunStatus::Running, None, None);
        let same = RunChange::of(&run, Some(RunStatus::Running), WakeAt::Set(Some(10)));
        assert_eq!(
            same,
            RunChange {
                status: None,
                wake_at: None
            }
        );
        let new = RunChange::of(&run, Some(RunStatus::Suspended), WakeAt::Set(None));
        assert_eq!(
            new,
            RunChange {
                status: Some(RunStatus::Suspended),
                wake_at: Some(None)
            }
        );
    }
}
