-- A generated bootstrap password must be changed at first use.
-- A session opened with such a password may only change it.
ALTER TABLE credentials ADD COLUMN must_change INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0;

-- Password resets by e-mail. The request's append puts a row in the
-- outbox (in its transaction); the mailer sends it, retrying until the
-- relay takes it, and only then keeps the code, as a SHA-256 of 256 random
-- bits: the newest code of a user is the only valid one.
CREATE TABLE password_reset_outbox (
    position        BIGINT PRIMARY KEY,      -- of the UserPasswordResetRequested event
    user_id         TEXT   NOT NULL,
    expires_at      BIGINT NOT NULL,         -- epoch milliseconds
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX password_reset_outbox_by_user ON password_reset_outbox (user_id);

CREATE TABLE password_resets (
    user_id    TEXT   PRIMARY KEY,
    code_hash  TEXT   NOT NULL UNIQUE,
    expires_at BIGINT NOT NULL               -- epoch milliseconds
);
