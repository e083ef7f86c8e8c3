-- 0005_pending_payloads: payloads sent to a token no hook holds yet (`ResumeOrKeep`), kept in
-- order (`id`) until the first hook registered with the token takes them. A payload's
-- idempotency key is unique per token while it is kept; once delivered it moves to
-- `idempotency` with the run that took it.

CREATE TABLE pending_payloads (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    token           TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    idempotency_key TEXT,
    payload_digest  TEXT,
    created_at      INTEGER NOT NULL
) STRICT;

CREATE INDEX pending_payloads_token ON pending_payloads (token, id);
CREATE UNIQUE INDEX pending_payloads_key ON pending_payloads (token, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
