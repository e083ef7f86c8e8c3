-- 0003_unapplied_index: the same partial index as 0001's runs_unapplied_idx, with the status
-- test written as a chain of `<>` instead of `NOT IN (...)`. SQLite evaluates a partial
-- index's predicate on every UPDATE of the row, and a `NOT IN` list of three constants is
-- coded with an ephemeral table (opened, filled and closed twice per UPDATE): that was the
-- largest single cost of appending to a journal. Queries that want this index must spell the
-- predicate exactly so (see read.rs, runs_needing_work).

DROP INDEX runs_unapplied_idx;
CREATE INDEX runs_unapplied_idx ON runs (created_at)
    WHERE last_seq > applied_seq
      AND status <> 'completed' AND status <> 'failed' AND status <> 'cancelled';
