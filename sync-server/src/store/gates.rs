//! Gates, their one-time enrolment tokens, enrolled devices, and the
//! nonces of devices' signed requests.

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::wire::GateInfo;
use shared::{Direction, PublicKeyBytes};
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::{Store, StoreError, corrupt, enum_parse, enum_text, i64_of, json, unjson};

/// Why an enrolment was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnrolError {
    #[error("unknown enrolment token")]
    UnknownToken,
    #[error("the enrolment token was already used")]
    TokenUsed,
    #[error("the enrolment token expired")]
    TokenExpired,
    #[error("this device key is already enrolled")]
    KeyAlreadyEnrolled,
}

/// An enrolled gate device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub device_id: Uuid,
    pub public_key: PublicKeyBytes,
    pub event_id: u64,
    pub gate_number: u32,
    pub revoked: bool,
}

/// A device request's nonce, to be recorded as used (with the device's last
/// contact and backlog) in the same transaction as the request's effect.
#[derive(Debug, Clone)]
pub struct NonceUse {
    pub device_id: Uuid,
    pub nonce: String,
    pub now: i64,
    /// Nonces older than this are forgotten (they are outside the window).
    pub forget_before: i64,
    pub backlog: Option<u64>,
    /// The request's timestamp minus `now`: how far the box's clock is off.
    pub clock_skew_secs: Option<i64>,
}

/// Expired nonces are purged at most this often, not on every request.
const NONCE_PURGE_EVERY_SECS: i64 = 60;

