//! The journal ops of a group commit: `CreateRun`, `Append` (and `RequestCancel`, an append of
//! `CancelRequested`), `MarkBlocked` and `Checkpoint`.

use serde_json::Value;
use tether_core::event::{ErrorInfo, Event, EventBody, RunStatus};
use tether_store::plan::{self, plan_append, RunChange};
use tether_store::{
    run_started, Ending, Fence, FirstClaim, OpOutcome, OpRejected, OpResult, StoreError, WakeAt,
};

use crate::buffer::RunUpdate;
use crate::rows::{encode_error_info, encode_value, opt_to_db, to_db};
use crate::write::Batch;

/// Write journal entries of one run (kept in the batch's write buffer).
pub(crate) fn insert_events(
    b: &mut Batch<'_, '_>,
    run_id: &str,
    events: &[Event],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    b.buffer().events(run_id, events)?;
    if let Some(last) = events.last() {
        b.note_growth(run_id, last.seq);
    }
    Ok(())
}

/// Append one delivered entry (`event.seq` is the run's next) and move the run's `last_seq`
/// and `updated_at`.
pub(crate) fn append_delivered(
    b: &mut Batch<'_, '_>,
    run_id: &str,
    event: &Event,
) -> Result<(), StoreError> {
    insert_events(b, run_id, std::slice::from_ref(event))?;
    b.update_run(
        run_id,
        RunUpdate {
            last_seq: to_db(event.seq, "journal seq")?,
            updated_at: to_db(event.at_ms, "commit time")?,
            status: None,
            wake_at: None,
            end: None,
        },
    );
    Ok(())
}

/// Create a run with its `RunStarted` entry.
pub(crate) async fn create_run(
    b: &mut Batch<'_, '_>,
    run_id: &str,
    workflow: &str,
    input: &Value,
    at_ms: u64,
    claim: Option<&FirstClaim>,
) -> Result<OpResult, StoreError> {
    let input_json = encode_value(input, "run input")?;
    let at = to_db(at_ms, "commit time")?;
    let row = FirstClaim::new_run_row(claim);
    let lease_until = opt_to_db(row.lease_until_ms, "lease end")?;
    let epoch = to_db(row.epoch, "epoch")?;
    let inserted = b
        .execute(
            "INSERT INTO runs (id, workflow, status, input, created_at, updated_at, last_seq,
                               owner, lease_until, epoch)
             VALUES ($1, $2, $3, $4, $5, $5, 1, $6, $7, $8)
             ON CONFLICT (id) DO NOTHING",
            &[
                &run_id,
                &workflow,
                &row.status.as_str(),
                &input_json,
                &at,
                &row.owner,
                &lease_until,
                &epoch,
            ],
            "insert run",
        )
        .await?;
    if inserted == 0 {
        return Ok(Err(OpRejected::RunExists {
            run_id: run_id.to_owned(),
        }));
    }
    // The new row is ours until commit.
    b.mark_locked(run_id);
    let event = run_started(workflow.to_owned(), input.clone(), at_ms);
    insert_events(b, run_id, std::slice::from_ref(&event))?;
    Ok(Ok(OpOutcome::Appended {
        run_id: run_id.to_owned(),
        events: vec![event],
    }))
}

/// How an `Append` changes the run besides its journal.
pub(crate) struct Change<'a> {
    /// New non-terminal status, if it changes.
    pub(crate) status: Option<RunStatus>,
    /// New wake-up time, if it changes.
    pub(crate) wake_at: WakeAt,
    /// The writer's claim, if it checks one.
    pub(crate) fence: Option<&'a Fence>,
    /// Commit time.
    pub(crate) at_ms: u64,
}

