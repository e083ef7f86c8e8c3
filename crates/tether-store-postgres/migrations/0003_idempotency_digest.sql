-- 0003_idempotency_digest: each idempotency key remembers the SHA-256 of the payload it was
-- first used with (64 lower-case hex digits, tether_store::payload_digest), so the same key
-- with another payload is refused (`idempotency_key_reused`) instead of answered as a retry.
-- Keys recorded before this migration have no digest (NULL): they match any payload, as
-- they did before. The same column as the SQLite backend's 0004_idempotency_digest.

ALTER TABLE idempotency ADD COLUMN payload_digest TEXT;
