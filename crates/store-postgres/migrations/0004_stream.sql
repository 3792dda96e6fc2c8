-- The stream node finds a reservation by its key (the RTMP stream key) on every publish.
CREATE INDEX reservations_key_hash ON reservations (key_hash);

-- What the stream node measured of a program, kept when the reservation completes.
CREATE TABLE program_stats (
    reservation_id BIGINT PRIMARY KEY REFERENCES reservations (id),
    peak_viewers BIGINT NOT NULL,
    unique_viewers BIGINT NOT NULL,
    viewer_minutes BIGINT NOT NULL,
    bytes_out BIGINT NOT NULL,
    seconds_on_air BIGINT NOT NULL
);