/// Append entries (registering and releasing hooks, ending the run on a terminal entry) and
/// update the run's status and wake-up time.
pub(crate) async fn append(
    b: &mut Batch<'_, '_>,
    run_id: &str,
    events: &[EventBody],
    change: Change<'_>,
) -> Result<OpResult, StoreError> {
    let run = b.lock_run(run_id).await?;
    let run = match plan::open(run, run_id, change.fence) {
        Ok(run) => run,
        Err(refused) => return Ok(Err(refused)),
    };
    let at_ms = change.at_ms;
    let planned = plan_append(b, run_id, events.to_vec(), run.last_seq, at_ms).await?;
    insert_events(b, run_id, &planned.written)?;

    let last_seq = to_db(planned.last_seq(run.last_seq), "journal seq")?;
    let at = to_db(at_ms, "commit time")?;
    match &planned.ending {
        Some(end) => finish_run(b, run_id, end, last_seq, at)?,
        None => {
            // The write buffer merges run updates per kind: it takes every column.
            let changed = RunChange::of(&run, change.status, change.wake_at);
            let status = changed.status.unwrap_or(run.status);
            let wake_at = opt_to_db(changed.wake_at.unwrap_or(run.wake_at), "wake-up time")?;
            b.update_run(
                run_id,
                RunUpdate {
                    last_seq,
                    updated_at: at,
                    status: Some(status.as_str()),
                    wake_at: Some(wake_at),
                    end: None,
                },
            );
        }
    }
    Ok(Ok(OpOutcome::Appended {
        run_id: run_id.to_owned(),
        events: planned.written,
    }))
}

/// Set the terminal status, output and error, clear `wake_at` and the lease, and release every
/// hook of the run.
fn finish_run(
    b: &Batch<'_, '_>,
    run_id: &str,
    end: &Ending,
    last_seq: i64,
    at: i64,
) -> Result<(), StoreError> {
    let output = end
        .output
        .as_ref()
        .map(|v| encode_value(v, "run output"))
        .transpose()?;
    let error = end.error.as_ref().map(encode_error_info).transpose()?;
    b.update_run(
        run_id,
        RunUpdate {
            last_seq,
            updated_at: at,
            status: Some(end.status.as_str()),
            wake_at: None,
            end: Some((output, error)),
        },
    );
    b.buffer().ended(run_id);
    Ok(())
}

/// Record an error on the run, keeping its journal and status.
pub(crate) async fn mark_blocked(
    b: &mut Batch<'_, '_>,
    run_id: &str,
    error: &ErrorInfo,
    fence: Option<&Fence>,
    at_ms: u64,
) -> Result<OpResult, StoreError> {
    let run = b.lock_run(run_id).await?;
    if let Err(refused) = plan::fenced(run, run_id, fence) {
        return Ok(Err(refused));
    }
    let error = encode_error_info(error)?;
    b.execute(
        "UPDATE runs SET error = $2, updated_at = $3 WHERE id = $1",
        &[&run_id, &error, &to_db(at_ms, "commit time")?],
        "mark run blocked",
    )
    .await?;
    Ok(Ok(OpOutcome::Updated))
}

/// Raise the run's checkpoint mark (never lower it).
pub(crate) async fn checkpoint(
    b: &mut Batch<'_, '_>,
    run_id: &str,
    applied_seq: u64,
) -> Result<OpResult, StoreError> {
    // A mark past any seq this backend can store covers the whole journal.
    let mark = crate::rows::bound(applied_seq);
    if b.holds(run_id) {
        // The row is locked by this batch, so the run exists: nothing to decide, the mark
        // goes with the batch's other writes.
        b.buffer().checkpoint(run_id, mark);
        return Ok(Ok(OpOutcome::Updated));
    }
    let n = b
        .execute(
            "UPDATE runs SET applied_seq = GREATEST(applied_seq, $2) WHERE id = $1",
            &[&run_id, &mark],
            "record checkpoint",
        )
        .await?;
    if n == 0 {
        return Ok(Err(OpRejected::RunNotFound {
            run_id: run_id.to_owned(),
        }));
    }
    Ok(Ok(OpOutcome::Updated))
}
