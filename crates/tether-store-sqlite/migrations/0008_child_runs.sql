-- 0008_child_runs: child runs (`ctx.start_child`). A child is a main run of its own namespace
-- (`root_run` NULL) that knows the run and the command that started it, and whether a cancel
-- of that run passes on to it (`detached` = 0).
ALTER TABLE runs ADD COLUMN parent_run_id TEXT;
ALTER TABLE runs ADD COLUMN parent_cmd INTEGER;
ALTER TABLE runs ADD COLUMN detached INTEGER NOT NULL DEFAULT 0;
CREATE INDEX runs_parent_idx ON runs (parent_run_id, created_at) WHERE parent_run_id IS NOT NULL;
