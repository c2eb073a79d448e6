//! Conflicts as an organizer reviews them: both scans of each conflict side
//! by side (gate, time, device, direction, verdict) with the resolution
//! recorded for it, if any (`conflict_resolutions`).

use serde::{Deserialize, Serialize};
use sqlx::Row;
use uuid::Uuid;

use super::{Store, StoreError, corrupt, enum_parse, enum_text, i64_of};

/// What the organizer decided about a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConflictOutcome {
    /// One holder scanned twice (e.g. at two gates while both were offline):
    /// nothing wrong.
    SamePerson,
    /// Two people came in on one ticket; the second is refused entry.
    TicketShared,
    /// Something else: the note says what.
    Other,
}

/// One scan of a conflict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ConflictScan {
    pub scan_id: Uuid,
    pub gate: u32,
    /// When the gate scanned it (Unix milliseconds, the gate's clock).
    pub scanned_at_ms: i64,
    /// The gate box that scanned it.
    pub device_id: String,
    /// `entry` or `exit`.
    pub direction: String,
    /// The gate's verdict code (`admitted`, ...).
    pub outcome: String,
}

/// A recorded resolution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ConflictResolution {
    pub outcome: ConflictOutcome,
    /// The organizer's words (may be empty).
    pub note: String,
    /// Who recorded it: an organizer's wallet (base58) or `admin`.
    pub resolved_by: String,
    /// Unix seconds.
    pub resolved_at: i64,
}

/// A conflict with both its scans and its resolution so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ConflictReview {
    /// The conflict's id: the later scan's.
    pub conflict_id: Uuid,
    pub event_id: u64,
    pub ticket_id: u32,
    /// The admission that came first.
    pub earlier: ConflictScan,
    /// The admission that conflicts with it.
    pub later: ConflictScan,
    pub resolution: Option<ConflictResolution>,
}

/// A resolution to record.
#[derive(Debug, Clone)]
pub struct NewResolution<'a> {
    pub event_id: u64,
    pub scan_id: Uuid,
    pub conflicts_with: Uuid,
    pub outcome: ConflictOutcome,
    pub note: &'a str,
    pub resolved_by: &'a str,
    pub resolved_at: i64,
}

fn scan_of(r: &sqlx::any::AnyRow, prefix: &str) -> Result<ConflictScan, StoreError> {
    let col = |name: &str| format!("{prefix}{name}");
    Ok(ConflictScan {
        scan_id: Uuid::parse_str(&r.try_get::<String, _>(col("scan_id").as_str())?)
            .map_err(corrupt)?,
        gate: u32::try_from(r.try_get::<i64, _>(col("gate").as_str())?).map_err(corrupt)?,
        scanned_at_ms: r.try_get(col("scanned_at_ms").as_str())?,
        device_id: r.try_get(col("device_id").as_str())?,
        direction: r.try_get(col("direction").as_str())?,
        outcome: r.try_get(col("outcome").as_str())?,
    })
}

impl Store {
    /// An event's conflicts, oldest first, each with both scans and its
    /// resolution.
    pub async fn conflict_reviews(&self, event_id: u64) -> Result<Vec<ConflictReview>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.ticket_id,
                    s.scan_id AS l_scan_id, s.gate AS l_gate, s.scanned_at_ms AS l_scanned_at_ms,
                    s.device_id AS l_device_id, s.direction AS l_direction, s.outcome AS l_outcome,
                    e.scan_id AS e_scan_id, e.gate AS e_gate, e.scanned_at_ms AS e_scanned_at_ms,
                    e.device_id AS e_device_id, e.direction AS e_direction, e.outcome AS e_outcome,
                    r.outcome AS r_outcome, r.note AS r_note, r.resolved_by AS r_by,
                    r.resolved_at AS r_at
             FROM scans s
             JOIN scans e ON e.scan_id = s.conflict_of
             LEFT JOIN conflict_resolutions r ON r.scan_id = s.scan_id
             WHERE s.event_id = $1 AND s.conflict_of IS NOT NULL
             ORDER BY s.scanned_at_ms, s.scan_id",
        )
        .bind(i64_of(event_id)?)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let later = scan_of(r, "l_")?;
                let resolution = match r.try_get::<Option<String>, _>("r_outcome")? {
                    None => None,
                    Some(outcome) => Some(ConflictResolution {
                        outcome: enum_parse(&outcome)?,
                        note: r.try_get("r_note")?,
                        resolved_by: r.try_get("r_by")?,
                        resolved_at: r.try_get("r_at")?,
                    }),
                };
                Ok(ConflictReview {
                    conflict_id: later.scan_id,
                    event_id,
                    ticket_id: u32::try_from(r.try_get::<i64, _>("ticket_id")?).map_err(corrupt)?,
                    earlier: scan_of(r, "e_")?,
                    later,
                    resolution,
                })
            })
            .collect()
    }

    /// Records (or replaces) the resolution of a conflict.
    pub async fn record_conflict_resolution(
        &self,
        resolution: &NewResolution<'_>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO conflict_resolutions
                (scan_id, event_id, conflicts_with, outcome, note, resolved_by, resolved_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (scan_id) DO UPDATE SET
                conflicts_with = excluded.conflicts_with, outcome = excluded.outcome,
                note = excluded.note, resolved_by = excluded.resolved_by,
                resolved_at = excluded.resolved_at",
        )
        .bind(resolution.scan_id.to_string())
        .bind(i64_of(resolution.event_id)?)
        .bind(resolution.conflicts_with.to_string())
        .bind(enum_text(&resolution.outcome))
        .bind(resolution.note)
        .bind(resolution.resolved_by)
        .bind(resolution.resolved_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
