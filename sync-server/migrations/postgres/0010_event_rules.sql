-- The organizer's check-in rules beyond the first ones (re-entry, unknown
-- tickets, holder proof): which gates admit which tier, and how long after
-- the event's end gates still admit latecomers. The end itself is here too,
-- as gates apply it (events made by the admin API have no event_details).
ALTER TABLE events ADD COLUMN ends_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN end_grace_secs BIGINT NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN tier_gates TEXT NOT NULL DEFAULT '[]';  -- JSON array of {tier, gates}
UPDATE events SET ends_at = COALESCE(
    (SELECT d.ends_at FROM event_details d WHERE d.event_id = events.event_id),
    doors_close);

-- Wallets an event's organizer lets validate (scan) that event's tickets.
CREATE TABLE event_validators (
    event_id    BIGINT NOT NULL,
    wallet      TEXT    NOT NULL,      -- base58
    assigned_at BIGINT NOT NULL,
    PRIMARY KEY (event_id, wallet)
);
CREATE INDEX event_validators_wallet ON event_validators (wallet);

-- Admissions an offline gate or handheld made that the server, with its
-- fresher data, would have refused (revoked, frozen, stale generation,
-- unknown ticket, outside the event's time, wrong tier or gate). Kept next
-- to conflicts for the organizer; the scan itself stays as it was.
CREATE TABLE incidents (
    scan_id       TEXT    PRIMARY KEY,
    event_id      BIGINT NOT NULL,
    ticket_id     BIGINT,
    gate          BIGINT NOT NULL,
    reason        TEXT    NOT NULL,    -- the refusal's stable code (revoked, event_ended, ...)
    scanned_at_ms BIGINT NOT NULL,
    recorded_at   BIGINT NOT NULL
);
CREATE INDEX incidents_event ON incidents (event_id, scanned_at_ms);
