-- A login nonce is bound to the client address that asked for it: it logs
-- in from there only, and the few pending nonces kept per wallet are kept
-- per wallet and client, so nobody elsewhere can push them out. Nonces
-- from before this change (client '') expire unused within minutes.
ALTER TABLE login_nonces ADD COLUMN client TEXT NOT NULL DEFAULT '';
CREATE INDEX login_nonces_wallet_client ON login_nonces (wallet, client, created_at);
