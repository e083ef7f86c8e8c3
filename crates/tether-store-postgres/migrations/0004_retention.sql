-- 0004_retention: what retention (tether_store::retention) reads and deletes by. The same
-- indexes as the SQLite backend's 0005_retention (signal_waits_run_idx exists since 0002).
CREATE INDEX runs_ended_idx ON runs (updated_at)
    WHERE root_run IS NULL AND status IN ('completed', 'failed', 'cancelled');
-- `created_at` has been recorded since 0001, so keys older than this migration age too.
CREATE INDEX idempotency_created_idx ON idempotency (created_at);
CREATE INDEX idempotency_run_idx ON idempotency (run_id);
