-- Programs the operator features ("pickup"), newest first.
CREATE TABLE pickups (
    reservation_id BIGINT PRIMARY KEY REFERENCES reservations (id),
    picked_at_ms BIGINT NOT NULL
);
