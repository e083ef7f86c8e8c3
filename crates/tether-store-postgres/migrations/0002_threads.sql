-- 0002_threads: hook threads, shared run state and signals.
-- The same tables, columns and meaning as the SQLite backend's 0002_threads.

-- A hook thread is a run of its own, inside the namespace of `root_run`.
ALTER TABLE runs ADD COLUMN parent_run TEXT;
ALTER TABLE runs ADD COLUMN root_run TEXT;
CREATE INDEX runs_root_idx ON runs (root_run, created_at) WHERE root_run IS NOT NULL;
-- list_runs shows main runs only, newest first.
CREATE INDEX runs_main_created_idx ON runs (created_at, id) WHERE root_run IS NULL;

-- The shared state of each namespace.
CREATE TABLE run_state (
    root_run TEXT NOT NULL,
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,            -- JSON
    PRIMARY KEY (root_run, key)
);

-- Signals sent before anyone waited, kept (oldest first) until a wait takes them.
CREATE TABLE signals (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    signal_id  TEXT   NOT NULL,
    payload    TEXT   NOT NULL,        -- JSON
    created_at BIGINT NOT NULL
);
CREATE INDEX signals_id_idx ON signals (signal_id, id);

-- Waits registered before their signal came (oldest first).
CREATE TABLE signal_waits (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    signal_id  TEXT   NOT NULL,
    run_id     TEXT   NOT NULL REFERENCES runs (id),
    cmd        BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX signal_waits_id_idx ON signal_waits (signal_id, id);
CREATE INDEX signal_waits_run_idx ON signal_waits (run_id);
