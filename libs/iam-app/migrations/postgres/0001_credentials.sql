-- Secrets beside the log, never in it: the log is immutable and forever,
-- so its events record only that a password was set.
CREATE TABLE credentials (
    user_id       TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL              -- Argon2id PHC string
);

-- Login sessions: only a SHA-256 of the token is kept.
CREATE TABLE sessions (
    token_hash TEXT   PRIMARY KEY,
    user_id    TEXT   NOT NULL,
    expires_at BIGINT NOT NULL               -- epoch milliseconds
);
CREATE INDEX sessions_by_user ON sessions (user_id);