/// Hex SHA-256 of an enrolment token; only the hash is stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Store {
    pub async fn create_gate(&self, event_id: u64, gate: &GateInfo) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO gates (event_id, number, name, direction, allowed_tiers) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (event_id, number) DO UPDATE SET name = excluded.name,
                 direction = excluded.direction, allowed_tiers = excluded.allowed_tiers",
        )
        .bind(i64_of(event_id)?)
        .bind(i64::from(gate.number))
        .bind(&gate.name)
        .bind(enum_text(&gate.direction))
        .bind(gate.allowed_tiers.as_ref().map(json))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn gate(&self, event_id: u64, number: u32) -> Result<Option<GateInfo>, StoreError> {
        let row = sqlx::query("SELECT * FROM gates WHERE event_id = $1 AND number = $2")
            .bind(i64_of(event_id)?)
            .bind(i64::from(number))
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| gate_from_row(&r)).transpose()
    }

    pub async fn gate_by_name(
        &self,
        event_id: u64,
        name: &str,
    ) -> Result<Option<GateInfo>, StoreError> {
        let row = sqlx::query("SELECT * FROM gates WHERE event_id = $1 AND name = $2")
            .bind(i64_of(event_id)?)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| gate_from_row(&r)).transpose()
    }

    /// Stores a one-time enrolment token (by its hash) for a gate.
    pub async fn create_enrol_token(
        &self,
        token: &str,
        event_id: u64,
        gate_number: u32,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO enrol_tokens (token_hash, event_id, gate_number, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash(token))
        .bind(i64_of(event_id)?)
        .bind(i64::from(gate_number))
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Spends a one-time token and registers the device's key, atomically: a
    /// token enrols exactly one device even when two boxes race for it.
    pub async fn enrol(
        &self,
        token: &str,
        device_key: &PublicKeyBytes,
        agent_version: &str,
        hostname: Option<&str>,
        now: i64,
    ) -> Result<Result<Device, EnrolError>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let hash = token_hash(token);
        let Some(row) = sqlx::query("SELECT * FROM enrol_tokens WHERE token_hash = $1")
            .bind(&hash)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(Err(EnrolError::UnknownToken));
        };
        if row.try_get::<Option<i64>, _>("used_at")?.is_some() {
            return Ok(Err(EnrolError::TokenUsed));
        }
        if row.try_get::<i64, _>("expires_at")? <= now {
            return Ok(Err(EnrolError::TokenExpired));
        }
        let existing = sqlx::query("SELECT device_id FROM devices WHERE public_key = $1")
            .bind(device_key.to_base58())
            .fetch_optional(&mut *tx)
            .await?;
        if existing.is_some() {
            return Ok(Err(EnrolError::KeyAlreadyEnrolled));
        }
        let device_id = Uuid::now_v7();
        let spent = sqlx::query(
            "UPDATE enrol_tokens SET used_at = $1, device_id = $2 WHERE token_hash = $3 AND used_at IS NULL",
        )
        .bind(now)
        .bind(device_id.to_string())
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
        if spent.rows_affected() != 1 {
            return Ok(Err(EnrolError::TokenUsed));
        }
        let event_id: i64 = row.try_get("event_id")?;
        let gate_number: i64 = row.try_get("gate_number")?;
        sqlx::query(
            "INSERT INTO devices (device_id, public_key, event_id, gate_number, agent_version, hostname, enrolled_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(device_id.to_string())
        .bind(device_key.to_base58())
        .bind(event_id)
        .bind(gate_number)
        .bind(agent_version)
        .bind(hostname)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(Device {
            device_id,
            public_key: *device_key,
            event_id: u64::try_from(event_id).map_err(corrupt)?,
            gate_number: u32::try_from(gate_number).map_err(corrupt)?,
            revoked: false,
        }))
    }

    pub async fn device(&self, device_id: Uuid) -> Result<Option<Device>, StoreError> {
        let row = sqlx::query("SELECT * FROM devices WHERE device_id = $1")
            .bind(device_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(Device {
                device_id,
                public_key: PublicKeyBytes::from_str(&r.try_get::<String, _>("public_key")?)
                    .map_err(corrupt)?,
                event_id: u64::try_from(r.try_get::<i64, _>("event_id")?).map_err(corrupt)?,
                gate_number: u32::try_from(r.try_get::<i64, _>("gate_number")?).map_err(corrupt)?,
                revoked: r.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
            })
        })
        .transpose()
    }

    pub async fn revoke_device(&self, device_id: Uuid, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE devices SET revoked_at = $1 WHERE device_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(device_id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Accepts one signed request of a device: records its nonce and notes
    /// that the device was heard from (with its unsent backlog), in one
    /// transaction. `false` if the device already used the nonce (a replayed
    /// request); then nothing is written. Nonces older than `forget_before`
    /// are dropped now and then: the timestamp window refuses those requests
    /// anyway.
    pub async fn accept_request(&self, request: &NonceUse) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let accepted = self.accept_in(&mut tx, request).await?;
        if accepted {
            tx.commit().await?;
        }
        Ok(accepted)
    }

    /// [`Store::accept_request`]'s statements inside a caller's transaction.
    pub(super) async fn accept_in(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        request: &NonceUse,
    ) -> Result<bool, StoreError> {
        let last_purge = self
            .last_nonce_purge
            .load(std::sync::atomic::Ordering::Relaxed);
        if request.now - last_purge >= NONCE_PURGE_EVERY_SECS {
            self.last_nonce_purge
                .store(request.now, std::sync::atomic::Ordering::Relaxed);
            sqlx::query("DELETE FROM device_nonces WHERE seen_at < $1")
                .bind(request.forget_before)
                .execute(&mut **tx)
                .await?;
        }
        let inserted = sqlx::query(
            "INSERT INTO device_nonces (device_id, nonce, seen_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(request.device_id.to_string())
        .bind(request.nonce.clone())
        .bind(request.now)
        .execute(&mut **tx)
        .await?;
        if inserted.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE devices SET last_seen_at = $1, backlog = COALESCE($2, backlog),
                clock_skew_secs = COALESCE($3, clock_skew_secs) WHERE device_id = $4",
        )
        .bind(request.now)
        .bind(request.backlog.map(i64_of).transpose()?)
        .bind(request.clock_skew_secs)
        .bind(request.device_id.to_string())
        .execute(&mut **tx)
        .await?;
        Ok(true)
    }

    /// Notes that a device was heard from, with its unsent backlog.
    pub async fn touch_device(
        &self,
        device_id: Uuid,
        now: i64,
        backlog: Option<u64>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE devices SET last_seen_at = $1, backlog = COALESCE($2, backlog) WHERE device_id = $3",
        )
        .bind(now)
        .bind(backlog.map(i64_of).transpose()?)
        .bind(device_id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

fn gate_from_row(r: &AnyRow) -> Result<GateInfo, StoreError> {
    Ok(GateInfo {
        number: u32::try_from(r.try_get::<i64, _>("number")?).map_err(corrupt)?,
        name: r.try_get("name")?,
        direction: enum_parse::<Direction>(&r.try_get::<String, _>("direction")?)?,
        allowed_tiers: r
            .try_get::<Option<String>, _>("allowed_tiers")?
            .map(|t| unjson(&t))
            .transpose()?,
    })
}
