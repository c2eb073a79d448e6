-- Card payments: every provider webhook event handled, so a redelivery
-- (providers deliver at least once) changes nothing.

CREATE TABLE processed_webhooks (
    event_id     TEXT    PRIMARY KEY,  -- the provider's event id (evt_...)
    event_type   TEXT    NOT NULL,
    processed_at INTEGER NOT NULL
);
