//! Mapping between table rows and the store's records, the JSON encoding of stored values and
//! the conversions between `u64` and PostgreSQL's `BIGINT`.

use serde_json::Value;
use tether_core::event::{ErrorInfo, Event, EventBody, RunStatus};
use tether_store::{HookEnd, HookRecord, RunRecord, StoreError};
use tokio_postgres::Row;

use crate::error::{bad_number, decode_err, encode_err, Ctx};

/// Columns of `runs`, in the order [`run_from_row`] reads them.
pub(crate) const RUN_COLUMNS: &str = "id, workflow, status, input, output, error, created_at, \
                                      updated_at, last_seq, wake_at, owner, parent_run_id, \
                                      queue";

/// Columns of `hooks`, in the order [`hook_from_row`] reads them.
pub(crate) const HOOK_COLUMNS: &str =
    "token, run_id, hook_cmd, kind, metadata, definition, created_at, expires_at, reserve_ms";

/// Columns of `hook_ends`, in the order [`hook_end_from_row`] reads them.
pub(crate) const HOOK_END_COLUMNS: &str =
    "token, run_id, hook_cmd, expired, ended_at, reserved_until";

/// Decode a row selected with [`HOOK_END_COLUMNS`].
pub(crate) fn hook_end_from_row(row: &Row) -> Result<HookEnd, StoreError> {
    let token: String = col(row, 0, "read hook end token")?;
    let run_id: String = col(row, 1, "read hook end run")?;
    let what = |field: &str| format!("{field} of the end of a hook of run {run_id}");
    let hook_cmd: i64 = col(row, 2, &what("hook_cmd"))?;
    let hook_cmd = u32::try_from(hook_cmd).map_err(|_| bad_number(&what("hook_cmd"), hook_cmd))?;
    Ok(HookEnd {
        expired: col(row, 3, &what("expired"))?,
        ended_at_ms: from_db(col(row, 4, &what("ended_at"))?, &what("ended_at"))?,
        reserved_until_ms: opt_from_db(
            col(row, 5, &what("reserved_until"))?,
            &what("reserved_until"),
        )?,
        hook_cmd,
        token,
        run_id,
    })
}

/// Columns of `events`, in the order [`event_from_row`] reads them.
pub(crate) const EVENT_COLUMNS: &str = "seq, at, body";

/// A `u64` to store: refused (like SQLite does) past `i64::MAX`.
pub(crate) fn to_db(v: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| crate::error::out_of_range(what, v))
}

/// An optional `u64` to store.
pub(crate) fn opt_to_db(v: Option<u64>, what: &str) -> Result<Option<i64>, StoreError> {
    v.map(|v| to_db(v, what)).transpose()
}

/// A `u64` used only as a query bound, saturating (stored values never exceed `i64::MAX`).
pub(crate) fn bound(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored `BIGINT` read back as `u64`; negative values mean a damaged row.
pub(crate) fn from_db(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| bad_number(what, v))
}

/// An optional stored `BIGINT` read back as `u64`.
pub(crate) fn opt_from_db(v: Option<i64>, what: &str) -> Result<Option<u64>, StoreError> {
    v.map(|v| from_db(v, what)).transpose()
}

/// Read column `idx` of `row`, mapping a type mismatch to `Corrupt`.
pub(crate) fn col<'a, T>(row: &'a Row, idx: usize, what: &str) -> Result<T, StoreError>
where
    T: tokio_postgres::types::FromSql<'a>,
{
    row.try_get(idx).ctx(what).map_err(|e| match e {
        StoreError::Unavailable(m) => StoreError::Corrupt(m),
        other => other,
    })
}

/// Decode a row selected with [`RUN_COLUMNS`].
pub(crate) fn run_from_row(row: &Row) -> Result<RunRecord, StoreError> {
    let id: String = col(row, 0, "read run id")?;
    let what = |field: &str| format!("{field} of run {id}");
    let status: String = col(row, 2, &what("status"))?;
    let input: String = col(row, 3, &what("input"))?;
    let output: Option<String> = col(row, 4, &what("output"))?;
    let error: Option<String> = col(row, 5, &what("error"))?;
    Ok(RunRecord {
        workflow: col(row, 1, &what("workflow"))?,
        status: parse_status(&status, &id)?,
        input: decode_value(&input, &what("input"))?,
        output: output
            .map(|s| decode_value(&s, &what("output")))
            .transpose()?,
        error: error
            .map(|s| decode_error_info(&s, &what("error")))
            .transpose()?,
        created_at_ms: from_db(col(row, 6, &what("created_at"))?, &what("created_at"))?,
        updated_at_ms: from_db(col(row, 7, &what("updated_at"))?, &what("updated_at"))?,
        last_seq: from_db(col(row, 8, &what("last_seq"))?, &what("last_seq"))?,
        wake_at_ms: opt_from_db(col(row, 9, &what("wake_at"))?, &what("wake_at"))?,
        owner: col(row, 10, &what("owner"))?,
        parent_run_id: col(row, 11, &what("parent_run_id"))?,
        queue: col(row, 12, &what("queue"))?,
        run_id: id,
    })
}

