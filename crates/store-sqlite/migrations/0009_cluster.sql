-- Past one machine. Stream nodes known to the center: the hash of each node's credential,
-- where viewers and publishers reach it, its lease (renewed by heartbeats) and its last
-- report (live statistics, as JSON, read by every center replica).
CREATE TABLE nodes (
    name            TEXT PRIMARY KEY,
    credential_hash TEXT NOT NULL,
    play_url        TEXT NOT NULL DEFAULT '',
    ingest_url      TEXT NOT NULL DEFAULT '',
    lease_until_ms  BIGINT NOT NULL DEFAULT 0,
    report          TEXT NOT NULL DEFAULT '{}',
    created_at_ms   BIGINT NOT NULL
);

-- Which node serves a channel: claimed with one conditional statement, held by a lease;
-- the epoch grows each time the channel moves, so a stale node's writes are refused.
CREATE TABLE placements (
    channel_id      BIGINT PRIMARY KEY REFERENCES channels (id),
    node            TEXT NOT NULL REFERENCES nodes (name),
    epoch           BIGINT NOT NULL,
    lease_until_ms  BIGINT NOT NULL
);

-- Program totals a node handed over, stored before the node forgets them, until the
-- completion of the reservation takes them into program_stats.
CREATE TABLE node_totals (
    reservation_id  BIGINT PRIMARY KEY REFERENCES reservations (id),
    peak_viewers    BIGINT NOT NULL,
    unique_viewers  BIGINT NOT NULL,
    viewer_minutes  BIGINT NOT NULL,
    bytes_out       BIGINT NOT NULL,
    seconds_on_air  BIGINT NOT NULL,
    viewer_curve    TEXT NOT NULL
);

-- Scheduler work is leased per reservation, so that replicas never work on the same one
-- and a dead replica's work comes back when its lease runs out.
ALTER TABLE reservations ADD COLUMN work_lease_until_ms BIGINT NOT NULL DEFAULT 0;

-- Viewer seats of a channel, numbered 0 … capacity − 1: a seat is taken by one atomic
-- statement when a play grant is made (holder = the grant), held by a lease that the
-- serving node renews in batches, and freed when the viewer leaves or the lease ends.
CREATE TABLE seats (
    channel_id      BIGINT NOT NULL REFERENCES channels (id),
    seat_no         BIGINT NOT NULL,
    holder          TEXT,
    node            TEXT,
    lease_until_ms  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (channel_id, seat_no)
);
CREATE INDEX seats_holder ON seats (channel_id, holder);
CREATE INDEX seats_free ON seats (channel_id, lease_until_ms);
