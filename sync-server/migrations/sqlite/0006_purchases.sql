-- Purchases: inventory held for buyers while they pay, and each purchase
-- from reservation to minted ticket.
--
-- inventory has one row per (event, tier) and one with tier = -1 for the
-- whole event's capacity. taken counts seats held by pending reservations
-- plus seats sold; a seat is taken by one conditional UPDATE
-- (taken + n <= supply), so concurrent buyers can never oversell.
CREATE TABLE inventory (
    event_id    INTEGER NOT NULL,
    tier        INTEGER NOT NULL,
    supply      INTEGER NOT NULL,
    taken       INTEGER NOT NULL,
    -- Card price in the currency's smallest unit; NULL: not sold by card.
    card_price  INTEGER,
    currency    TEXT,
    PRIMARY KEY (event_id, tier)
);

-- status: pending (seat held, waiting for payment) -> paid (card paid,
-- ticket not yet minted) -> minting (mint transaction signed and recorded
-- before it is sent) -> fulfilled; or pending -> expired | failed (seat
-- released); or refund_due (paid but no seat left: an organizer refunds).
CREATE TABLE purchases (
    purchase_id    TEXT    PRIMARY KEY,
    event_id       INTEGER NOT NULL,
    tier           INTEGER NOT NULL,
    buyer          TEXT    NOT NULL,
    email          TEXT,
    method         TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    expires_at     INTEGER NOT NULL,
    holds_seat     INTEGER NOT NULL,
    payment_intent TEXT    UNIQUE,
    amount         INTEGER NOT NULL,
    currency       TEXT    NOT NULL,
    ticket_id      INTEGER,
    mint_tx        TEXT,
    mint_signature TEXT,
    lease_until    INTEGER NOT NULL DEFAULT 0,
    attempts       INTEGER NOT NULL DEFAULT 0,
    error          TEXT,
    mail_status    TEXT    NOT NULL DEFAULT 'none',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX purchases_status ON purchases (status, expires_at);
CREATE INDEX purchases_buyer ON purchases (buyer, created_at);
