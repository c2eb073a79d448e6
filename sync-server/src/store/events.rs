//! Events as buyers see them (`events` joined with `event_details`): the
//! details an organizer gives beyond what gates need, the public listing
//! with its filters, who organizes an event, and a holder's tickets.

use shared::wire::{CachedTicket, TierInfo};
use shared::{EventStatus, HolderProofPolicy, ReentryPolicy, TierGates, UnknownTicketPolicy};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, corrupt, enum_parse, i64_of, ticket_from_row, unjson};

/// The columns of an [`EventRecord`]; callers add the WHERE clause.
const EVENT_RECORD: &str = "SELECT e.event_id, e.name, e.organizer, e.status, e.tiers,
        e.reentry, e.unknown_tickets, e.holder_proof, e.tier_gates, e.end_grace_secs,
        e.undo_window_secs, d.description, d.venue, d.starts_at, d.ends_at, d.capacity, d.nft
     FROM events e JOIN event_details d ON d.event_id = e.event_id";

/// Every filter of the listing is always bound; an absent one matches
/// everything, so one statement serves every combination.
const LIST_FILTERS: &str = "d.ends_at > $1 AND e.status = $2
     AND LOWER(e.name) LIKE $3 ESCAPE '\\' AND LOWER(d.venue) LIKE $4 ESCAPE '\\'
     AND d.starts_at >= $5 AND d.starts_at < $6";

/// Most tickets [`Store::tickets_of_owner`] returns.
const MAX_OWNER_TICKETS: i64 = 1000;

/// An event with its details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub event_id: u64,
    pub name: String,
    pub description: String,
    pub venue: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub capacity: u64,
    /// The organizer's wallet (base58).
    pub organizer: String,
    pub status: EventStatus,
    pub tiers: Vec<TierInfo>,
    /// The NFT standard's wire name (`spl_token`, `token_2022_metadata`).
    pub nft: String,
    /// The check-in rules, as gates receive them.
    pub reentry: ReentryPolicy,
    pub unknown_tickets: UnknownTicketPolicy,
    pub holder_proof: HolderProofPolicy,
    pub tier_gates: Vec<TierGates>,
    pub end_grace_secs: u32,
    pub undo_window_secs: u32,
}

/// What an organizer gives about an event that gates do not need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDetails {
    pub description: String,
    pub venue: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub capacity: u32,
    /// The NFT standard's wire name.
    pub nft: &'static str,
}

/// Changed details of a live event; `description: None` keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetailsChange {
    pub description: Option<String>,
    pub venue: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub capacity: u32,
}

/// The public listing's filters: text is matched as a part, any case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only events not ended at this time.
    pub now: i64,
    pub name: Option<String>,
    pub venue: Option<String>,
    pub starts_after: Option<i64>,
    pub starts_before: Option<i64>,
}

