-- Events the server created on chain, with the validator key that records
-- their entries, and the replay worker's per-event lease; transactions the
-- replay worker sent, with their fee; and what each scan's replay is waiting on.

CREATE TABLE event_chain (
    event_id          INTEGER PRIMARY KEY,     -- written before the event is published
    address           TEXT    NOT NULL,   -- the event account (base58)
    organizer         TEXT    NOT NULL,
    validator_public  TEXT    NOT NULL,
    -- The validator's 32-byte secret seed, hex. It can only record entries
    -- for this event; the organizer can remove it on chain at any time.
    validator_secret  TEXT    NOT NULL,
    lease_holder      TEXT,
    lease_until       INTEGER
);

CREATE TABLE replay_transactions (
    signature    TEXT    PRIMARY KEY,
    event_id     INTEGER NOT NULL,
    blockhash    TEXT    NOT NULL,
    entries      INTEGER NOT NULL,
    state        TEXT    NOT NULL,   -- 'submitted' | 'confirmed' | 'failed' | 'expired'
    fee_lamports INTEGER,
    error        TEXT,
    submitted_at INTEGER NOT NULL,
    settled_at   INTEGER
);
CREATE INDEX replay_transactions_event ON replay_transactions (event_id, state);

-- replay_state gains 'superseded' (the chain already holds a later scan of
-- the ticket, so this one cannot be applied) besides none, ingested,
-- submitted, confirmed and failed.
ALTER TABLE scans ADD COLUMN replay_blockhash TEXT;
ALTER TABLE scans ADD COLUMN replay_updated_at INTEGER;

-- Where each scanned holder is, from all gates' scans in scan-time order;
-- sent to the gates so a holder admitted at one gate is inside at all.
CREATE TABLE ticket_presence (
    event_id  INTEGER NOT NULL,
    ticket_id INTEGER NOT NULL,
    inside    INTEGER NOT NULL,   -- 1 inside, 0 outside
    since     INTEGER NOT NULL,   -- Unix seconds of the scan that put them there
    gate      INTEGER NOT NULL,
    entries   INTEGER NOT NULL,
    PRIMARY KEY (event_id, ticket_id)
);
