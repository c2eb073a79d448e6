-- What an organizer decided about a conflict (a ticket admitted again while
-- its holder was inside): one row per conflicting scan, replaced when they
-- decide again. The scans themselves are never changed.
--
-- outcome: 'same_person' (scanned twice, nothing wrong) | 'ticket_shared'
-- (two people on one ticket) | 'other' (see the note).
CREATE TABLE conflict_resolutions (
    scan_id        TEXT    PRIMARY KEY,
    event_id       INTEGER NOT NULL,
    conflicts_with TEXT    NOT NULL,
    outcome        TEXT    NOT NULL,
    note           TEXT    NOT NULL,
    resolved_by    TEXT    NOT NULL,
    resolved_at    INTEGER NOT NULL
);
CREATE INDEX conflict_resolutions_event ON conflict_resolutions (event_id);
