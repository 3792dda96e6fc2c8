-- Operator-side outages of programs: a channel's node lost its lease while it held a
-- program, from the node's last renewal until the program was on air again on the node
-- the channel moved to (open while it is not). The completion waives the charge of a
-- program that had one and tells the broadcaster.
CREATE TABLE outages (
    reservation_id  BIGINT NOT NULL REFERENCES reservations (id),
    node            TEXT NOT NULL,
    from_ms         BIGINT NOT NULL,
    to_ms           BIGINT,
    PRIMARY KEY (reservation_id, from_ms)
);
