//! Mapping between table rows and the store's records, and the JSON encoding of stored values.

use rusqlite::Row;
use serde_json::Value;
use tether_core::event::{ErrorInfo, Event, EventBody, RunStatus};
use tether_store::{HookEnd, HookRecord, RunRecord, StoreError};

use crate::error::{decode_err, encode_err};

/// Columns of `runs`, in the order [`RawRun::from_row`] reads them.
pub(crate) const RUN_COLUMNS: &str =
    "id, workflow, status, input, output, error, created_at, updated_at, last_seq, wake_at, owner, \
     parent_run_id, queue";

/// Columns of `hooks`, in the order [`RawHook::from_row`] reads them.
pub(crate) const HOOK_COLUMNS: &str =
    "token, run_id, hook_cmd, kind, metadata, definition, created_at, expires_at, reserve_ms";

/// Columns of `hook_ends`, in the order [`hook_end_from_row`] reads them.
pub(crate) const HOOK_END_COLUMNS: &str =
    "token, run_id, hook_cmd, expired, ended_at, reserved_until";

/// A `hook_ends` row selected with [`HOOK_END_COLUMNS`].
pub(crate) fn hook_end_from_row(row: &Row<'_>) -> rusqlite::Result<HookEnd> {
    Ok(HookEnd {
        token: row.get(0)?,
        run_id: row.get(1)?,
        hook_cmd: row.get(2)?,
        expired: row.get(3)?,
        ended_at_ms: row.get(4)?,
        reserved_until_ms: row.get(5)?,
    })
}

/// Columns of `events`, in the order [`RawEvent::from_row`] reads them.
pub(crate) const EVENT_COLUMNS: &str = "seq, at, body";

/// A `runs` row as stored, before its JSON and status are decoded.
pub(crate) struct RawRun {
    id: String,
    workflow: String,
    status: String,
    input: String,
    output: Option<String>,
    error: Option<String>,
    created_at: u64,
    updated_at: u64,
    last_seq: u64,
    wake_at: Option<u64>,
    owner: Option<String>,
    parent_run_id: Option<String>,
    queue: String,
}

impl RawRun {
    /// Read a row selected with [`RUN_COLUMNS`].
    pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            workflow: row.get(1)?,
            status: row.get(2)?,
            input: row.get(3)?,
            output: row.get(4)?,
            error: row.get(5)?,
            created_at: row.get(6)?,
            updated_at: row.get(7)?,
            last_seq: row.get(8)?,
            wake_at: row.get(9)?,
            owner: row.get(10)?,
            parent_run_id: row.get(11)?,
            queue: row.get(12)?,
        })
    }

    /// Decode into a record.
    pub(crate) fn into_record(self) -> Result<RunRecord, StoreError> {
        let what = |field: &str| format!("{field} of run {}", self.id);
        Ok(RunRecord {
            status: parse_status(&self.status, &self.id)?,
            input: decode_value(&self.input, &what("input"))?,
            output: match &self.output {
                Some(s) => Some(decode_value(s, &what("output"))?),
                None => None,
            },
            error: match &self.error {
                Some(s) => Some(decode_error_info(s, &what("error"))?),
                None => None,
            },
            created_at_ms: self.created_at,
            updated_at_ms: self.updated_at,
            last_seq: self.last_seq,
            wake_at_ms: self.wake_at,
            owner: self.owner,
            parent_run_id: self.parent_run_id,
            queue: self.queue,
            workflow: self.workflow,
            run_id: self.id,
        })
    }
}

/// A `hooks` row as stored.
pub(crate) struct RawHook {
    token: String,
    run_id: String,
    hook_cmd: u32,
    kind: String,
    metadata: String,
    definition: Option<String>,
    created_at: u64,
    expires_at: Option<u64>,
    reserve_ms: Option<u64>,
}

impl RawHook {
    /// Read a row selected with [`HOOK_COLUMNS`].
    pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            token: row.get(0)?,
            run_id: row.get(1)?,
            hook_cmd: row.get(2)?,
            kind: row.get(3)?,
            metadata: row.get(4)?,
            definition: row.get(5)?,
            created_at: row.get(6)?,
            expires_at: row.get(7)?,
            reserve_ms: row.get(8)?,
        })
    }

    /// Decode into a record.
    pub(crate) fn into_record(self) -> Result<HookRecord, StoreError> {
        let metadata = decode_value(
            &self.metadata,
            &format!(
                "metadata of hook of run {} (cmd {})",
                self.run_id, self.hook_cmd
            ),
        )?;
        Ok(HookRecord {
            token: self.token,
            run_id: self.run_id,
            hook_cmd: self.hook_cmd,
            kind: self.kind,
            metadata,
            definition: self.definition,
            created_at_ms: self.created_at,
            expires_at_ms: self.expires_at,
            reserve_ms: self.reserve_ms,
        })
    }
}

/// An `events` row as stored.
pub(crate) struct RawEvent {
    seq: u64,
    at: u64,
    body: String,
}

impl RawEvent {
    /// Read a row selected with [`EVENT_COLUMNS`].
    pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            seq: row.get(0)?,
            at: row.get(1)?,
            body: row.get(2)?,
        })
    }

    /// Decode into an event of run `run_id`.
    pub(crate) fn into_event(self, run_id: &str) -> Result<Event, StoreError> {
        let body: EventBody = serde_json::from_str(&self.body)
            .map_err(|e| decode_err(&format!("journal entry {} of run {run_id}", self.seq), e))?;
        Ok(Event {
            seq: self.seq,
            at_ms: self.at,
            body,
        })
    }
}

/// Parse a stored status.
pub(crate) fn parse_status(s: &str, run_id: &str) -> Result<RunStatus, StoreError> {
    RunStatus::parse(s)
        .ok_or_else(|| StoreError::corrupt(format!("run {run_id} has unknown status `{s}`")))
}

/// Encode a JSON value for storage.
pub(crate) fn encode_value(v: &Value, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| encode_err(what, e))
}

/// Encode a journal entry body for storage.
pub(crate) fn encode_body(body: &EventBody) -> Result<String, StoreError> {
    serde_json::to_string(body).map_err(|e| encode_err(body.kind(), e))
}

/// Encode an error for storage.
pub(crate) fn encode_error_info(error: &ErrorInfo) -> Result<String, StoreError> {
    serde_json::to_string(error).map_err(|e| encode_err("error", e))
}

fn decode_value(s: &str, what: &str) -> Result<Value, StoreError> {
    serde_json::from_str(s).map_err(|e| decode_err(what, e))
}

fn decode_error_info(s: &str, what: &str) -> Result<ErrorInfo, StoreError> {
    serde_json::from_str(s).map_err(|e| decode_err(what, e))
}
