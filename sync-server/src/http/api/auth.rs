//! Wallet login and roles over HTTP: `POST /api/auth/nonce` answers a
//! one-time message to sign, `POST /api/auth/verify` trades its signature
//! for a session token, `GET /api/auth/me` reads it back, and the organizer
//! grants roles through `PUT /api/admin/wallets/{wallet}/role` with the
//! admin token. [`AuthUser`] is the extractor that admits a request only
//! with a valid session token. The login itself is `crate::services::auth`.

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::header;
use axum::http::request::Parts;
use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};
use shared::PublicKeyBytes;

use crate::http::admin::Admin;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::limits::{self, ClientAddress};
use crate::http::state::AppState;
use crate::http::validation::{ValidJson, Validate, field_error, parse_wallet};
use crate::services::auth::{self as login, AuthError, Session};

pub use crate::services::auth::Role;

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
        let (wallet, role) = login::session_wallet(state, token.trim()).await?;
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
/// `POST /api/auth/nonce`: a fresh one-time message for a wallet to sign,
/// valid from the address that asked for it only (log in from there). A
/// wallet keeps at most 5 unspent nonces per client address; older ones are
/// dropped. Each address may ask `api.rate_limits.nonce` times (20 a
/// minute).
#[utoipa::path(
    post,
    path = "/api/auth/nonce",
    tag = "auth",
    request_body = NonceRequest,
    responses(
        (status = 200, description = "The message to sign", body = NonceResponse),
        (status = 403, description = "`login_disabled`: no `api.jwt_secret` configured", body = ErrorBody),
        (status = 422, description = "`invalid_field`: `wallet` is missing or not a base58 public key", body = ErrorBody),
        (status = 429, description = "`rate_limited`: this address asked too often; `Retry-After` says when to retry", body = ErrorBody),
        (status = 500, description = "`internal`: no source of randomness", body = ErrorBody),
        crate::http::openapi::responses::JsonBodyRefusals,
        crate::http::openapi::responses::StorageDown,
    )
)]
pub async fn nonce(
    State(state): State<AppState>,
    client: ClientAddress,
    ValidJson(request): ValidJson<NonceRequest>,
) -> Result<Json<NonceResponse>, ApiError> {
    login::ensure_enabled(&state.config.api)?;
    limits::check_nonce(&state, &client).await?;
    let wallet = parse_wallet("wallet", &request.wallet)?;
    let challenge = login::new_login_nonce(&state, &wallet, &client.0).await?;
    Ok(Json(NonceResponse {
        nonce: challenge.nonce,
        message: challenge.message,
        expires_at: challenge.expires_at,
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
/// ones this client address asked for the wallet.
#[utoipa::path(
    post,
    path = "/api/auth/verify",
    tag = "auth",
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "Logged in", body = Session),
        (status = 401, description = "`bad_signature` (matches no nonce this address asked for the wallet), `nonce_expired` or `nonce_used`: request a new nonce", body = ErrorBody),
        (status = 403, description = "`login_disabled`: no `api.jwt_secret` configured", body = ErrorBody),
        (status = 422, description = "`invalid_field`: `wallet` or `signature` is missing or malformed", body = ErrorBody),
        crate::http::openapi::responses::JsonBodyRefusals,
        crate::http::openapi::responses::StorageDown,
    )
)]
pub async fn verify(
    State(state): State<AppState>,
    client: ClientAddress,
    ValidJson(request): ValidJson<VerifyRequest>,
) -> Result<Json<Session>, ApiError> {
    login::ensure_enabled(&state.config.api)?;
    let wallet = parse_wallet("wallet", &request.wallet)?;
    let signature = request.signature()?;
    let session = login::login(&state, &wallet, &client.0, &signature).await?;
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
        (status = 403, description = "`login_disabled`", body = ErrorBody),
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::StorageDown,
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
        (status = 422, description = "`invalid_field`: the wallet is not a base58 public key, or `role` is missing or unknown", body = ErrorBody),
        crate::http::openapi::responses::JsonBodyRefusals,
        crate::http::openapi::responses::AdminRefusals,
        crate::http::openapi::responses::StorageDown,
    )
)]
pub async fn grant_role(
    _: Admin,
    State(state): State<AppState>,
    Path(wallet): Path<String>,
    ValidJson(grant): ValidJson<RoleGrant>,
) -> Result<Json<WalletRole>, ApiError> {
    let wallet = parse_wallet("wallet", &wallet)?;
    login::set_role(&state, &wallet, grant.role).await?;
    Ok(Json(WalletRole {
        wallet,
        role: grant.role,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

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
