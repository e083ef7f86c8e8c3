-- 0005_retention: what retention (tether_store::retention) reads and deletes by.
-- Ended main runs by the time they ended. The status test is a chain of `=` (see 0003: a
-- partial index's predicate is evaluated on every UPDATE); retention.rs spells it exactly so.
CREATE INDEX runs_ended_idx ON runs (updated_at)
    WHERE root_run IS NULL
      AND (status = 'completed' OR status = 'failed' OR status = 'cancelled');
-- Idempotency keys by age (the window) and by run (deleted with their run).
-- `created_at` has been recorded since 0001, so keys older than this migration age too.
CREATE INDEX idempotency_created_idx ON idempotency (created_at);
CREATE INDEX idempotency_run_idx ON idempotency (run_id);
-- Waits of a run, deleted with it.
CREATE INDEX signal_waits_run_idx ON signal_waits (run_id);
