-- Where each projector stands in the log: advanced in the same transaction
-- as the projector's rows, so a batch is applied exactly once.
CREATE TABLE projection_checkpoints (
    name     TEXT    PRIMARY KEY,
    position BIGINT  NOT NULL
);
