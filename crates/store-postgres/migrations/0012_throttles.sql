-- Failure counts of the throttles every center replica shares (sign-ins, sign-ups, viewer
-- passwords): a count, its first and its last failure, per key. Rows idle for a day are
-- pruned.
CREATE TABLE throttles (
    throttle_key    TEXT PRIMARY KEY,
    failures        BIGINT NOT NULL,
    first_ms        BIGINT NOT NULL,
    last_ms         BIGINT NOT NULL
);
CREATE INDEX throttles_last ON throttles (last_ms);
