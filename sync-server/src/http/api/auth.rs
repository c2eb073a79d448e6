//! Wallet login and roles.
//!
//! A wallet proves it holds its key by signing a one-time message:
//! `POST /api/auth/nonce` stores a fresh nonce for the wallet and returns
//! `Sign this message to authenticate: <nonce>`; `POST /api/auth/verify`
//! takes the signature, spends the nonce (each nonce logs in at most once,
//! and only before it expires) and answers a session token: a JWT (HS256)
//! naming the wallet and its role. [`AuthUser`] is the extractor that admits
//! a request only with a valid, unexpired, untampered token.
//!
//! Roles (organizer, validator, holder) live in `wallet_roles`; a wallet not
//! listed is a holder. The organizer grants them through
//! `PUT /api/admin/wallets/{wallet}/role` with the admin token. The role is
//! read from the database on every request rather than trusted from the
//! token, so revoking a validator takes effect at once, not when its token
//! expires; the role in the token only tells the client what it logged in as.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use ed25519_dalek::Signature;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use shared::PublicKeyBytes;
use sqlx::Row;

use crate::config::ApiSettings;
use crate::http::admin::Admin;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::state::AppState;
use crate::http::validation::{ValidJson, Validate, field_error, parse_wallet};
use crate::store::{Store, StoreError};

/// What a wallet signs to log in; the nonce follows.
pub const LOGIN_MESSAGE_PREFIX: &str = "Sign this message to authenticate: ";

/// Unspent nonces kept per wallet. A login tries the signature against each,
/// so this also bounds the work one verify request can cause.
pub const MAX_PENDING_NONCES: i64 = 5;

/// Expired nonces are kept this long after expiry, so a late or replayed
/// login is told why it failed, then purged.
const EXPIRED_NONCE_RETENTION_SECS: i64 = 3600;

/// The exact message a wallet signs for `nonce`.
pub fn login_message(nonce: &str) -> String {
    format!("{LOGIN_MESSAGE_PREFIX}{nonce}")
}

/// What a wallet may do in the ticketing API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Creates and runs events.
    Organizer,
    /// Gate staff: validates tickets online.
    Validator,
    /// Buys, holds and transfers tickets: every wallet is one.
    Holder,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Organizer => "organizer",
            Role::Validator => "validator",
            Role::Holder => "holder",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "organizer" => Ok(Role::Organizer),
            "validator" => Ok(Role::Validator),
            "holder" => Ok(Role::Holder),
            other => Err(format!("unknown role {other:?}")),
        }
    }
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

impl AuthError {
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::Disabled | AuthError::RoleRequired { .. } => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Disabled => "login_disabled",
            AuthError::MissingToken => "missing_token",
            AuthError::InvalidToken => "invalid_token",
            AuthError::TokenExpired => "token_expired",
            AuthError::BadSignature => "bad_signature",
            AuthError::NonceExpired => "nonce_expired",
            AuthError::NonceUsed => "nonce_used",
            AuthError::RoleRequired { .. } => "role_required",
        }
    }
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

fn secret(settings: &ApiSettings) -> Result<&[u8], AuthError> {
    if settings.jwt_secret.is_empty() {
        return Err(AuthError::Disabled);
    }
    Ok(settings.jwt_secret.as_bytes())
}

/// Signs a session token for `wallet`, valid from `now` for the configured
/// lifetime.
pub fn issue_token(
    settings: &ApiSettings,
    wallet: &PublicKeyBytes,
    role: Role,
    now: i64,
) -> Result<Session, ApiError> {
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
    .map_err(|e| ApiError::Internal(format!("cannot sign a session token: {e}")))?;
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

/// A request from a logged-in wallet, with its current role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    pub wallet: PublicKeyBytes,
    pub role: Role,
}

impl AuthUser {
    /// 403 unless the wallet has one of `allowed`.
    pub fn require_role(&self, allowed: &[Role]) -> Result<(), ApiError> {
        if allowed.contains(&self.role) {
            return Ok(());
        }
        let needed = allowed
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(" or ");
        Err(AuthError::RoleRequired {
            needed,
            have: self.role,
        }
        .into())
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(AuthError::MissingToken)?;
        let claims = read_token(&state.config.api, token.trim(), state.clock.now())?;
        let wallet: PublicKeyBytes = claims.sub.parse().map_err(|_| AuthError::InvalidToken)?;
        let role = state.store.wallet_role(&wallet).await?;
        Ok(AuthUser { wallet, role })
    }
}

// ----- endpoints -----

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NonceRequest {
    /// The wallet's address (base58).
    pub wallet: String,
}