/// Decode a row selected with [`HOOK_COLUMNS`].
pub(crate) fn hook_from_row(row: &Row) -> Result<HookRecord, StoreError> {
    let token: String = col(row, 0, "read hook token")?;
    let run_id: String = col(row, 1, "read hook run")?;
    let what = |field: &str| format!("{field} of hook of run {run_id}");
    let hook_cmd: i64 = col(row, 2, &what("hook_cmd"))?;
    let hook_cmd = u32::try_from(hook_cmd).map_err(|_| bad_number(&what("hook_cmd"), hook_cmd))?;
    let metadata: String = col(row, 4, &what("metadata"))?;
    Ok(HookRecord {
        kind: col(row, 3, &what("kind"))?,
        metadata: decode_value(&metadata, &format!("{} (cmd {hook_cmd})", what("metadata")))?,
        definition: col(row, 5, &what("definition"))?,
        created_at_ms: from_db(col(row, 6, &what("created_at"))?, &what("created_at"))?,
        expires_at_ms: opt_from_db(col(row, 7, &what("expires_at"))?, &what("expires_at"))?,
        reserve_ms: opt_from_db(col(row, 8, &what("reserve_ms"))?, &what("reserve_ms"))?,
        hook_cmd,
        token,
        run_id,
    })
}

/// Decode a row selected with [`EVENT_COLUMNS`] as an entry of run `run_id`.
pub(crate) fn event_from_row(row: &Row, run_id: &str) -> Result<Event, StoreError> {
    let seq: i64 = col(row, 0, "read journal entry seq")?;
    let what = format!("journal entry {seq} of run {run_id}");
    let at: i64 = col(row, 1, &what)?;
    let body: String = col(row, 2, &what)?;
    let body: EventBody = serde_json::from_str(&body).map_err(|e| decode_err(&what, &e))?;
    Ok(Event {
        seq: from_db(seq, &what)?,
        at_ms: from_db(at, &what)?,
        body,
    })
}

/// Parse a stored status.
pub(crate) fn parse_status(s: &str, run_id: &str) -> Result<RunStatus, StoreError> {
    RunStatus::parse(s)
        .ok_or_else(|| StoreError::corrupt(format!("run {run_id} has unknown status `{s}`")))
}

/// Encode a JSON value for storage.
pub(crate) fn encode_value(v: &Value, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| encode_err(what, &e))
}

/// Encode a journal entry body for storage.
pub(crate) fn encode_body(body: &EventBody) -> Result<String, StoreError> {
    serde_json::to_string(body).map_err(|e| encode_err(body.kind(), &e))
}

/// Encode an error for storage.
pub(crate) fn encode_error_info(error: &ErrorInfo) -> Result<String, StoreError> {
    serde_json::to_string(error).map_err(|e| encode_err("error", &e))
}

fn decode_value(s: &str, what: &str) -> Result<Value, StoreError> {
    serde_json::from_str(s).map_err(|e| decode_err(what, &e))
}

fn decode_error_info(s: &str, what: &str) -> Result<ErrorInfo, StoreError> {
    serde_json::from_str(s).map_err(|e| decode_err(what, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bigint_conversions() {
        assert_eq!(to_db(5, "x"), Ok(5));
        assert!(matches!(
            to_db(u64::MAX, "x"),
            Err(StoreError::Unavailable(_))
        ));
        assert_eq!(bound(u64::MAX), i64::MAX);
        assert_eq!(from_db(7, "x"), Ok(7));
        assert!(matches!(from_db(-1, "x"), Err(StoreError::Corrupt(_))));
        assert_eq!(opt_from_db(None, "x"), Ok(None));
        assert_eq!(opt_to_db(Some(3), "x"), Ok(Some(3)));
    }
}
