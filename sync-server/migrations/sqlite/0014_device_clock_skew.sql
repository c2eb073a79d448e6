-- How far each gate box's clock was from the server's on its last signed
-- request (its timestamp minus the server's time, in seconds; positive: the
-- box is ahead). Doors-open, end-time and holder-proof windows are decided
-- on the box's clock, so organizers need to see a box drifting.
ALTER TABLE devices ADD COLUMN clock_skew_secs BIGINT;
