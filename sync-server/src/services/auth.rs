//! Wallet login and session tokens.
//!
//! A wallet proves it holds its key by signing a one-time message:
//! [`new_login_nonce`] stores a fresh nonce for the wallet and answers
//! `Sign this message to authenticate: <nonce>`; [`login`] takes the
//! signature, spends the nonce (each nonce logs in at most once, and only
//! before it expires) and answers a session token: a JWT (HS256) naming the
//! wallet and its role. [`session_wallet`] admits a token only when it is
//! valid, unexpired and untampered.
//!
//! Asking for a nonce needs no proof of anything, so a nonce is bound to
//! the client address that asked for it: it logs in only from there, and
//! the few pending nonces kept per wallet are kept per wallet *and* client,
//! so requests from elsewhere cannot push a wallet's own nonce out (and
//! the HTTP layer limits how often one address may ask).
//!
//! Roles (organizer, validator, holder) are stored by `crate::store::auth`;
//! a wallet not listed is a holder. The role is read from the database on
//! every request rather than trusted from the token, so revoking a validator
//! takes effect at once, not when its token expires; the role in the token
//! only tells the client what it logged in as.

use std::collections::HashSet;

use ed25519_dalek::Signature;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use shared::PublicKeyBytes;

use super::{ServiceError, Services};
use crate::config::ApiSettings;

pub use crate::store::auth::{MAX_PENDING_NONCES, Role};

/// What a wallet signs to log in; the nonce follows.
pub const LOGIN_MESSAGE_PREFIX: &str = "Sign this message to authenticate: ";

/// The exact message a wallet signs for `nonce`.
pub fn login_message(nonce: &str) -> String {
    format!("{LOGIN_MESSAGE_PREFIX}{nonce}")
}

/// Why a login or a session token was refused. Each has its own code so a
/// client knows whether to ask for a new nonce, log in again, or give up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("wallet login is disabled on this server (no api.jwt_secret configured)")]
    Disabled,
    #[error("missing bearer token")]
    MissingToken,
    #[error("invalid session token")]
    InvalidToken,
    #[error("the session token expired; log in again")]
    TokenExpired,
    #[error(
        "the signature matches no login nonce of this wallet; request a nonce and sign its message"
    )]
    BadSignature,
    #[error("the login nonce expired; request a new one")]
    NonceExpired,
    #[error("the login nonce was already used; request a new one")]
    NonceUsed,
    #[error("this needs the role {needed}; the wallet is a {have}")]
    RoleRequired { needed: String, have: Role },
}

/// The claims of a session token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The wallet, base58.
    pub sub: String,
    /// The role when the token was issued (informative; see the module doc).
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
}

/// A logged-in session as the client receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Session {
    /// The session token: send it as `Authorization: Bearer TOKEN`.
    pub token: String,
    /// Unix seconds.
    pub expires_at: i64,
    pub wallet: PublicKeyBytes,
    pub role: Role,
}

/// A fresh one-time login nonce and the message to sign for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginChallenge {
    pub nonce: String,
    pub message: String,
    /// Unix seconds.
    pub expires_at: i64,
}

fn secret(settings: &ApiSettings) -> Result<&[u8], AuthError> {
    if settings.jwt_secret.is_empty() {
        return Err(AuthError::Disabled);
    }
    Ok(settings.jwt_secret.as_bytes())
}

/// [`AuthError::Disabled`] unless a token secret is configured.
pub fn ensure_enabled(settings: &ApiSettings) -> Result<(), AuthError> {
    secret(settings).map(drop)
}

/// Signs a session token for `wallet`, valid from `now` for the configured
/// lifetime.
pub fn issue_token(
    settings: &ApiSettings,
    wallet: &PublicKeyBytes,
    role: Role,
    now: i64,
) -> Result<Session, ServiceError> {
    let expires_at = now + i64::from(settings.token_ttl_secs);
    let claims = Claims {
        sub: wallet.to_base58(),
        role,
        iat: now,
        exp: expires_at,
    };
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret(settings)?),
    )
    .map_err(|e| ServiceError::Internal(format!("cannot sign a session token: {e}")))?;
    Ok(Session {
        token,
        expires_at,
        wallet: *wallet,
        role,
    })
}

/// Checks a session token's signature, algorithm and expiry against the
/// server's clock (not the library's, so expiry follows the injected clock).
pub fn read_token(settings: &ApiSettings, token: &str, now: i64) -> Result<Claims, AuthError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_exp = false;
    validation.required_spec_claims = HashSet::from(["exp".to_owned(), "sub".to_owned()]);
    let data = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(secret(settings)?),
        &validation,
    )
    .map_err(|e| {
        tracing::debug!(error = %e, "refused a session token");
        AuthError::InvalidToken
    })?;
    if data.claims.exp <= now {
        return Err(AuthError::TokenExpired);
    }
    Ok(data.claims)
}

