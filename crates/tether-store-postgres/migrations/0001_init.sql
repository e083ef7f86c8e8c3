-- 0001_init: runs, their journals, the token -> hook index and idempotency keys.
-- The same tables, columns and meaning as the SQLite backend's 0001_init.
-- Times are milliseconds since the Unix epoch (BIGINT); JSON values are stored as TEXT.

CREATE TABLE runs (
    id          TEXT   NOT NULL PRIMARY KEY,
    workflow    TEXT   NOT NULL,
    status      TEXT   NOT NULL,  -- RunStatus::as_str()
    input       TEXT   NOT NULL,  -- JSON
    output      TEXT,             -- JSON, once completed
    error       TEXT,             -- JSON ErrorInfo, once failed / cancelled / blocked
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    last_seq    BIGINT NOT NULL,  -- seq of the last journal entry (entries are dense from 1)
    wake_at     BIGINT,           -- when the earliest pending timer is due
    applied_seq BIGINT NOT NULL DEFAULT 0, -- the live run's checkpoint: entries applied so far
    owner       TEXT,             -- node holding the run's lease
    lease_until BIGINT,           -- end of that lease
    epoch       BIGINT NOT NULL DEFAULT 0  -- incremented by every claim; writes are fenced by it
);

CREATE INDEX runs_owner_idx ON runs (owner) WHERE owner IS NOT NULL;

CREATE INDEX runs_status_idx ON runs (status, created_at);
CREATE INDEX runs_workflow_idx ON runs (workflow, created_at);
CREATE INDEX runs_created_idx ON runs (created_at, id);
-- Unfinished runs with a timer: the "due" part of runs_needing_work.
CREATE INDEX runs_wake_at_idx ON runs (wake_at)
    WHERE wake_at IS NOT NULL AND status NOT IN ('completed', 'failed', 'cancelled');
-- Unfinished runs with entries past their checkpoint (what a restart must rebuild).
CREATE INDEX runs_unapplied_idx ON runs (created_at)
    WHERE last_seq > applied_seq AND status NOT IN ('completed', 'failed', 'cancelled');

CREATE TABLE events (
    run_id  TEXT   NOT NULL REFERENCES runs (id),
    seq     BIGINT NOT NULL,
    at      BIGINT NOT NULL,
    kind    TEXT   NOT NULL,      -- EventBody::kind()
    body    TEXT   NOT NULL,      -- JSON EventBody (tagged with "type")
    PRIMARY KEY (run_id, seq)
);

-- Active hooks only: the primary key is what makes a token held by at most one hook.
CREATE TABLE hooks (
    token       TEXT   NOT NULL PRIMARY KEY,
    run_id      TEXT   NOT NULL REFERENCES runs (id),
    hook_cmd    BIGINT NOT NULL,
    kind        TEXT   NOT NULL,
    metadata    TEXT   NOT NULL,  -- JSON
    definition  TEXT,
    created_at  BIGINT NOT NULL
);

CREATE INDEX hooks_run_idx ON hooks (run_id, created_at, hook_cmd);

CREATE TABLE idempotency (
    token       TEXT   NOT NULL,
    key         TEXT   NOT NULL,
    run_id      TEXT   NOT NULL REFERENCES runs (id),
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (token, key)
);

