//! Schedules on SQLite: the planner's [`ScheduleBackend`] over the `schedules` table, and the
//! two reads. The rules (exactly one run per tick) are in [`tether_store::plan::schedule`].

use rusqlite::{params, Connection, OptionalExtension, Row};
use tether_core::event::RunStatus;
use tether_store::plan::{ScheduleBackend, ScheduleRow};
use tether_store::{CatchUp, Overlap, ScheduleRecord, ScheduleSpec, StoreError};

use crate::append::Tx;
use crate::error::{decode_err, Ctx};
use crate::rows::{encode_value, parse_status};

/// The columns [`raw_schedule`] reads, in order.
const COLUMNS: &str = "id, workflow, cron, timezone, input, overlap, catch_up, paused, \
                       next_tick, last_run_id, created_at, updated_at";

/// A schedule row as read, before decoding.
struct Raw {
    id: String,
    workflow: String,
    cron: String,
    timezone: String,
    input: String,
    overlap: String,
    catch_up: String,
    paused: bool,
    next_tick: Option<u64>,
    last_run_id: Option<String>,
    created_at: u64,
    updated_at: u64,
}

fn raw_schedule(r: &Row<'_>) -> rusqlite::Result<Raw> {
    Ok(Raw {
        id: r.get(0)?,
        workflow: r.get(1)?,
        cron: r.get(2)?,
        timezone: r.get(3)?,
        input: r.get(4)?,
        overlap: r.get(5)?,
        catch_up: r.get(6)?,
        paused: r.get(7)?,
        next_tick: r.get(8)?,
        last_run_id: r.get(9)?,
        created_at: r.get(10)?,
        updated_at: r.get(11)?,
    })
}

impl Raw {
    fn into_record(self) -> Result<ScheduleRecord, StoreError> {
        let bad = |what: &str, v: &str| {
            StoreError::corrupt(format!("schedule {}: unknown {what} {v:?}", self.id))
        };
        let overlap = Overlap::parse(&self.overlap).ok_or_else(|| bad("overlap", &self.overlap))?;
        let catch_up =
            CatchUp::parse(&self.catch_up).ok_or_else(|| bad("catch_up", &self.catch_up))?;
        let input =
            serde_json::from_str(&self.input).map_err(|e| decode_err("schedule input", e))?;
        Ok(ScheduleRecord {
            spec: ScheduleSpec {
                id: self.id,
                workflow: self.workflow,
                cron: self.cron,
                timezone: self.timezone,
                input,
                overlap,
                catch_up,
            },
            paused: self.paused,
            next_tick_ms: self.next_tick,
            last_run_id: self.last_run_id,
            created_at_ms: self.created_at,
            updated_at_ms: self.updated_at,
        })
    }
}

/// One schedule.
pub(crate) fn get_schedule(
    conn: &Connection,
    id: &str,
) -> Result<Option<ScheduleRecord>, StoreError> {
    let raw = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM schedules WHERE id = ?1"))
        .and_then(|mut stmt| stmt.query_row([id], raw_schedule).optional())
        .ctx("read schedule")?;
    raw.map(Raw::into_record).transpose()
}

/// Every schedule, by id.
pub(crate) fn list_schedules(conn: &Connection) -> Result<Vec<ScheduleRecord>, StoreError> {
    let raws: Vec<Raw> = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM schedules ORDER BY id"))
        .and_then(|mut stmt| stmt.query_map([], raw_schedule)?.collect())
        .ctx("list schedules")?;
    raws.into_iter().map(Raw::into_record).collect()
}

impl ScheduleBackend for Tx<'_> {
    async fn lock_schedule(&mut self, id: &str) -> Result<Option<ScheduleRow>, StoreError> {
        // One writer connection in an immediate transaction: nobody else writes meanwhile.
        Ok(get_schedule(self.0, id)?.map(|s| ScheduleRow {
            workflow: s.spec.workflow,
            input: s.spec.input,
            overlap: s.spec.overlap,
            paused: s.paused,
            next_tick_ms: s.next_tick_ms,
            last_run_id: s.last_run_id,
        }))
    }

    async fn insert_schedule(
        &mut self,
        spec: &ScheduleSpec,
        next_tick_ms: Option<u64>,
        at_ms: u64,
    ) -> Result<bool, StoreError> {
        let input = encode_value(&spec.input, "schedule input")?;
        let inserted = self
            .0
            .prepare_cached(
                "INSERT INTO schedules (id, workflow, cron, timezone, input, overlap, catch_up,
                                        paused, next_tick, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, ?9, ?9)
                 ON CONFLICT (id) DO NOTHING",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    spec.id,
                    spec.workflow,
                    spec.cron,
                    spec.timezone,
                    input,
                    spec.overlap.as_str(),
                    spec.catch_up.as_str(),
                    next_tick_ms,
                    at_ms
                ])
            })
            .ctx("insert schedule")?;
        Ok(inserted == 1)
    }

    async fn delete_schedule(&mut self, id: &str) -> Result<bool, StoreError> {
        let deleted = self
            .0
            .prepare_cached("DELETE FROM schedules WHERE id = ?1")
            .and_then(|mut stmt| stmt.execute([id]))
            .ctx("delete schedule")?;
        Ok(deleted == 1)
    }

    async fn set_schedule_paused(
        &mut self,
        id: &str,
        paused: bool,
        next_tick_ms: Option<Option<u64>>,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        let result = match next_tick_ms {
            None => self
                .0
                .prepare_cached("UPDATE schedules SET paused = ?2, updated_at = ?3 WHERE id = ?1")
                .and_then(|mut stmt| stmt.execute(params![id, paused, at_ms])),
            Some(next) => self
                .0
                .prepare_cached(
                    "UPDATE schedules SET paused = ?2, next_tick = ?3, updated_at = ?4
                     WHERE id = ?1",
                )
                .and_then(|mut stmt| stmt.execute(params![id, paused, next, at_ms])),
        };
        result.ctx("pause or resume schedule")?;
        Ok(())
    }

    async fn advance_schedule(
        &mut self,
        id: &str,
        next_tick_ms: Option<u64>,
        last_run_id: Option<&str>,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        self.0
            .prepare_cached(
                "UPDATE schedules SET next_tick = ?2, last_run_id = COALESCE(?3, last_run_id),
                                      updated_at = ?4
                 WHERE id = ?1",
            )
            .and_then(|mut stmt| stmt.execute(params![id, next_tick_ms, last_run_id, at_ms]))
            .ctx("advance schedule")?;
        Ok(())
    }

    async fn run_status(&mut self, run_id: &str) -> Result<Option<RunStatus>, StoreError> {
        let status: Option<String> = self
            .0
            .prepare_cached("SELECT status FROM runs WHERE id = ?1")
            .and_then(|mut stmt| stmt.query_row([run_id], |r| r.get(0)).optional())
            .ctx("read run status")?;
        status.map(|s| parse_status(&s, run_id)).transpose()
    }
}
