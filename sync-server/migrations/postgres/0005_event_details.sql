-- What buyers see of an event beyond what gates cache: listed by the
-- ticketing API (active and upcoming events, newest first).
CREATE TABLE event_details (
    event_id    BIGINT PRIMARY KEY,
    description TEXT    NOT NULL,
    venue       TEXT    NOT NULL,
    starts_at   BIGINT NOT NULL,
    ends_at     BIGINT NOT NULL,
    capacity    BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX event_details_ends ON event_details (ends_at, starts_at);
