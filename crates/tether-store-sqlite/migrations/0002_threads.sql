-- 0002_threads: hook threads, shared run state and signals (the HotMesh model).

-- A hook thread is a run of its own, inside the namespace of `root_run`.
ALTER TABLE runs ADD COLUMN parent_run TEXT;
ALTER TABLE runs ADD COLUMN root_run TEXT;
CREATE INDEX runs_root_idx ON runs (root_run, created_at) WHERE root_run IS NOT NULL;

-- The shared state of each namespace.
CREATE TABLE run_state (
    root_run TEXT NOT NULL,
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,            -- JSON
    PRIMARY KEY (root_run, key)
) WITHOUT ROWID, STRICT;

-- Signals sent before anyone waited, kept (oldest first) until a wait takes them.
CREATE TABLE signals (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    signal_id  TEXT    NOT NULL,
    payload    TEXT    NOT NULL,       -- JSON
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX signals_id_idx ON signals (signal_id, id);

-- Waits registered before their signal came (oldest first).
CREATE TABLE signal_waits (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    signal_id  TEXT    NOT NULL,
    run_id     TEXT    NOT NULL REFERENCES runs (id),
    cmd        INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX signal_waits_id_idx ON signal_waits (signal_id, id);
