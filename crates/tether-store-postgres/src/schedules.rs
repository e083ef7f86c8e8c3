//! Schedules on PostgreSQL: the planner's [`ScheduleBackend`] over the `schedules` table
//! (a fire locks the schedule's row, `FOR UPDATE`, so two nodes firing one tick queue up and
//! the second reads the moved tick), and the two reads. The rules are in
//! [`tether_store::plan::schedule`].

use deadpool_postgres::Pool;
use tether_core::event::RunStatus;
use tether_store::plan::{ScheduleBackend, ScheduleRow};
use tether_store::{CatchUp, Overlap, ScheduleRecord, ScheduleSpec, StoreError};
use tokio_postgres::Row;

use crate::error::decode_err;
use crate::read::query;
use crate::rows::{col, encode_value, from_db, opt_from_db, opt_to_db, parse_status, to_db};
use crate::write::Batch;

/// The columns [`record`] reads, in order.
const COLUMNS: &str = "id, workflow, cron, timezone, input, overlap, catch_up, paused, \
                       next_tick, last_run_id, created_at, updated_at";

/// A schedule from a row of [`COLUMNS`].
fn record(row: &Row) -> Result<ScheduleRecord, StoreError> {
    let what = "read schedule";
    let id: String = col(row, 0, what)?;
    let bad =
        |field: &str, v: &str| StoreError::corrupt(format!("schedule {id}: unknown {field} {v:?}"));
    let overlap: String = col(row, 5, what)?;
    let catch_up: String = col(row, 6, what)?;
    let input: String = col(row, 4, what)?;
    Ok(ScheduleRecord {
        spec: ScheduleSpec {
            workflow: col(row, 1, what)?,
            cron: col(row, 2, what)?,
            timezone: col(row, 3, what)?,
            input: serde_json::from_str(&input).map_err(|e| decode_err("schedule input", &e))?,
            overlap: Overlap::parse(&overlap).ok_or_else(|| bad("overlap", &overlap))?,
            catch_up: CatchUp::parse(&catch_up).ok_or_else(|| bad("catch_up", &catch_up))?,
            id: id.clone(),
        },
        paused: col(row, 7, what)?,
        next_tick_ms: opt_from_db(col(row, 8, what)?, "next_tick")?,
        last_run_id: col(row, 9, what)?,
        created_at_ms: from_db(col(row, 10, what)?, "created_at")?,
        updated_at_ms: from_db(col(row, 11, what)?, "updated_at")?,
    })
}

/// One schedule.
pub(crate) async fn get_schedule(
    pool: &Pool,
    id: &str,
) -> Result<Option<ScheduleRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM schedules WHERE id = $1");
    let rows = query(pool, &sql, &[&id], "read schedule").await?;
    rows.first().map(record).transpose()
}

/// Every schedule, by id.
pub(crate) async fn list_schedules(pool: &Pool) -> Result<Vec<ScheduleRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM schedules ORDER BY id");
    let rows = query(pool, &sql, &[], "list schedules").await?;
    rows.iter().map(record).collect()
}

impl ScheduleBackend for Batch<'_> {
    async fn lock_schedule(&mut self, id: &str) -> Result<Option<ScheduleRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM schedules WHERE id = $1 FOR UPDATE");
        let row = self.query_opt(&sql, &[&id], "lock schedule").await?;
        Ok(row.as_ref().map(record).transpose()?.map(|s| ScheduleRow {
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
            .execute(
                "INSERT INTO schedules (id, workflow, cron, timezone, input, overlap, catch_up,
                                        paused, next_tick, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, FALSE, $8, $9, $9)
                 ON CONFLICT (id) DO NOTHING",
                &[
                    &spec.id,
                    &spec.workflow,
                    &spec.cron,
                    &spec.timezone,
                    &input,
                    &spec.overlap.as_str(),
                    &spec.catch_up.as_str(),
                    &opt_to_db(next_tick_ms, "next tick")?,
                    &to_db(at_ms, "commit time")?,
                ],
                "insert schedule",
            )
            .await?;
        Ok(inserted == 1)
    }

    async fn delete_schedule(&mut self, id: &str) -> Result<bool, StoreError> {
        let deleted = self
            .execute(
                "DELETE FROM schedules WHERE id = $1",
                &[&id],
                "delete schedule",
            )
            .await?;
        Ok(deleted == 1)
    }

    async fn set_schedule_paused(
        &mut self,
        id: &str,
        paused: bool,
        next_tick_ms: Option<Option<u64>>,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        let at = to_db(at_ms, "commit time")?;
        match next_tick_ms {
            None => {
                self.execute(
                    "UPDATE schedules SET paused = $2, updated_at = $3 WHERE id = $1",
                    &[&id, &paused, &at],
                    "pause schedule",
                )
                .await?
            }
            Some(next) => {
                self.execute(
                    "UPDATE schedules SET paused = $2, next_tick = $3, updated_at = $4
                     WHERE id = $1",
                    &[&id, &paused, &opt_to_db(next, "next tick")?, &at],
                    "resume schedule",
                )
                .await?
            }
        };
        Ok(())
    }

    async fn advance_schedule(
        &mut self,
        id: &str,
        next_tick_ms: Option<u64>,
        last_run_id: Option<&str>,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        self.execute(
            "UPDATE schedules SET next_tick = $2, last_run_id = COALESCE($3, last_run_id),
                                  updated_at = $4
             WHERE id = $1",
            &[
                &id,
                &opt_to_db(next_tick_ms, "next tick")?,
                &last_run_id,
                &to_db(at_ms, "commit time")?,
            ],
            "advance schedule",
        )
        .await?;
        Ok(())
    }

    async fn run_status(&mut self, run_id: &str) -> Result<Option<RunStatus>, StoreError> {
        let row = self
            .query_opt(
                "SELECT status FROM runs WHERE id = $1",
                &[&run_id],
                "read run status",
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let status: String = col(&row, 0, "read run status")?;
        parse_status(&status, run_id).map(Some)
    }
}
