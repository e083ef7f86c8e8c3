-- 0009_schedules: durable cron schedules (tether_store::ScheduleRecord). The store keeps the
-- expression and time zone as given (the engine reads them) and the next tick to fire as an
-- instant, `next_tick` (ms since the Unix epoch; NULL when the expression has no further
-- instant). A tick fires in the transaction that creates its run (`sched:{id}:{tick}`) and
-- moves `next_tick` on, under the schedule's row lock and only while `next_tick` still holds
-- that tick: two nodes firing one tick queue up on the lock, and the second finds the tick
-- moved and writes nothing. Deleting a schedule leaves its runs; retention never deletes
-- schedules. The same table as the SQLite backend's 0010_schedules.

CREATE TABLE schedules (
    id          TEXT    PRIMARY KEY,
    workflow    TEXT    NOT NULL,
    cron        TEXT    NOT NULL,
    timezone    TEXT    NOT NULL,
    input       TEXT    NOT NULL,  -- JSON
    overlap     TEXT    NOT NULL,  -- skip | allow
    catch_up    TEXT    NOT NULL,  -- one | skip
    paused      BOOLEAN NOT NULL DEFAULT FALSE,
    next_tick   BIGINT,
    last_run_id TEXT,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
