-- Organizer mints as durable intents: the request and its tickets are
-- written, together with taking their seats, before anything goes to chain,
-- so a crash at any point is settled from here on restart.
--
-- state: minting (seats taken; tickets being minted) -> completed; or
-- minting -> voiding (the chain refused part way: what landed is being
-- revoked, the seats of the rest were released) -> failed.
-- caller: 'admin' or the organizer's wallet; an Idempotency-Key is unique
-- per caller, and body_hash is what it was first used for.
CREATE TABLE mint_requests (
    request_id      TEXT    PRIMARY KEY,
    event_id        BIGINT  NOT NULL,
    caller          TEXT    NOT NULL,
    kind            TEXT    NOT NULL,  -- single | batch | admin: how it was asked
    idempotency_key TEXT,
    body_hash       TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    error           TEXT,
    lease_holder    TEXT,
    lease_until     BIGINT  NOT NULL DEFAULT 0,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
CREATE UNIQUE INDEX mint_requests_key ON mint_requests (caller, idempotency_key);
CREATE INDEX mint_requests_state ON mint_requests (state, lease_until);

-- One row per ticket asked for. state: pending (no transaction) -> sent
-- (ticket_id and signature recorded before the transaction was sent) ->
-- landed; sent -> pending again when the chain settled it as never landed;
-- pending -> released (seat given back); landed -> revoked.
CREATE TABLE mint_items (
    request_id TEXT    NOT NULL REFERENCES mint_requests (request_id),
    item_no    BIGINT  NOT NULL,
    recipient  TEXT    NOT NULL,
    tier       BIGINT  NOT NULL,
    state      TEXT    NOT NULL,
    ticket_id  BIGINT,
    signature  TEXT,
    PRIMARY KEY (request_id, item_no)
);
CREATE INDEX mint_items_signature ON mint_items (signature);

-- Each signed mint transaction, recorded before it is sent, so it can be
-- settled by its signature (or sent again while its blockhash is valid).
-- state: sent -> landed | gone.
CREATE TABLE mint_transactions (
    signature    TEXT    PRIMARY KEY,
    request_id   TEXT    NOT NULL REFERENCES mint_requests (request_id),
    event_id     BIGINT  NOT NULL,
    first_ticket BIGINT  NOT NULL,
    transaction_b64 TEXT NOT NULL,
    state        TEXT    NOT NULL,
    error        TEXT,
    created_at   BIGINT  NOT NULL
);
CREATE INDEX mint_transactions_request ON mint_transactions (request_id);
