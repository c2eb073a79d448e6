-- A purchase's owed mail is sent by whichever task gets there first (the
-- mint that fulfilled it, or the purchase worker's round): the sender first
-- takes this lease, so two of them never send the same mail. A sender that
-- dies mid-send leaves the lease to run out, and the mail is sent then.
ALTER TABLE purchases ADD COLUMN mail_lease_until INTEGER;
