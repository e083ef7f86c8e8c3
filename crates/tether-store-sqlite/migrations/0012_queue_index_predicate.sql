-- 0012_queue_index_predicate: 0011's runs_queue_open_idx with its status test written as a
-- chain of `<>` instead of `NOT IN (...)`, as 0003 did for runs_unapplied_idx. SQLite
-- evaluates a partial index's predicate on every UPDATE that names a column of the index or
-- of its predicate (`status` at every ending), and codes a `NOT IN` list of three constants
-- with an ephemeral table built and freed each time: after 0011 that was most of what a run's
-- ending cost more (callgrind, BENCHMARKS.md). Queries that want this index spell the
-- predicate exactly so (read.rs queue_depths, write.rs queue_load).

DROP INDEX runs_queue_open_idx;
CREATE INDEX runs_queue_open_idx ON runs (queue, admitted_at)
    WHERE status <> 'completed' AND status <> 'failed' AND status <> 'cancelled';