/// `%text%` for LIKE, with the pattern characters in `text` taken
/// literally (escaped with `\`).
fn contains_pattern(text: &str) -> String {
    let escaped = text
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

fn record_from_row(r: &AnyRow) -> Result<EventRecord, StoreError> {
    Ok(EventRecord {
        event_id: u64::try_from(r.try_get::<i64, _>("event_id")?).map_err(corrupt)?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        venue: r.try_get("venue")?,
        starts_at: r.try_get("starts_at")?,
        ends_at: r.try_get("ends_at")?,
        capacity: u64::try_from(r.try_get::<i64, _>("capacity")?).map_err(corrupt)?,
        organizer: r.try_get("organizer")?,
        status: enum_parse(&r.try_get::<String, _>("status")?)?,
        tiers: unjson(&r.try_get::<String, _>("tiers")?)?,
        nft: r.try_get("nft")?,
        reentry: unjson(&r.try_get::<String, _>("reentry")?)?,
        unknown_tickets: enum_parse(&r.try_get::<String, _>("unknown_tickets")?)?,
        holder_proof: unjson(&r.try_get::<String, _>("holder_proof")?)?,
        tier_gates: unjson(&r.try_get::<String, _>("tier_gates")?)?,
        end_grace_secs: u32::try_from(r.try_get::<i64, _>("end_grace_secs")?).map_err(corrupt)?,
        undo_window_secs: u32::try_from(r.try_get::<i64, _>("undo_window_secs")?)
            .map_err(corrupt)?,
    })
}

impl Store {
    /// Records an event's details; they stay invisible until the event row
    /// itself exists, so they can be written before the chain is asked.
    pub async fn insert_event_details(
        &self,
        event_id: u64,
        details: &EventDetails,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO event_details (event_id, description, venue, starts_at, ends_at, capacity, created_at, nft)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(i64_of(event_id)?)
        .bind(details.description.clone())
        .bind(details.venue.clone())
        .bind(details.starts_at)
        .bind(details.ends_at)
        .bind(i64::from(details.capacity))
        .bind(now)
        .bind(details.nft)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Changes the details of an event after the chain took the change.
    pub async fn update_event_details(
        &self,
        event_id: u64,
        change: &DetailsChange,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE event_details SET description = COALESCE($2, description), venue = $3,
                 starts_at = $4, ends_at = $5, capacity = $6
             WHERE event_id = $1",
        )
        .bind(i64_of(event_id)?)
        .bind(change.description.clone())
        .bind(change.venue.clone())
        .bind(change.starts_at)
        .bind(change.ends_at)
        .bind(i64::from(change.capacity))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An event with its details, if both exist.
    pub async fn event_record(&self, event_id: u64) -> Result<Option<EventRecord>, StoreError> {
        let sql = format!("{EVENT_RECORD} WHERE e.event_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(i64_of(event_id)?)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// One page of active events matching `filter`, soonest first, and how
    /// many match on all pages.
    pub async fn list_events(
        &self,
        filter: &EventFilter,
        limit: u32,
        offset: u32,
    ) -> Result<(Vec<EventRecord>, u64), StoreError> {
        let bind = |sql: String| {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(filter.now)
                .bind(super::enum_text(&EventStatus::Active))
                .bind(contains_pattern(filter.name.as_deref().unwrap_or("")))
                .bind(contains_pattern(filter.venue.as_deref().unwrap_or("")))
                .bind(filter.starts_after.unwrap_or(i64::MIN))
                .bind(filter.starts_before.unwrap_or(i64::MAX))
        };
        let rows = bind(format!(
            "{EVENT_RECORD} WHERE {LIST_FILTERS} ORDER BY d.starts_at, e.event_id LIMIT $7 OFFSET $8"
        ))
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .fetch_all(&self.pool)
        .await?;
        let total: i64 = bind(format!(
            "SELECT COUNT(*) AS n FROM events e JOIN event_details d ON d.event_id = e.event_id
             WHERE {LIST_FILTERS}"
        ))
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        let events = rows.iter().map(record_from_row).collect::<Result<_, _>>()?;
        Ok((events, u64::try_from(total).unwrap_or_default()))
    }

    /// The wallet (base58) recorded as an event's organizer.
    pub async fn event_organizer(&self, event_id: u64) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT organizer FROM events WHERE event_id = $1")
            .bind(i64_of(event_id)?)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("organizer")).transpose()?)
    }

    /// A wallet's tickets (base58 owner), by event and ticket id, at most
    /// a thousand.
    pub async fn tickets_of_owner(&self, owner: &str) -> Result<Vec<CachedTicket>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM tickets WHERE owner = $1 ORDER BY event_id, ticket_id LIMIT $2",
        )
        .bind(owner.to_owned())
        .bind(MAX_OWNER_TICKETS)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ticket_from_row).collect()
    }

    /// Sets the event's capacity counter to `capacity` if no more seats
    /// than that are taken (sold or held for paying buyers); `false` when
    /// too many are.
    pub async fn resize_capacity(&self, event_id: u64, capacity: u32) -> Result<bool, StoreError> {
        let moved = sqlx::query(
            "UPDATE inventory SET supply = $2 WHERE event_id = $1 AND tier = $3 AND taken <= $2",
        )
        .bind(i64_of(event_id)?)
        .bind(i64::from(capacity))
        .bind(super::EVENT_CAPACITY)
        .execute(&self.pool)
        .await?;
        Ok(moved.rows_affected() == 1)
    }

    /// Sets the event's capacity counter back to `capacity` whatever is
    /// taken (undoing [`Store::resize_capacity`] when the chain refused).
    pub async fn restore_capacity(&self, event_id: u64, capacity: u32) -> Result<(), StoreError> {
        sqlx::query("UPDATE inventory SET supply = $2 WHERE event_id = $1 AND tier = $3")
            .bind(i64_of(event_id)?)
            .bind(i64::from(capacity))
            .bind(super::EVENT_CAPACITY)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
