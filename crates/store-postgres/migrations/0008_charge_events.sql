-- What happened to a charge outside the reservation's lifecycle (an operator waiving it
-- after the service failed during the program): who, when, from what, why.
CREATE TABLE charge_events (
    reservation_id  BIGINT NOT NULL REFERENCES charges (reservation_id),
    at_ms           BIGINT NOT NULL,
    actor           TEXT NOT NULL,
    from_state      TEXT NOT NULL,
    to_state        TEXT NOT NULL,
    reason          TEXT NOT NULL
);
CREATE INDEX charge_events_reservation ON charge_events (reservation_id, at_ms);
