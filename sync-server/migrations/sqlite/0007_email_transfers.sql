-- Tickets sent to an email address: the holder opens the transfer on chain
-- with a one-time claim key whose secret goes only into the claim mail;
-- whoever brings the secret back claims the ticket to their wallet.
--
-- claim_secret is kept only until the mail is handed to the relay (so a
-- failed mail can be resent), then set to NULL: after that the server can
-- no longer claim the ticket for anyone.

CREATE TABLE email_transfers (
    claim_key    TEXT    PRIMARY KEY,  -- base58 public key of the one-time claim keypair
    event_id     INTEGER NOT NULL REFERENCES events (event_id),
    ticket_id    INTEGER NOT NULL,
    sender       TEXT    NOT NULL,     -- base58 wallet of the holder who opened it
    email        TEXT    NOT NULL,
    email_hash   TEXT    NOT NULL,     -- hex sha256 of the normalized address, as on chain
    claim_secret TEXT,                 -- until the claim mail is sent
    expires_at   INTEGER NOT NULL,     -- on the chain's clock
    status       TEXT    NOT NULL,     -- 'prepared' | 'open' | 'claimed' | 'cancelled' | 'expired'
    recipient    TEXT,                 -- base58 wallet that claimed it
    mail_sent_at INTEGER,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX email_transfers_ticket ON email_transfers (event_id, ticket_id, status);
CREATE INDEX email_transfers_due ON email_transfers (status, expires_at);
-- The chain allows one open email transfer per ticket; so does the table.
CREATE UNIQUE INDEX email_transfers_one_open ON email_transfers (event_id, ticket_id)
    WHERE status = 'open';
