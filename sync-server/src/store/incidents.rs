//! Incidents: admissions an offline gate or handheld made that the server,
//! with its fresher data, would have refused. Recorded at ingest, once per
//! scan, and listed for the organizer next to conflicts.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use uuid::Uuid;

use shared::wire::CachedTicket;

use super::{Store, StoreError, corrupt, i64_of, param_list, ticket_from_row};

/// One admission the server would have refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Incident {
    pub scan_id: Uuid,
    pub event_id: u64,
    pub ticket_id: Option<u32>,
    /// The gate (by number) that admitted.
    pub gate: u32,
    /// The refusal the server's rules give it now: `revoked`, `frozen`,
    /// `refunded`, `stale_generation`, `owner_mismatch`, `unknown_ticket`,
    /// `event_cancelled`, `doors_not_open`, `doors_closed`, `event_ended`,
    /// `tier_not_allowed`; `exit_without_entry`: an exit of someone with
    /// no recorded entry since their last exit, which moved nobody; or
    /// `undone_after_chain`: the gate undid an admission (the holder did not
    /// pass) that had already gone to the chain, which still counts it
    /// (`scan_id` is then the undo's).
    pub reason: String,
    /// When the gate admitted, by its clock (Unix milliseconds).
    pub scanned_at_ms: i64,
    /// When the server found it (Unix seconds; for an exit without entry,
    /// when the exit was uploaded).
    pub recorded_at: i64,
}

impl Store {
    /// The tickets of `event_id` among `ids` that the server knows, as gates
    /// cache them (the organizer's standing, for reviewing admissions).
    pub async fn tickets_by_id(
        &self,
        event_id: u64,
        ids: &[u32],
    ) -> Result<Vec<CachedTicket>, StoreError> {
        let mut found = Vec::new();
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT * FROM tickets WHERE event_id = $1 AND ticket_id IN ({})",
                param_list(2, chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(i64_of(event_id)?);
            for id in chunk {
                query = query.bind(i64::from(*id));
            }
            for row in query.fetch_all(&self.pool).await? {
                found.push(ticket_from_row(&row)?);
            }
        }
        Ok(found)
    }

    /// Of `scan_ids`, those already stored (a retried upload's).
    pub async fn stored_scan_ids(&self, scan_ids: &[Uuid]) -> Result<Vec<Uuid>, StoreError> {
        let mut found = Vec::new();
        for chunk in scan_ids.chunks(500) {
            let sql = format!(
                "SELECT scan_id FROM scans WHERE scan_id IN ({})",
                param_list(1, chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id.to_string());
            }
            for row in query.fetch_all(&self.pool).await? {
                found
                    .push(Uuid::parse_str(&row.try_get::<String, _>("scan_id")?).map_err(corrupt)?);
            }
        }
        Ok(found)
    }

    /// Records incidents, one per scan id (recording one again changes
    /// nothing). They are written before their scans, so a crash in between
    /// loses none; [`Store::incidents`] lists only those whose scan is
    /// stored. Returns the reasons of those that were new.
    pub async fn record_incidents(
        &self,
        incidents: &[Incident],
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut new = Vec::new();
        for incident in incidents {
            let done = sqlx::query(
                "INSERT INTO incidents (scan_id, event_id, ticket_id, gate, reason, scanned_at_ms, recorded_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (scan_id) DO NOTHING",
            )
            .bind(incident.scan_id.to_string())
            .bind(i64_of(incident.event_id)?)
            .bind(incident.ticket_id.map(i64::from))
            .bind(i64::from(incident.gate))
            .bind(incident.reason.clone())
            .bind(incident.scanned_at_ms)
            .bind(incident.recorded_at)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() > 0 {
                new.push(incident.reason.clone());
            }
        }
        tx.commit().await?;
        Ok(new)
    }

    /// An event's incidents whose scans are stored, and its exits without
    /// entry (as the presence fold flags them), oldest scan first.
    pub async fn incidents(&self, event_id: u64) -> Result<Vec<Incident>, StoreError> {
        let rows = sqlx::query(
            "SELECT i.scan_id, i.ticket_id, i.gate, i.reason, i.scanned_at_ms, i.recorded_at
             FROM incidents i JOIN scans s ON s.scan_id = i.scan_id
             WHERE i.event_id = $1 AND s.event_id = $1
             UNION ALL
             SELECT scan_id, ticket_id, gate, 'exit_without_entry', scanned_at_ms, received_at
             FROM scans WHERE event_id = $1 AND unmatched_exit = 1
             ORDER BY 5, 1",
        )
        .bind(i64_of(event_id)?)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Incident {
                    scan_id: Uuid::parse_str(&r.try_get::<String, _>("scan_id")?)
                        .map_err(corrupt)?,
                    event_id,
                    ticket_id: r
                        .try_get::<Option<i64>, _>("ticket_id")?
                        .map(u32::try_from)
                        .transpose()
                        .map_err(corrupt)?,
                    gate: u32::try_from(r.try_get::<i64, _>("gate")?).map_err(corrupt)?,
                    reason: r.try_get("reason")?,
                    scanned_at_ms: r.try_get("scanned_at_ms")?,
                    recorded_at: r.try_get("recorded_at")?,
                })
            })
            .collect()
    }
}
