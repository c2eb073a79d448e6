-- Gate sync core: events and tickets as gates cache them, the change feed
-- deltas are cut from, gates and their devices, and ingested scans.
-- Integers are 64-bit everywhere; times are Unix seconds unless named *_ms.

CREATE TABLE events (
    event_id        BIGINT PRIMARY KEY,
    organizer       TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    doors_open      BIGINT NOT NULL,
    doors_close     BIGINT NOT NULL,
    issuer_keys     TEXT    NOT NULL,  -- JSON array of base58 keys
    tiers           TEXT    NOT NULL,  -- JSON array of {index, name}
    reentry         TEXT    NOT NULL,  -- JSON ReentryPolicy
    unknown_tickets TEXT    NOT NULL,
    holder_proof    TEXT    NOT NULL   -- JSON HolderProofPolicy
);

CREATE TABLE tickets (
    event_id   BIGINT NOT NULL REFERENCES events (event_id),
    ticket_id  BIGINT NOT NULL,
    tier       BIGINT NOT NULL,
    owner      TEXT    NOT NULL,
    generation BIGINT NOT NULL,
    status     TEXT    NOT NULL,
    PRIMARY KEY (event_id, ticket_id)
);

-- Every change a gate must hear about; a gate's cursor is a seq here.
CREATE TABLE cache_changes (
    seq        BIGSERIAL PRIMARY KEY,
    event_id   BIGINT NOT NULL,
    kind       TEXT    NOT NULL,       -- 'event' | 'ticket'
    ticket_id  BIGINT,
    changed_at BIGINT NOT NULL
);
CREATE INDEX cache_changes_event ON cache_changes (event_id, seq);

CREATE TABLE gates (
    event_id      BIGINT NOT NULL REFERENCES events (event_id),
    number        BIGINT NOT NULL,
    name          TEXT    NOT NULL,
    direction     TEXT    NOT NULL,
    allowed_tiers TEXT,                -- JSON array, NULL for all
    PRIMARY KEY (event_id, number),
    UNIQUE (event_id, name)
);

CREATE TABLE enrol_tokens (
    token_hash  TEXT    PRIMARY KEY,   -- sha256 of the token, hex; the token itself is never stored
    event_id    BIGINT NOT NULL,
    gate_number BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    device_id   TEXT
);

CREATE TABLE devices (
    device_id     TEXT    PRIMARY KEY,
    public_key    TEXT    NOT NULL UNIQUE,
    event_id      BIGINT NOT NULL,
    gate_number   BIGINT NOT NULL,
    agent_version TEXT    NOT NULL,
    hostname      TEXT,
    enrolled_at   BIGINT NOT NULL,
    revoked_at    BIGINT,
    last_seen_at  BIGINT,
    last_cursor   BIGINT NOT NULL DEFAULT 0,
    backlog       BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE device_nonces (
    device_id TEXT    NOT NULL,
    nonce     TEXT    NOT NULL,
    seen_at   BIGINT NOT NULL,
    PRIMARY KEY (device_id, nonce)
);
CREATE INDEX device_nonces_seen ON device_nonces (seen_at);

CREATE TABLE scans (
    scan_id       TEXT    PRIMARY KEY,
    device_id     TEXT    NOT NULL,
    event_id      BIGINT NOT NULL,
    gate          BIGINT NOT NULL,
    direction     TEXT    NOT NULL,
    scanned_at_ms BIGINT NOT NULL,
    source        TEXT    NOT NULL,
    ticket_id     BIGINT,
    generation    BIGINT,
    tier          BIGINT,
    outcome       TEXT    NOT NULL,
    opened        BIGINT NOT NULL,
    received_at   BIGINT NOT NULL,
    conflict_of   TEXT,               -- earlier admission this one conflicts with
    replay_state  TEXT    NOT NULL,   -- 'none' | 'ingested' | 'submitted' | 'confirmed' | 'failed'
    replay_signature TEXT,
    replay_error  TEXT,
    replay_claimed_until BIGINT,
    replay_attempts BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX scans_ticket ON scans (event_id, ticket_id, scanned_at_ms);
CREATE INDEX scans_replay ON scans (replay_state, event_id);
CREATE INDEX scans_gate ON scans (event_id, gate);
