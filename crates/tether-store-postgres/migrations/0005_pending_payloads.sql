-- 0004_pending_payloads: payloads sent to a token no hook holds yet (`ResumeOrKeep`), kept in
-- order (`id`; writers of one token queue up on an advisory lock, so `id` order is commit
-- order) until the first hook registered with the token takes them. A payload's idempotency
-- key is unique per token while it is kept; once delivered it moves to `idempotency` with the
-- run that took it. The same table as the SQLite backend's 0005_pending_payloads.

CREATE TABLE pending_payloads (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token           TEXT   NOT NULL,
    payload         TEXT   NOT NULL,        -- JSON
    idempotency_key TEXT,
    payload_digest  TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX pending_payloads_token_idx ON pending_payloads (token, id);
CREATE UNIQUE INDEX pending_payloads_key_idx ON pending_payloads (token, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
