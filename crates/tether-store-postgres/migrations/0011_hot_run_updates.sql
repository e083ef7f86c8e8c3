-- 0011_hot_run_updates: let the updates of a run's row that only move its journal on (a step
-- result, a payload while running: `last_seq` and `updated_at`) be HOT updates (PostgreSQL's
-- heap-only tuples: the new row version goes on the same page and no index gets an entry).
-- An update can be HOT only if no column named by an index, in its key or its predicate,
-- changes; before this migration `last_seq`/`applied_seq` were in runs_unapplied_idx's
-- predicate and `updated_at` keyed runs_ended_idx, so every update of `runs` wrote an entry in
-- each of its (then 14) indexes. PostgreSQL only: the SQLite backend has no HOT updates.

-- Leave a fifth of each page free, so the new version of a row fits beside the old one.
ALTER TABLE runs SET (fillfactor = 80);

-- Two derived columns, kept by the database (no write names them), that change only when
-- what the indexes need changes: `unapplied` while the journal is past the checkpoint (flips
-- on a delivery to a suspended run and on its checkpoint, not on every entry of a running
-- one), `ended_at` once the run ended (`updated_at` then, the instant retention ages from).
-- Adding them rewrites the table once (with the fillfactor above).
ALTER TABLE runs
    ADD COLUMN unapplied BOOLEAN GENERATED ALWAYS AS (last_seq > applied_seq) STORED,
    ADD COLUMN ended_at BIGINT GENERATED ALWAYS AS (
        CASE WHEN status IN ('completed', 'failed', 'cancelled') THEN updated_at END) STORED;

DROP INDEX runs_unapplied_idx;
CREATE INDEX runs_unapplied_idx ON runs (created_at)
    WHERE unapplied AND status NOT IN ('completed', 'failed', 'cancelled');

DROP INDEX runs_ended_idx;
CREATE INDEX runs_ended_idx ON runs (ended_at)
    WHERE root_run IS NULL AND ended_at IS NOT NULL;

-- No query reads `runs` by (created_at, id) across main runs and threads: list_runs shows
-- main runs only (runs_main_created_idx), threads are listed by runs_root_idx.
DROP INDEX runs_created_idx;

-- A journal entry is only ever inserted by a batch holding its run's row locked (the run
-- exists until the batch commits), and retention deletes a run's entries before the run: the
-- foreign key's check on every inserted entry (a lookup and a row lock of the run) is spent
-- for nothing.
ALTER TABLE events DROP CONSTRAINT events_run_id_fkey;
