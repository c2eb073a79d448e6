-- What settling an event after it moved on chain, as the chain reported it
-- when it was done: the proceeds withdrawn to the treasury, the ticket
-- accounts closed and the event account closed, with the lamports each
-- returned. The chain forgets a closed account, so this is where an
-- organizer reads, later, what closing it gave back. Amounts add up over
-- repeated calls (closing the tickets again closes what was left).
CREATE TABLE event_settlements (
    event_id             BIGINT PRIMARY KEY,
    withdrawn_lamports   BIGINT NOT NULL DEFAULT 0,
    treasury             TEXT,
    withdrawn_at         BIGINT,
    tickets_closed       BIGINT NOT NULL DEFAULT 0,
    ticket_rent_lamports BIGINT NOT NULL DEFAULT 0,
    tickets_closed_at    BIGINT,
    event_rent_lamports  BIGINT,
    proceeds_at_close    BIGINT,
    event_closed_at      BIGINT
);