impl Validate for NonceRequest {
    fn validate(&self) -> Result<(), ApiError> {
        parse_wallet("wallet", &self.wallet).map(drop)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NonceResponse {
    pub nonce: String,
    /// Sign exactly these bytes (UTF-8) with the wallet's key.
    pub message: String,
    /// Unix seconds; sign and verify before then.
    pub expires_at: i64,
}

/// A one-time message for a wallet to sign
///
/// `POST /api/auth/nonce`: a fresh one-time message for a wallet to sign.
/// A wallet keeps at most 5 unspent nonces; older ones are dropped.
#[utoipa::path(
    post,
    path = "/api/auth/nonce",
    tag = "auth",
    request_body = NonceRequest,
    responses(
        (status = 200, description = "The message to sign", body = NonceResponse),
        (status = 400, description = "`malformed_json`: the body is not JSON", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: send the body as `application/json`", body = ErrorBody),
        (status = 403, description = "`login_disabled`: no `api.jwt_secret` configured", body = ErrorBody),
        (status = 422, description = "`invalid_field`: `wallet` is missing or not a base58 public key", body = ErrorBody),
        (status = 500, description = "`internal`: no source of randomness", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn nonce(
    State(state): State<AppState>,
    ValidJson(request): ValidJson<NonceRequest>,
) -> Result<Json<NonceResponse>, ApiError> {
    secret(&state.config.api)?;
    let wallet = parse_wallet("wallet", &request.wallet)?;
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::Internal(format!("no randomness: {e}")))?;
    let nonce = bs58::encode(bytes).into_string();
    let now = state.clock.now();
    let expires_at = now + i64::from(state.config.api.nonce_ttl_secs);
    state
        .store
        .create_login_nonce(&wallet, &nonce, now, expires_at)
        .await?;
    Ok(Json(NonceResponse {
        message: login_message(&nonce),
        nonce,
        expires_at,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The wallet's address (base58).
    pub wallet: String,
    /// base58 of the 64-byte ed25519 signature over the nonce's message.
    pub signature: String,
}

impl VerifyRequest {
    fn signature(&self) -> Result<Signature, ApiError> {
        bs58::decode(self.signature.trim())
            .into_vec()
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .map(|b| Signature::from_bytes(&b))
            .ok_or_else(|| field_error("signature", "not a base58 signature of 64 bytes"))
    }
}

impl Validate for VerifyRequest {
    fn validate(&self) -> Result<(), ApiError> {
        parse_wallet("wallet", &self.wallet)?;
        self.signature().map(drop)
    }
}

/// Log in with a signed nonce
///
/// `POST /api/auth/verify`: spends the nonce the signature is over and
/// answers a session token. The request names no nonce: the server tries the
/// wallet's pending ones.
#[utoipa::path(
    post,
    path = "/api/auth/verify",
    tag = "auth",
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "Logged in", body = Session),
        (status = 400, description = "`malformed_json`: the body is not JSON", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: send the body as `application/json`", body = ErrorBody),
        (status = 401, description = "`bad_signature` (matches no nonce of the wallet), `nonce_expired` or `nonce_used`: request a new nonce", body = ErrorBody),
        (status = 403, description = "`login_disabled`: no `api.jwt_secret` configured", body = ErrorBody),
        (status = 422, description = "`invalid_field`: `wallet` or `signature` is missing or malformed", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn verify(
    State(state): State<AppState>,
    ValidJson(request): ValidJson<VerifyRequest>,
) -> Result<Json<Session>, ApiError> {
    secret(&state.config.api)?;
    let wallet = parse_wallet("wallet", &request.wallet)?;
    let signature = request.signature()?;
    let key = wallet
        .verifying_key()
        .ok_or_else(|| field_error("wallet", "not an ed25519 public key"))?;
    let now = state.clock.now();
    // The request names no nonce: the one the wallet signed is found by
    // trying its few pending ones.
    let signed = state
        .store
        .login_nonces(&wallet)
        .await?
        .into_iter()
        .find(|n| {
            key.verify_strict(login_message(&n.nonce).as_bytes(), &signature)
                .is_ok()
        })
        .ok_or(AuthError::BadSignature)?;
    if signed.used {
        return Err(AuthError::NonceUsed.into());
    }
    if signed.expires_at <= now {
        return Err(AuthError::NonceExpired.into());
    }
    if !state.store.spend_login_nonce(&signed.nonce, now).await? {
        // Another request spent it between our read and our write.
        return Err(AuthError::NonceUsed.into());
    }
    let role = state.store.wallet_role(&wallet).await?;
    let session = issue_token(&state.config.api, &wallet, role, now)?;
    tracing::info!(%wallet, %role, "wallet logged in");
    Ok(Json(session))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WalletRole {
    pub wallet: PublicKeyBytes,
    pub role: Role,
}

/// Who the session token belongs to
///
/// `GET /api/auth/me`: who the token belongs to, with the current role.
#[utoipa::path(
    get,
    path = "/api/auth/me",
    tag = "auth",
    security(("wallet_session" = [])),
    responses(
        (status = 200, description = "The wallet and its current role", body = WalletRole),
        (status = 401, description = "`missing_token`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`login_disabled`", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn me(user: AuthUser) -> Json<WalletRole> {
    Json(WalletRole {
        wallet: user.wallet,
        role: user.role,
    })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleGrant {
    pub role: Role,
}

impl Validate for RoleGrant {
    fn validate(&self) -> Result<(), ApiError> {
        Ok(())
    }
}

/// Set a wallet's role
///
/// `PUT /api/admin/wallets/{wallet}/role`: sets a wallet's role (admin token).
/// It takes effect at the wallet's next request, not when its token expires.
#[utoipa::path(
    put,
    path = "/api/admin/wallets/{wallet}/role",
    tag = "admin",
    params(("wallet" = String, Path, description = "The wallet's address (base58)")),
    request_body = RoleGrant,
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Set", body = WalletRole),
        (status = 400, description = "`malformed_json`: the body is not JSON", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: send the body as `application/json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no bearer token, or not the admin token", body = ErrorBody),
        (status = 403, description = "`forbidden`: the admin API is disabled (no `admin_token` configured)", body = ErrorBody),
        (status = 422, description = "`invalid_field`: the wallet is not a base58 public key, or `role` is missing or unknown", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn grant_role(
    _: Admin,
    State(state): State<AppState>,
    Path(wallet): Path<String>,
    ValidJson(grant): ValidJson<RoleGrant>,
) -> Result<Json<WalletRole>, ApiError> {
    let wallet = parse_wallet("wallet", &wallet)?;
    state
        .store
        .set_wallet_role(&wallet, grant.role, state.clock.now())
        .await?;
    tracing::info!(%wallet, role = %grant.role, "wallet role set");
    Ok(Json(WalletRole {
        wallet,
        role: grant.role,
    }))
}

// ----- storage -----

/// A login nonce of a wallet as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginNonce {
    pub nonce: String,
    pub expires_at: i64,
    pub used: bool,
}

impl Store {
    /// Stores a wallet's new login nonce. Keeps only the wallet's newest
    /// [`MAX_PENDING_NONCES`] and purges long-expired ones, so asking for
    /// nonces again and again does not grow the table.
    pub async fn create_login_nonce(
        &self,
        wallet: &PublicKeyBytes,
        nonce: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let wallet = wallet.to_base58();
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM login_nonces WHERE expires_at < $1")
            .bind(now - EXPIRED_NONCE_RETENTION_SECS)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM login_nonces WHERE wallet = $1 AND nonce NOT IN (
                 SELECT nonce FROM login_nonces WHERE wallet = $1
                 ORDER BY created_at DESC, nonce DESC LIMIT $2)",
        )
        .bind(&wallet)
        .bind(MAX_PENDING_NONCES - 1)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO login_nonces (nonce, wallet, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(nonce)
        .bind(&wallet)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The wallet's stored nonces (spent and expired ones too), newest first.
    pub async fn login_nonces(
        &self,
        wallet: &PublicKeyBytes,
    ) -> Result<Vec<LoginNonce>, StoreError> {
        let rows = sqlx::query(
            "SELECT nonce, expires_at, used_at FROM login_nonces WHERE wallet = $1
             ORDER BY created_at DESC, nonce DESC LIMIT $2",
        )
        .bind(wallet.to_base58())
        .bind(MAX_PENDING_NONCES)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LoginNonce {
                    nonce: r.try_get("nonce")?,
                    expires_at: r.try_get("expires_at")?,
                    used: r.try_get::<Option<i64>, _>("used_at")?.is_some(),
                })
            })
            .collect()
    }

    /// Marks a nonce used; `false` if it already was (each logs in once).
    pub async fn spend_login_nonce(&self, nonce: &str, now: i64) -> Result<bool, StoreError> {
        let spent = sqlx::query(
            "UPDATE login_nonces SET used_at = $1 WHERE nonce = $2 AND used_at IS NULL",
        )
        .bind(now)
        .bind(nonce)
        .execute(self.pool())
        .await?;
        Ok(spent.rows_affected() == 1)
    }

    /// A wallet's role; holder unless one was granted.
    pub async fn wallet_role(&self, wallet: &PublicKeyBytes) -> Result<Role, StoreError> {
        let row = sqlx::query("SELECT role FROM wallet_roles WHERE wallet = $1")
            .bind(wallet.to_base58())
            .fetch_optional(self.pool())
            .await?;
        match row {
            None => Ok(Role::Holder),
            Some(row) => row
                .try_get::<String, _>("role")?
                .parse()
                .map_err(StoreError::Corrupt),
        }
    }

    pub async fn set_wallet_role(
        &self,
        wallet: &PublicKeyBytes,
        role: Role,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO wallet_roles (wallet, role, granted_at) VALUES ($1, $2, $3)
             ON CONFLICT (wallet) DO UPDATE SET role = excluded.role, granted_at = excluded.granted_at",
        )
        .bind(wallet.to_base58())
        .bind(role.as_str())
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }
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

    #[test]
    fn require_role_names_what_was_needed() {
        let user = AuthUser {
            wallet: PublicKeyBytes([9; 32]),
            role: Role::Holder,
        };
        assert!(user.require_role(&[Role::Holder]).is_ok());
        let err = user
            .require_role(&[Role::Organizer, Role::Validator])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "this needs the role organizer or validator; the wallet is a holder"
        );
    }
}
