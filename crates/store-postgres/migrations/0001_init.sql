-- slotcast schema, PostgreSQL. Instants are UTC milliseconds since the Unix epoch.
CREATE TABLE members (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email           TEXT NOT NULL UNIQUE,
    password_hash   TEXT NOT NULL,
    display_name    TEXT NOT NULL,
    tier            TEXT NOT NULL CHECK (tier IN ('general', 'premium')),
    role            TEXT NOT NULL CHECK (role IN ('member', 'operator')),
    created_at_ms   BIGINT NOT NULL
);

-- Brand, last four digits and expiry only: never a full card number.
CREATE TABLE payment_methods (
    member_id       BIGINT PRIMARY KEY REFERENCES members (id),
    brand           TEXT NOT NULL,
    last4           TEXT NOT NULL CHECK (length(last4) = 4),
    exp_month       BIGINT NOT NULL CHECK (exp_month BETWEEN 1 AND 12),
    exp_year        BIGINT NOT NULL,
    holder          TEXT NOT NULL,
    created_at_ms   BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash      BYTEA PRIMARY KEY,
    member_id       BIGINT NOT NULL REFERENCES members (id),
    created_at_ms   BIGINT NOT NULL,
    expires_at_ms   BIGINT NOT NULL,
    revoked_at_ms   BIGINT
);

CREATE TABLE channels (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    capacity        BIGINT NOT NULL CHECK (capacity > 0),
    bitrate_kbps    BIGINT NOT NULL CHECK (bitrate_kbps > 0),
    tariff_minor    BIGINT NOT NULL CHECK (tariff_minor >= 0),
    currency        TEXT NOT NULL,
    stream_node     TEXT NOT NULL
);

CREATE TABLE reservations (
    id                      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id               BIGINT NOT NULL REFERENCES members (id),
    channel_id              BIGINT NOT NULL REFERENCES channels (id),
    slots                   BIGINT NOT NULL CHECK (slots > 0),
    status                  TEXT NOT NULL CHECK (status IN ('awaiting_confirmation', 'confirmed', 'live', 'completed', 'cancelled', 'expired')),
    start_ms                BIGINT NOT NULL,
    end_ms                  BIGINT NOT NULL,
    confirm_by_ms           BIGINT NOT NULL,
    confirm_reminder_at_ms  BIGINT,
    connect_from_ms         BIGINT NOT NULL,
    connect_to_ms           BIGINT NOT NULL,
    start_reminder_at_ms    BIGINT NOT NULL,
    extension_offer_at_ms   BIGINT NOT NULL,
    visibility              TEXT NOT NULL CHECK (visibility IN ('public', 'password', 'secret')),
    title                   TEXT NOT NULL,
    genre                   TEXT,
    outline                 TEXT,
    detail                  TEXT,
    show_email              BOOLEAN NOT NULL,
    web_url                 TEXT,
    viewer_password         TEXT,
    invitees                TEXT NOT NULL,
    key_hash                TEXT NOT NULL UNIQUE,
    slug                    TEXT NOT NULL UNIQUE,
    fee_minor               BIGINT NOT NULL,
    currency                TEXT NOT NULL,
    invited_at_acceptance   BOOLEAN NOT NULL,
    created_at_ms           BIGINT NOT NULL,
    updated_at_ms           BIGINT NOT NULL
);
CREATE INDEX reservations_member ON reservations (member_id, start_ms);
CREATE INDEX reservations_start ON reservations (start_ms);
CREATE INDEX reservations_status_confirm_by ON reservations (status, confirm_by_ms);
CREATE INDEX reservations_status_connect_to ON reservations (status, connect_to_ms);

-- One row per held slot: the primary key is what makes double booking impossible.
CREATE TABLE slot_claims (
    channel_id      BIGINT NOT NULL REFERENCES channels (id),
    slot_ms         BIGINT NOT NULL,
    reservation_id  BIGINT NOT NULL REFERENCES reservations (id),
    member_id       BIGINT NOT NULL,
    month           TEXT NOT NULL,
    PRIMARY KEY (channel_id, slot_ms)
);
CREATE INDEX slot_claims_reservation ON slot_claims (reservation_id);

-- Slots held per member per month (service time zone); the conditional update on this
-- row is what keeps concurrent bookings of one member within the quota.
CREATE TABLE quota_usage (
    member_id       BIGINT NOT NULL REFERENCES members (id),
    month           TEXT NOT NULL,
    used            BIGINT NOT NULL CHECK (used >= 0),
    PRIMARY KEY (member_id, month)
);

CREATE TABLE transitions (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reservation_id  BIGINT NOT NULL REFERENCES reservations (id),
    from_status     TEXT,
    to_status       TEXT NOT NULL,
    at_ms           BIGINT NOT NULL,
    actor           TEXT NOT NULL,
    reason          TEXT NOT NULL
);
CREATE INDEX transitions_reservation ON transitions (reservation_id, id);

CREATE TABLE charges (
    reservation_id  BIGINT PRIMARY KEY REFERENCES reservations (id),
    member_id       BIGINT NOT NULL REFERENCES members (id),
    amount_minor    BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'final', 'waived', 'voided')),
    created_at_ms   BIGINT NOT NULL,
    updated_at_ms   BIGINT NOT NULL
);
CREATE INDEX charges_member ON charges (member_id, created_at_ms);

CREATE TABLE outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dedupe_key      TEXT NOT NULL UNIQUE,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body_text       TEXT NOT NULL,
    body_html       TEXT,
    ics             TEXT,
    reservation_id  BIGINT REFERENCES reservations (id),
    state           TEXT NOT NULL CHECK (state IN ('queued', 'sent', 'failed')),
    attempts        BIGINT NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    last_error      TEXT,
    created_at_ms   BIGINT NOT NULL,
    sent_at_ms      BIGINT
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_ms);
