//! Who may validate (scan) an event's tickets besides its organizer: the
//! wallets its organizer assigned (`event_validators`).

use serde::{Deserialize, Serialize};
use shared::PublicKeyBytes;
use sqlx::Row;

use super::{Store, StoreError, i64_of};

/// A wallet assigned to validate an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ValidatorAssignment {
    /// The wallet (base58).
    pub wallet: String,
    /// When it was assigned (Unix seconds).
    pub assigned_at: i64,
}

impl Store {
    /// Assigns `wallet` to validate `event_id`; assigning it again keeps the
    /// first assignment. Returns the assignment as stored.
    pub async fn assign_validator(
        &self,
        event_id: u64,
        wallet: &PublicKeyBytes,
        now: i64,
    ) -> Result<ValidatorAssignment, StoreError> {
        sqlx::query(
            "INSERT INTO event_validators (event_id, wallet, assigned_at) VALUES ($1, $2, $3)
             ON CONFLICT (event_id, wallet) DO NOTHING",
        )
        .bind(i64_of(event_id)?)
        .bind(wallet.to_base58())
        .bind(now)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query(
            "SELECT wallet, assigned_at FROM event_validators WHERE event_id = $1 AND wallet = $2",
        )
        .bind(i64_of(event_id)?)
        .bind(wallet.to_base58())
        .fetch_one(&self.pool)
        .await?;
        Ok(ValidatorAssignment {
            wallet: row.try_get("wallet")?,
            assigned_at: row.try_get("assigned_at")?,
        })
    }

    /// Takes the assignment back; `false` when there was none.
    pub async fn unassign_validator(
        &self,
        event_id: u64,
        wallet: &PublicKeyBytes,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM event_validators WHERE event_id = $1 AND wallet = $2")
            .bind(i64_of(event_id)?)
            .bind(wallet.to_base58())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The wallets assigned to an event, oldest assignment first.
    pub async fn validators(&self, event_id: u64) -> Result<Vec<ValidatorAssignment>, StoreError> {
        let rows = sqlx::query(
            "SELECT wallet, assigned_at FROM event_validators WHERE event_id = $1
             ORDER BY assigned_at, wallet",
        )
        .bind(i64_of(event_id)?)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ValidatorAssignment {
                    wallet: r.try_get("wallet")?,
                    assigned_at: r.try_get("assigned_at")?,
                })
            })
            .collect()
    }

    /// Whether `wallet` is assigned to validate `event_id`.
    pub async fn is_validator(
        &self,
        event_id: u64,
        wallet: &PublicKeyBytes,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM event_validators WHERE event_id = $1 AND wallet = $2",
        )
        .bind(i64_of(event_id)?)
        .bind(wallet.to_base58())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }
}
