//! Child runs (`ChildStarted` / `ChildEnded`, the contract on [`crate::WriteOp::Append`]):
//! the child run created in the transaction that journals its start, what a child's end
//! delivers to its parent, and how a cancel request reaches a run's children. The backend
//! provides row primitives ([`ChildBackend`]); the rules are here, decided once.
//!
//! - A `ChildStarted` creates the child run (id `child_run_id`, status `pending`, its own
//!   namespace, `parent_run_id` / `parent_cmd` / `detached` set); a taken id creates nothing,
//!   so a start journaled again cannot make a second child.
//! - An append that ends a child run appends `ChildEnded { child_cmd, status, output, error }`
//!   to its parent in the same transaction. A parent that has ended (or is gone) gets
//!   nothing: its workflow can no longer wait for the child.
//! - An append of `CancelRequested` to a run appends `CancelRequested` (same reason) to each
//!   of its unfinished children not started detached, and so on down to their children, in
//!   the same transaction. A run that ends without a cancel request leaves its children be.

use serde_json::Value;
use tether_core::event::{CommandIndex, EventBody};

use super::signal::SignalBackend;
use crate::{Ending, StoreError};

/// A child run to create.
#[derive(Clone, Copy, Debug)]
pub struct NewChild<'a> {
    /// The parent run.
    pub parent_run_id: &'a str,
    /// The command index of the parent's `ChildStarted`.
    pub parent_cmd: CommandIndex,
    /// The child's run id.
    pub child_run_id: &'a str,
    /// The workflow it runs.
    pub workflow: &'a str,
    /// Its input.
    pub input: &'a Value,
    /// Whether a cancellation of the parent leaves it running.
    pub detached: bool,
    /// Commit time.
    pub at_ms: u64,
}

/// Where a child run reports its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParentLink {
    /// The parent run.
    pub run_id: String,
    /// The command index of the parent's `ChildStarted`.
    pub cmd: CommandIndex,
}

/// The rows of child runs, in the batch's transaction.
#[allow(async_fn_in_trait)] // generic use only: the caller's concrete future keeps its `Send`
pub trait ChildBackend {
    /// Create the child run and its entry 1 (`RunStarted`); nothing if the id is taken.
    async fn create_child(&mut self, child: NewChild<'_>) -> Result<(), StoreError>;

    /// The unfinished children of `run_id` not started detached, oldest first.
    async fn attached_children(&mut self, run_id: &str) -> Result<Vec<String>, StoreError>;
}

/// A child's end, as its parent's journal says it.
pub fn child_ended(child_cmd: CommandIndex, end: &Ending) -> EventBody {
    EventBody::ChildEnded {
        child_cmd,
        status: end.status,
        output: end.output.clone(),
        error: end.error.clone(),
    }
}

/// A run ended with `end`: tell its parent (`parent`, read with the run's row), if it has one
/// that is still going.
pub async fn report_end<B: ChildBackend + SignalBackend>(
    b: &mut B,
    parent: Option<&ParentLink>,
    end: &Ending,
    at_ms: u64,
) -> Result<(), StoreError> {
    let Some(parent) = parent else {
        return Ok(());
    };
    // Refused (parent ended or gone): nothing is written, nothing to do.
    let _ = b
        .append_delivery(&parent.run_id, child_ended(parent.cmd, end), at_ms)
        .await?;
    Ok(())
}

/// A cancel request was appended to `run_id`: pass it on to its attached unfinished
/// children, and theirs. Returns the runs it reached, in the order they were reached.
pub async fn cascade_cancel<B: ChildBackend + SignalBackend>(
    b: &mut B,
    run_id: &str,
    reason: &Option<String>,
    at_ms: u64,
) -> Result<Vec<String>, StoreError> {
    let mut reached = Vec::new();
    let mut todo = vec![run_id.to_owned()];
    while let Some(parent) = todo.pop() {
        for child in b.attached_children(&parent).await? {
            let cancel = EventBody::CancelRequested {
                reason: reason.clone(),
            };
            if b.append_delivery(&child, cancel, at_ms).await?.is_ok() {
                reached.push(child.clone());
                todo.push(child);
            }
        }
    }
    Ok(reached)
}
