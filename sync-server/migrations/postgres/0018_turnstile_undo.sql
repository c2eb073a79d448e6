-- The turnstile undo window (0 = off): for this many seconds after an
-- admission a gate may void it (the holder did not pass), so the ticket can
-- be scanned again.
ALTER TABLE events ADD COLUMN undo_window_secs BIGINT NOT NULL DEFAULT 0;

-- An undo travels as a scan record of its own (outcome 'admission_undone')
-- naming the admission it voids (voids). The voided admission keeps its row,
-- marked with the undo (voided_by): it counts in no figure, moves nobody in
-- the presence fold, and never goes on chain (replay_state 'voided'; one
-- already on its way is recorded as an incident instead).
ALTER TABLE scans ADD COLUMN voids TEXT;
ALTER TABLE scans ADD COLUMN voided_by TEXT;
