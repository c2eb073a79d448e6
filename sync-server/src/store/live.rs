//! Figures of an event's live view that the per-gate counts do not give:
//! refusals by reason and admissions per minute.

use serde::Serialize;
use shared::wire::CachedEvent;
use sqlx::Row;

use super::feed::event_from_row;
use super::{Store, StoreError, corrupt, i64_of};

/// How many scans a gate refused for one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RefusalCount {
    /// The verdict's outcome code (`already_inside`, `revoked`, ...).
    pub reason: String,
    pub count: u64,
}

/// A gate box enrolled for an event, as organizers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DeviceRow {
    pub device_id: String,
    /// The gate (by number) it serves.
    pub gate: u32,
    pub agent_version: String,
    pub hostname: Option<String>,
    /// Unix seconds.
    pub enrolled_at: i64,
    pub revoked_at: Option<i64>,
    pub last_seen_at: Option<i64>,
    /// Journal rows it had not sent yet, on its last request.
    pub backlog: u64,
    /// Its clock minus the server's on its last signed request (seconds).
    pub clock_skew_secs: Option<i64>,
}

/// Admissions in one minute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MinuteCount {
    /// The minute's start (Unix seconds).
    pub minute: i64,
    pub entries: u64,
}

impl Store {
    /// Events for the console, newest doors first: all of them, or those
    /// `organizer` (base58) organizes; at most `limit`.
    pub async fn console_events(
        &self,
        organizer: Option<&str>,
        limit: u32,
    ) -> Result<Vec<CachedEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM events WHERE ($1 = '' OR organizer = $1)
             ORDER BY doors_open DESC, event_id DESC LIMIT $2",
        )
        .bind(organizer.unwrap_or_default().to_owned())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// The boxes enrolled for an event, by gate then enrolment.
    pub async fn devices_of_event(&self, event_id: u64) -> Result<Vec<DeviceRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT device_id, gate_number, agent_version, hostname, enrolled_at, revoked_at,
                    last_seen_at, backlog, clock_skew_secs
             FROM devices WHERE event_id = $1 ORDER BY gate_number, enrolled_at",
        )
        .bind(i64_of(event_id)?)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeviceRow {
                    device_id: r.try_get("device_id")?,
                    gate: u32::try_from(r.try_get::<i64, _>("gate_number")?).map_err(corrupt)?,
                    agent_version: r.try_get("agent_version")?,
                    hostname: r.try_get("hostname")?,
                    enrolled_at: r.try_get("enrolled_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                    last_seen_at: r.try_get("last_seen_at")?,
                    backlog: u64::try_from(r.try_get::<i64, _>("backlog")?).map_err(corrupt)?,
                    clock_skew_secs: r.try_get("clock_skew_secs")?,
                })
            })
            .collect()
    }

    /// Refused scans of an event by reason, most frequent first.
    pub async fn refusals_by_reason(&self, event_id: u64) -> Result<Vec<RefusalCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT outcome, COUNT(*) AS n FROM scans WHERE event_id = $1 AND opened = 0
             GROUP BY outcome ORDER BY n DESC, outcome",
        )
        .bind(i64_of(event_id)?)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RefusalCount {
                    reason: r.try_get("outcome")?,
                    count: u64::try_from(r.try_get::<i64, _>("n")?).map_err(corrupt)?,
                })
            })
            .collect()
    }

    /// Admissions (entries that opened the gate) per minute by the gates'
    /// clocks, for the minutes from `since` (Unix seconds) on that had any.
    pub async fn entries_per_minute(
        &self,
        event_id: u64,
        since: i64,
    ) -> Result<Vec<MinuteCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT CAST(scanned_at_ms / 60000 AS BIGINT) AS m, COUNT(*) AS n FROM scans
             WHERE event_id = $1 AND opened = 1 AND direction = 'entry' AND scanned_at_ms >= $2
             GROUP BY CAST(scanned_at_ms / 60000 AS BIGINT) ORDER BY m",
        )
        .bind(i64_of(event_id)?)
        .bind(since.saturating_mul(1000))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MinuteCount {
                    minute: r.try_get::<i64, _>("m")?.saturating_mul(60),
                    entries: u64::try_from(r.try_get::<i64, _>("n")?).map_err(corrupt)?,
                })
            })
            .collect()
    }
}
