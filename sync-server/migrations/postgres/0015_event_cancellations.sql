-- An organizer's cancellation of an event, driven in the background and
-- resumed after a crash from what is recorded here: the event cancelled on
-- chain and for the gates, then every ticket revoked on chain in id order
-- (next_ticket: every id below it is done; revoking is idempotent, so a
-- batch cut off by a crash is simply read and done again), then the card
-- purchases refunded and their buyers mailed through the purchase worker's
-- refund path.
--
-- phase: cancelling -> revoking -> refunding -> done.
-- tickets_total: the event's minted counter once it was cancelled on chain
-- (no ticket can be minted after that); NULL until then.
CREATE TABLE event_cancellations (
    event_id        BIGINT PRIMARY KEY,
    phase           TEXT    NOT NULL,
    tickets_total   BIGINT,
    next_ticket     BIGINT NOT NULL DEFAULT 0,
    tickets_revoked BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT,
    lease_until     BIGINT NOT NULL DEFAULT 0,
    requested_at    BIGINT NOT NULL,
    finished_at     BIGINT
);
CREATE INDEX event_cancellations_phase ON event_cancellations (phase);
