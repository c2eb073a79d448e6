//! `[api]`: the ticketing API's login, rate limits, purchases and the
//! address buyers reach.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Keys in Redis start with this, so the budgets can share a Redis with
/// other data.
pub const REDIS_KEY_PREFIX: &str = "nft-gate:ratelimit:";

/// `[api]`: wallet login and rate limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSettings {
    /// HMAC secret that signs session tokens (HS256). At least 32 bytes;
    /// empty disables wallet login. Prefer `SYNC_API__JWT_SECRET`.
    pub jwt_secret: String,
    /// Lifetime of a session token.
    pub token_ttl_secs: u32,
    /// Lifetime of a login nonce: how long a wallet has to sign it.
    pub nonce_ttl_secs: u32,
    /// `redis://HOST:PORT/DB` to share rate-limit budgets between server
    /// instances; empty keeps them in this process.
    pub redis_url: String,
    /// Prefix of the rate-limit keys in Redis.
    pub redis_key_prefix: String,
    pub rate_limits: RateLimitSettings,
    /// A request header naming the client's address, set by a reverse
    /// proxy in front of this server (`x-forwarded-for`: the last address
    /// in it, the one the proxy added, counts). Empty: the address the
    /// connection comes from. Set it only when clients cannot reach the
    /// server except through that proxy, or they could claim any address.
    pub client_ip_header: String,
    /// The address buyers and wallets reach this server at. Each ticket
    /// NFT's metadata URI is `{public_url}/m/{event}/{ticket}`, fixed at
    /// mint, so set it before minting (at most 60 characters).
    pub public_url: String,
    /// How long a seat is held for a buyer who is paying (the seed's
    /// purchase flow holds it 5 minutes).
    pub reservation_secs: u32,
    /// How long one server instance owns a paid purchase while it mints
    /// it; after a crash another instance (or the restarted one) takes it
    /// over once this has passed.
    pub purchase_lease_secs: u32,
    /// How long one server instance owns an organizer mint request while it
    /// mints it (renewed after each transaction); after a crash another
    /// instance (or the restarted one) finishes the request once this has
    /// passed.
    pub mint_lease_secs: u32,
    /// Card price currency of events created through the API (ISO 4217,
    /// lower case).
    pub currency: String,
}

/// `[api.rate_limits]`: one budget per kind of request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    /// Ticket mints, per wallet.
    pub mint: Quota,
    /// Online ticket validations, per validator wallet and gate.
    pub validate: Quota,
    /// Login nonce requests, per client address (per /64 for IPv6).
    pub nonce: Quota,
}

/// `requests` per `period_secs`, allowed in a burst and then spread evenly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub requests: u32,
    pub period_secs: u32,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            jwt_secret: String::new(),
            token_ttl_secs: 24 * 3600,
            nonce_ttl_secs: 5 * 60,
            redis_url: String::new(),
            redis_key_prefix: REDIS_KEY_PREFIX.to_owned(),
            rate_limits: RateLimitSettings::default(),
            client_ip_header: String::new(),
            public_url: "http://127.0.0.1:8080".into(),
            reservation_secs: 300,
            purchase_lease_secs: 30,
            mint_lease_secs: 30,
            currency: "usd".into(),
        }
    }
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            mint: Quota {
                requests: 10,
                period_secs: 60,
            },
            validate: Quota {
                requests: 5,
                period_secs: 1,
            },
            nonce: Quota {
                requests: 20,
                period_secs: 60,
            },
        }
    }
}

/// Shortest accepted JWT secret: HS256 is only as strong as its key.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

impl ApiSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.jwt_secret.is_empty() && self.jwt_secret.len() < MIN_JWT_SECRET_BYTES {
            return Err(ConfigError::Invalid {
                key: "api.jwt_secret",
                message: format!(
                    "use at least {MIN_JWT_SECRET_BYTES} bytes (or leave empty to disable wallet login)"
                ),
            });
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(ConfigError::Invalid {
                key: "api.currency",
                message: "an ISO 4217 code in lower case, like usd or eur".into(),
            });
        }
        for (key, value) in [
            ("api.token_ttl_secs", self.token_ttl_secs),
            ("api.nonce_ttl_secs", self.nonce_ttl_secs),
            ("api.reservation_secs", self.reservation_secs),
            ("api.purchase_lease_secs", self.purchase_lease_secs),
            ("api.mint_lease_secs", self.mint_lease_secs),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    key,
                    message: "must be at least 1".into(),
                });
            }
        }
        // Only plain `redis://`: the client is built without TLS, so keep
        // Redis on the server's private network.
        if !self.redis_url.is_empty() && !self.redis_url.starts_with("redis://") {
            return Err(ConfigError::Invalid {
                key: "api.redis_url",
                message: "use redis://HOST:PORT (or leave empty for in-process limits)".into(),
            });
        }
        if !self
            .client_ip_header
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(ConfigError::Invalid {
                key: "api.client_ip_header",
                message: format!("{:?} is not a header name", self.client_ip_header),
            });
        }
        for (key, quota) in [
            ("api.rate_limits.mint", self.rate_limits.mint),
            ("api.rate_limits.validate", self.rate_limits.validate),
            ("api.rate_limits.nonce", self.rate_limits.nonce),
        ] {
            if quota.requests == 0 || quota.period_secs == 0 {
                return Err(ConfigError::Invalid {
                    key,
                    message: "requests and period_secs must both be at least 1".into(),
                });
            }
        }
        Ok(())
    }
}
