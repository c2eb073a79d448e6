-- What buyers see of an event beyond what gates cache: listed by the
-- ticketing API (active and upcoming events, newest first).
CREATE TABLE event_details (
    event_id    INTEGER PRIMARY KEY,
    description TEXT    NOT NULL,
    venue       TEXT    NOT NULL,
    starts_at   INTEGER NOT NULL,
    ends_at     INTEGER NOT NULL,
    capacity    INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX event_details_ends ON event_details (ends_at, starts_at);
