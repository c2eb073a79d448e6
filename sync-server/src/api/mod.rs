//! The ticketing API's foundation, the parts that need no chain: wallet
//! login and roles ([`auth`]) and request body validation ([`validation`]).
//!
//! The endpoints that mint, transfer and validate tickets build on these and
//! arrive with the chain layer. This module owns its own tables (login
//! nonces, wallet roles) and never touches the gate sync tables.

pub mod auth;
pub mod validation;

use axum::Router;
use axum::routing::{get, post, put};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::config::ConfigError;

/// The routes of this module; [`crate::app`] merges them.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/auth/nonce", post(auth::nonce))
        .route("/api/auth/verify", post(auth::verify))
        .route("/api/auth/me", get(auth::me))
        .route("/api/admin/wallets/{wallet}/role", put(auth::grant_role))
}

/// `[api]`: wallet login.
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
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            jwt_secret: String::new(),
            token_ttl_secs: 24 * 3600,
            nonce_ttl_secs: 5 * 60,
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
        for (key, value) in [
            ("api.token_ttl_secs", self.token_ttl_secs),
            ("api.nonce_ttl_secs", self.nonce_ttl_secs),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    key,
                    message: "must be at least 1".into(),
                });
            }
        }
        Ok(())
    }
}
