-- Entry records became folds of a ticket's scans (shared::presence::fold):
-- an exit of someone who was not inside moves nobody and is flagged here as
-- an incident for the organizer. Set by the same fold that sets conflict_of.
ALTER TABLE scans ADD COLUMN unmatched_exit INTEGER NOT NULL DEFAULT 0;
