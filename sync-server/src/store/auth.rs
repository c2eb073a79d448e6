//! Wallet login storage: one-time login nonces (`login_nonces`) and the
//! roles granted to wallets (`wallet_roles`). A wallet not listed is a
//! holder; roles are stored by name ([`Role::as_str`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use shared::PublicKeyBytes;
use sqlx::Row;

use super::{Store, StoreError};

/// Unspent nonces kept per wallet and client address. A login tries the
/// signature against each, so this also bounds the work one verify request
/// can cause.
pub const MAX_PENDING_NONCES: i64 = 5;

/// Expired nonces are kept this long after expiry, so a late or replayed
/// login is told why it failed, then purged.
const EXPIRED_NONCE_RETENTION_SECS: i64 = 3600;

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

/// A login nonce of a wallet as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginNonce {
    pub nonce: String,
    pub expires_at: i64,
    pub used: bool,
}

impl Store {
    /// Stores a wallet's new login nonce, bound to the `client` address that
    /// asked for it. Keeps only the newest [`MAX_PENDING_NONCES`] of that
    /// wallet and client (so nobody elsewhere can push a wallet's pending
    /// nonces out) and purges long-expired ones, so asking for nonces again
    /// and again does not grow the table.
    pub async fn create_login_nonce(
        &self,
        wallet: &PublicKeyBytes,
        client: &str,
        nonce: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let wallet = wallet.to_base58();
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM login_nonces WHERE expires_at < $1")
            .bind(now - EXPIRED_NONCE_RETENTION_SECS)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM login_nonces WHERE wallet = $1 AND client = $2 AND nonce NOT IN (
                 SELECT nonce FROM login_nonces WHERE wallet = $1 AND client = $2
                 ORDER BY created_at DESC, nonce DESC LIMIT $3)",
        )
        .bind(&wallet)
        .bind(client)
        .bind(MAX_PENDING_NONCES - 1)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO login_nonces (nonce, wallet, client, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(nonce)
        .bind(&wallet)
        .bind(client)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The nonces `client` asked for `wallet` (spent and expired ones too),
    /// newest first.
    pub async fn login_nonces(
        &self,
        wallet: &PublicKeyBytes,
        client: &str,
    ) -> Result<Vec<LoginNonce>, StoreError> {
        let rows = sqlx::query(
            "SELECT nonce, expires_at, used_at FROM login_nonces WHERE wallet = $1 AND client = $2
             ORDER BY created_at DESC, nonce DESC LIMIT $3",
        )
        .bind(wallet.to_base58())
        .bind(client)
        .bind(MAX_PENDING_NONCES)
        .fetch_all(&self.pool)
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
        .execute(&self.pool)
        .await?;
        Ok(spent.rows_affected() == 1)
    }

    /// A wallet's role; holder unless one was granted.
    pub async fn wallet_role(&self, wallet: &PublicKeyBytes) -> Result<Role, StoreError> {
        let row = sqlx::query("SELECT role FROM wallet_roles WHERE wallet = $1")
            .bind(wallet.to_base58())
            .fetch_optional(&self.pool)
            .await?;
        match row {
            None => Ok(Role::Holder),
            Some(row) => row
                .try_get::<String, _>("role")?
                .parse()
                .map_err(StoreError::Corrupt),
        }
    }

    /// Grants `role` to `wallet`, replacing the one it had.
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
