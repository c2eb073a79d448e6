//! An event's books for its organizer: purchases counted by method, status
//! and tier ([`Store::sales_lines`]) and the attendance of each ticket
//! ([`Store::attendance`]). Read-only.

use sqlx::Row;

use super::{Store, StoreError, corrupt, i64_of, ticket_from_row};

/// Purchases of one event with the same method, status, tier and currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesLine {
    /// `card` or `sol`.
    pub method: String,
    /// The purchase status's stored name (`fulfilled`, `refund_due`, ...).
    pub status: String,
    pub tier: u8,
    /// `SOL` (amount in lamports) or the card currency (smallest unit).
    pub currency: String,
    pub count: u64,
    pub amount: u64,
}

/// One ticket's attendance: who holds it and what its scans did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttendanceRow {
    pub ticket: shared::wire::CachedTicket,
    /// The first admission (ms since the epoch, the gate's clock).
    pub first_entry_ms: Option<i64>,
    /// The gate of that admission.
    pub first_entry_gate: Option<u32>,
    /// Admissions (the gate opened to come in).
    pub entries: u64,
    /// Exits recorded.
    pub exits: u64,
}

fn count(r: &sqlx::any::AnyRow, column: &str) -> Result<u64, StoreError> {
    let v: Option<i64> = r.try_get(column)?;
    u64::try_from(v.unwrap_or(0)).map_err(corrupt)
}

impl Store {
    /// The purchases of `event_id`, counted and summed per (method, status,
    /// tier, currency), by tier, method and status.
    pub async fn sales_lines(&self, event_id: u64) -> Result<Vec<SalesLine>, StoreError> {
        let rows = sqlx::query(
            "SELECT method, status, tier, currency, COUNT(*) AS n,
                    CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS total
             FROM purchases WHERE event_id = $1
             GROUP BY method, status, tier, currency
             ORDER BY tier, method, status, currency",
        )
        .bind(i64_of(event_id)?)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SalesLine {
                    method: r.try_get("method")?,
                    status: r.try_get("status")?,
                    tier: u8::try_from(r.try_get::<i64, _>("tier")?).map_err(corrupt)?,
                    currency: r.try_get("currency")?,
                    count: count(r, "n")?,
                    amount: count(r, "total")?,
                })
            })
            .collect()
    }

    /// Tickets of `event_id` per tier, as the gates know them (minted by
    /// the organizer or bought).
    pub async fn tickets_per_tier(&self, event_id: u64) -> Result<Vec<(u8, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT tier, COUNT(*) AS n FROM tickets WHERE event_id = $1
             GROUP BY tier ORDER BY tier",
        )
        .bind(i64_of(event_id)?)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    u8::try_from(r.try_get::<i64, _>("tier")?).map_err(corrupt)?,
                    count(r, "n")?,
                ))
            })
            .collect()
    }

    /// Every ticket of `event_id` in id order with its first admission (time
    /// and gate) and its admissions and exits.
    pub async fn attendance(&self, event_id: u64) -> Result<Vec<AttendanceRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.*, a.entries, a.exits, a.first_entry_ms,
                 (SELECT s.gate FROM scans s
                  WHERE s.event_id = t.event_id AND s.ticket_id = t.ticket_id
                      AND s.opened = 1 AND s.direction = 'entry' AND s.voided_by IS NULL
                  ORDER BY s.scanned_at_ms, s.gate, s.scan_id LIMIT 1) AS first_entry_gate
             FROM tickets t
             LEFT JOIN (
                 SELECT ticket_id,
                     SUM(CASE WHEN direction = 'entry' THEN 1 ELSE 0 END) AS entries,
                     SUM(CASE WHEN direction = 'exit' THEN 1 ELSE 0 END) AS exits,
                     MIN(CASE WHEN direction = 'entry' THEN scanned_at_ms END) AS first_entry_ms
                 FROM scans WHERE event_id = $1 AND opened = 1 AND ticket_id IS NOT NULL
                     AND voided_by IS NULL
                 GROUP BY ticket_id
             ) a ON a.ticket_id = t.ticket_id
             WHERE t.event_id = $1 ORDER BY t.ticket_id",
        )
        .bind(i64_of(event_id)?)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let gate: Option<i64> = r.try_get("first_entry_gate")?;
                Ok(AttendanceRow {
                    ticket: ticket_from_row(r)?,
                    first_entry_ms: r.try_get("first_entry_ms")?,
                    first_entry_gate: gate.map(u32::try_from).transpose().map_err(corrupt)?,
                    entries: count(r, "entries")?,
                    exits: count(r, "exits")?,
                })
            })
            .collect()
    }
}