/// The wallet a session token belongs to, with its current role.
pub async fn session_wallet(
    services: &Services,
    token: &str,
) -> Result<(PublicKeyBytes, Role), ServiceError> {
    let claims = read_token(&services.config.api, token, services.clock.now())?;
    let wallet: PublicKeyBytes = claims.sub.parse().map_err(|_| AuthError::InvalidToken)?;
    let role = services.store.wallet_role(&wallet).await?;
    Ok((wallet, role))
}

/// Stores a fresh one-time nonce for `wallet` to sign, usable from
/// `client` only. A wallet keeps at most [`MAX_PENDING_NONCES`] unspent
/// ones per client; older ones are dropped.
pub async fn new_login_nonce(
    services: &Services,
    wallet: &PublicKeyBytes,
    client: &str,
) -> Result<LoginChallenge, ServiceError> {
    ensure_enabled(&services.config.api)?;
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| ServiceError::Internal(format!("no randomness: {e}")))?;
    let nonce = bs58::encode(bytes).into_string();
    let now = services.clock.now();
    let expires_at = now + i64::from(services.config.api.nonce_ttl_secs);
    services
        .store
        .create_login_nonce(wallet, client, &nonce, now, expires_at)
        .await?;
    Ok(LoginChallenge {
        message: login_message(&nonce),
        nonce,
        expires_at,
    })
}

/// Logs `wallet` in with its `signature` over the message of one of the
/// nonces `client` asked for, spending that nonce.
pub async fn login(
    services: &Services,
    wallet: &PublicKeyBytes,
    client: &str,
    signature: &Signature,
) -> Result<Session, ServiceError> {
    ensure_enabled(&services.config.api)?;
    let key = wallet
        .verifying_key()
        .ok_or_else(|| ServiceError::invalid("wallet", "not an ed25519 public key"))?;
    let now = services.clock.now();
    // The request names no nonce: the one the wallet signed is found by
    // trying the few this client holds.
    let signed = services
        .store
        .login_nonces(wallet, client)
        .await?
        .into_iter()
        .find(|n| {
            key.verify_strict(login_message(&n.nonce).as_bytes(), signature)
                .is_ok()
        })
        .ok_or(AuthError::BadSignature)?;
    if signed.used {
        return Err(AuthError::NonceUsed.into());
    }
    if signed.expires_at <= now {
        return Err(AuthError::NonceExpired.into());
    }
    if !services.store.spend_login_nonce(&signed.nonce, now).await? {
        // Another request spent it between our read and our write.
        return Err(AuthError::NonceUsed.into());
    }
    let role = services.store.wallet_role(wallet).await?;
    let session = issue_token(&services.config.api, wallet, role, now)?;
    tracing::info!(%wallet, %role, "wallet logged in");
    Ok(session)
}

/// Grants `role` to `wallet`; it takes effect at the wallet's next request.
pub async fn set_role(
    services: &Services,
    wallet: &PublicKeyBytes,
    role: Role,
) -> Result<(), ServiceError> {
    services
        .store
        .set_wallet_role(wallet, role, services.clock.now())
        .await?;
    tracing::info!(%wallet, %role, "wallet role set");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ApiSettings {
        ApiSettings {
            jwt_secret: "a-test-secret-of-at-least-32-bytes!!".into(),
            ..ApiSettings::default()
        }
    }

    #[test]
    fn a_token_reads_back_until_it_expires() {
        let wallet = PublicKeyBytes([9; 32]);
        let session = issue_token(&settings(), &wallet, Role::Validator, 1_000).unwrap();
        assert_eq!(session.expires_at, 1_000 + 24 * 3600);
        let claims = read_token(&settings(), &session.token, 1_001).unwrap();
        assert_eq!(claims.sub, wallet.to_base58());
        assert_eq!(claims.role, Role::Validator);
        assert_eq!(
            read_token(&settings(), &session.token, session.expires_at),
            Err(AuthError::TokenExpired)
        );
    }

    #[test]
    fn tokens_signed_otherwise_are_refused() {
        let wallet = PublicKeyBytes([9; 32]);
        let other = ApiSettings {
            jwt_secret: "another-secret-of-at-least-32-bytes!".into(),
            ..ApiSettings::default()
        };
        let forged = issue_token(&other, &wallet, Role::Organizer, 1_000).unwrap();
        assert_eq!(
            read_token(&settings(), &forged.token, 1_001),
            Err(AuthError::InvalidToken)
        );
        // "alg": "none" with the same claims.
        let header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"; // {"alg":"none","typ":"JWT"}
        let payload = forged.token.split('.').nth(1).unwrap();
        let unsigned = format!("{header}.{payload}.");
        assert_eq!(
            read_token(&settings(), &unsigned, 1_001),
            Err(AuthError::InvalidToken)
        );
        assert_eq!(
            read_token(&ApiSettings::default(), &forged.token, 1_001),
            Err(AuthError::Disabled)
        );
    }
}
