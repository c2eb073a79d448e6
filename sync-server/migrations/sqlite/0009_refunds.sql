-- The provider's refund of a purchase that was paid but could not get a
-- ticket (refund_due -> refunded): its id, so a retry never refunds twice
-- and support can find it.
ALTER TABLE purchases ADD COLUMN refund_id TEXT;
