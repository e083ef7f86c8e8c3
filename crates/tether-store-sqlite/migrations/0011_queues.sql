-- 0011_queues: task queues. A run's queue ('default' unless it was started on another) and
-- when its first claim admitted it to that queue (NULL while it waits): routing (only nodes
-- serving the queue claim the run) and per-queue limits (admitted unfinished runs, admissions
-- per period).
ALTER TABLE runs ADD COLUMN queue TEXT NOT NULL DEFAULT 'default';
ALTER TABLE runs ADD COLUMN admitted_at INTEGER;
-- Unfinished runs claimed before this migration were admitted.
UPDATE runs SET admitted_at = created_at
 WHERE epoch > 0 AND status NOT IN ('completed', 'failed', 'cancelled');
-- Unfinished runs per queue: admitted ones (a concurrency limit) and waiting ones (the depth).
CREATE INDEX runs_queue_open_idx ON runs (queue, admitted_at)
    WHERE status NOT IN ('completed', 'failed', 'cancelled');
-- Admissions per queue by time (a rate limit's period).
CREATE INDEX runs_queue_admitted_idx ON runs (queue, admitted_at) WHERE admitted_at IS NOT NULL;
