-- 0009_hook_expiry: hooks that expire and tokens reserved after their hook (issue 21).
-- A hook may carry its expiry and how long its token stays reserved once it lets it go;
-- `hook_ends` keeps, per token, how its last hook ended while that matters: it expired
-- (payloads are refused as expired), or the token is reserved until `reserved_until`
-- (another run's hook with the token conflicts). The rules: tether_store::plan::hook_end.
-- No foreign key on `run_id`: a reservation may outlive its run (retention removes both).

ALTER TABLE hooks ADD COLUMN expires_at INTEGER;
ALTER TABLE hooks ADD COLUMN reserve_ms INTEGER;

CREATE TABLE hook_ends (
    token          TEXT    NOT NULL PRIMARY KEY,
    run_id         TEXT    NOT NULL,
    hook_cmd       INTEGER NOT NULL,
    expired        INTEGER NOT NULL,  -- 1: the hook expired
    ended_at       INTEGER NOT NULL,
    reserved_until INTEGER            -- no other run takes the token before this time
) STRICT;

CREATE INDEX hook_ends_run_idx ON hook_ends (run_id);
CREATE INDEX hook_ends_reserved_idx ON hook_ends (reserved_until) WHERE reserved_until IS NOT NULL;
