//! Journal writes of a batch: entries into the write buffer, a delivered entry, a run's
//! ending.

use tether_core::event::Event;
use tether_store::{Ending, StoreError};

use crate::buffer::RunUpdate;
use crate::rows::{encode_error_info, encode_value, to_db};
use crate::write::Batch;

/// Write journal entries of one run (kept in the batch's write buffer).
pub(crate) fn insert_events(
    b: &mut Batch<'_>,
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
    b: &mut Batch<'_>,
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

/// Set the terminal status, output and error, clear `wake_at` and the lease, and release every
/// hook of the run.
pub(crate) fn finish_run(
    b: &Batch<'_>,
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
    b.buffer().ended(run_id, at);
    Ok(())
}
