-- Wallet login for the ticketing API: one-time login nonces and the roles
-- organizers grant. A wallet without a row in wallet_roles is a holder.

CREATE TABLE login_nonces (
    nonce      TEXT    PRIMARY KEY,
    wallet     TEXT    NOT NULL,       -- base58
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    used_at    BIGINT                  -- set once, by the login that spends it
);
CREATE INDEX login_nonces_wallet ON login_nonces (wallet, created_at);
CREATE INDEX login_nonces_expiry ON login_nonces (expires_at);

CREATE TABLE wallet_roles (
    wallet     TEXT    PRIMARY KEY,    -- base58
    role       TEXT    NOT NULL,       -- 'organizer' | 'validator' | 'holder'
    granted_at BIGINT  NOT NULL
);
