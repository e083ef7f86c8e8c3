-- 0006_signal_keys: idempotency keys of signals sent from outside (`WriteOp::Signal`), scoped
-- to their signal id: the SHA-256 of the payload the key was first used with
-- (tether_store::payload_digest) and the first answer, the run the signal was delivered to
-- (`delivered_to`), or NULL when it was kept for a later wait. Senders of one signal id queue
-- up on its advisory lock, so a key is looked up and recorded by one of them at a time.
--
-- A table of its own rather than rows of `idempotency`: a key there is scoped to a hook
-- token and names the run it answered with (`run_id NOT NULL REFERENCES runs`), while a
-- signal's first answer may be "kept" (no run at all), and signal ids and tokens are separate
-- names (a token and a signal id may be spelled alike and must not share keys).
--
-- By age for the idempotency window, by run for retention (a key goes with the run its
-- signal was delivered to, as resume keys do). Kept payloads (0005) get their age index too:
-- the window now forgets those no hook registered in time (tether_store::retention).
-- The same table as the SQLite backend's 0007_signal_keys.

CREATE TABLE signal_keys (
    signal_id      TEXT   NOT NULL,
    key            TEXT   NOT NULL,
    payload_digest TEXT   NOT NULL,
    delivered_to   TEXT,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (signal_id, key)
);
CREATE INDEX signal_keys_created_idx ON signal_keys (created_at);
CREATE INDEX signal_keys_delivered_idx ON signal_keys (delivered_to)
    WHERE delivered_to IS NOT NULL;
CREATE INDEX pending_payloads_created_idx ON pending_payloads (created_at);
