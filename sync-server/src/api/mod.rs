//! The ticketing API's foundation, the parts that need no chain: wallet
//! login and roles ([`auth`]), request body validation ([`validation`]),
//! rate limits shared between server instances ([`ratelimit`]), mail
//! ([`mail`]) and card payments ([`payments`]).
//!
//! The endpoints that mint, transfer and validate tickets build on these and
//! arrive with the chain layer; [`claims`] holds holder-signed transfers and
//! tickets sent by email. This module owns its own tables (login nonces,
//! wallet roles, processed payment webhooks, email transfers) and never
//! touches the gate sync tables.

pub mod auth;
pub mod cache;
pub mod claims;
pub mod inventory;
pub mod mail;
pub mod payments;
pub mod purchase;
pub mod ratelimit;
pub mod tickets;
pub mod validate;
pub mod validation;

use std::future::Future;
use std::pin::Pin;

use axum::Router;
use axum::routing::{get, post, put};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::config::ConfigError;

/// A boxed future, so the API's traits (mailer, payment provider, rate
/// limiter) can be used as trait objects chosen by configuration.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The event account of `event_id` as the chain has it now: 404 when it is
/// not there, 503 without a chain or when the chain does not answer.
pub(crate) async fn event_on_chain(
    state: &AppState,
    event_id: u64,
) -> Result<ticketing::client::Event, crate::error::ApiError> {
    use solana_sdk::signature::Signer;
    let ctx = state
        .chain
        .as_ref()
        .ok_or_else(|| crate::error::ApiError::ChainUnavailable("no chain configured".into()))?;
    crate::chain::ops::event(ctx.chain.as_ref(), &ctx.authority.pubkey(), event_id)
        .await
        .map_err(crate::organizer::OrganizerError::from)?
        .ok_or_else(|| {
            crate::error::ApiError::NotFound(format!("event {event_id} is not on chain"))
        })
}

/// The routes of this module; [`crate::app`] merges them.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/auth/nonce", post(auth::nonce))
        .route("/api/auth/verify", post(auth::verify))
        .route("/api/auth/me", get(auth::me))
        .route("/api/admin/wallets/{wallet}/role", put(auth::grant_role))
        .route("/api/admin/purchases", get(purchase::needing_support))
        .route(
            "/api/events",
            post(tickets::create_event).get(tickets::list_events),
        )
        .route(
            "/api/events/{event}",
            get(tickets::get_event).put(tickets::update_event),
        )
        .route("/api/tickets/mint", post(tickets::mint))
        .route("/api/tickets/batch-mint", post(tickets::batch_mint))
        .route("/api/tickets/my", get(tickets::my_tickets))
        .route("/api/tickets/{event}/{ticket}", get(tickets::get_ticket))
        .route("/api/tickets/{event}/{ticket}/qr", get(tickets::qr))
        .route(
            "/api/tickets/{event}/{ticket}/transfer",
            post(tickets::transfer),
        )
        .route(
            "/api/tickets/{event}/{ticket}/transfer/submit",
            post(tickets::submit_transfer),
        )
        .route(
            "/api/tickets/{event}/{ticket}/transfer/cancel",
            post(claims::cancel),
        )
        .route(
            "/api/tickets/{event}/{ticket}/transfer/resend",
            post(claims::resend),
        )
        .route("/api/tickets/claim", post(claims::claim))
        .route("/m/{event}/{ticket}", get(tickets::metadata))
        .route(
            "/api/tickets/{event}/{ticket}/metadata",
            get(tickets::metadata),
        )
        .route("/m/{event}/{ticket}/image.svg", get(tickets::card_image))
        .route("/api/tickets/purchase", post(purchase::purchase))
        .route("/api/purchases", get(purchase::my_purchases))
        .route("/api/purchases/{purchase}", get(purchase::get_purchase))
        .route("/api/purchases/{purchase}/submit", post(purchase::submit))
        .route("/api/payments/webhook", post(purchase::webhook))
        .route("/api/validate", post(validate::validate))
        .route("/api/validate/offline", post(validate::offline))
        .route("/api/validate/sync", post(validate::sync))
}

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
            redis_key_prefix: ratelimit::REDIS_KEY_PREFIX.to_owned(),
            rate_limits: RateLimitSettings::default(),
            public_url: "http://127.0.0.1:8080".into(),
            reservation_secs: 300,
            purchase_lease_secs: 30,
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
        for (key, quota) in [
            ("api.rate_limits.mint", self.rate_limits.mint),
            ("api.rate_limits.validate", self.rate_limits.validate),
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
