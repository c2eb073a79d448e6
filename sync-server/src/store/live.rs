//! Figures of an event's live view that the per-gate counts do not give:
//! refusals by reason and admissions per minute.

use serde::Serialize;
use shared::wire::CachedEvent;
use sqlx::Row;

use super::feed::{event_from_row, ticket_of_row};
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

/// A ticket as the attendee list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttendeeRow {
    pub ticket: shared::wire::CachedTicket,
    /// Inside now (`None`: never came in).
    pub inside: Option<bool>,
    /// Admissions so far.
    pub entries: u64,
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

    /// One page of an event's tickets, by id: all, or those whose id is
    /// `search` or whose holder's wallet starts with it. With the number
    /// matching.
    pub async fn attendees(
        &self,
        event_id: u64,
        search: &str,
        limit: u32,
        offset: u32,
    ) -> Result<(Vec<AttendeeRow>, u64), StoreError> {
        let id: i64 = search.parse().unwrap_or(-1);
        let prefix = format!("{}%", search.replace(['\\', '%', '_'], ""));
        let filter = "t.event_id = $1 AND ($2 = '' OR t.ticket_id = $3 OR t.owner LIKE $4)";
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT t.*, p.inside AS p_inside, p.entries AS p_entries FROM tickets t
             LEFT JOIN ticket_presence p ON p.event_id = t.event_id AND p.ticket_id = t.ticket_id
             WHERE {filter} ORDER BY t.ticket_id LIMIT $5 OFFSET $6"
        )))
        .bind(i64_of(event_id)?)
        .bind(search.to_owned())
        .bind(id)
        .bind(prefix.clone())
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .fetch_all(&self.pool)
        .await?;
        let total: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) AS n FROM tickets t WHERE {filter}"
        )))
        .bind(i64_of(event_id)?)
        .bind(search.to_owned())
        .bind(id)
        .bind(prefix)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        let rows = rows
            .iter()
            .map(|r| {
                let entries = r
                    .try_get::<Option<i64>, _>("p_entries")?
                    .map_or(0, |e| u64::try_from(e).unwrap_or(0));
                Ok(AttendeeRow {
                    ticket: ticket_of_row(r)?,
                    // No entry counted (only unmatched exits, or an admission
                    // undone at the turnstile): the holder never came in.
                    inside: r
                        .try_get::<Option<i64>, _>("p_inside")?
                        .filter(|_| entries > 0)
                        .map(|i| i == 1),
                    entries,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((rows, u64::try_from(total).unwrap_or(0)))
    }

    /// Refused scans of an event by reason, most frequent first.
    pub async fn refusals_by_reason(&self, event_id: u64) -> Result<Vec<RefusalCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT outcome, COUNT(*) AS n FROM scans WHERE event_id = $1 AND opened = 0
                 AND voids IS NULL
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
                 AND voided_by IS NULL
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
