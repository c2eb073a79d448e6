//! The organizer's side of the gates' cache: events and tickets, the
//! change feed (`cache_changes`) every write appends to, and what gates pull
//! from it: the cursor, a full snapshot, and deltas after a cursor.

use std::str::FromStr;

use shared::PublicKeyBytes;
use shared::wire::{
    CacheChange, CacheDelta, CacheSnapshot, CachedEvent, CachedTicket, PROTOCOL_VERSION,
};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::presence::{UNDONE_ADMISSIONS, presence_from_row, undone_from_row};
use super::{Store, StoreError, corrupt, enum_parse, enum_text, i64_of, json, unjson};

impl Store {
    /// Inserts or replaces an event and tells its gates.
    pub async fn upsert_event(
        &self,
        event: &CachedEvent,
        organizer: &PublicKeyBytes,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO events (event_id, organizer, name, status, doors_open, doors_close,
                 issuer_keys, tiers, reentry, unknown_tickets, holder_proof, ends_at,
                 end_grace_secs, tier_gates, undo_window_secs)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
             ON CONFLICT (event_id) DO UPDATE SET name = excluded.name, status = excluded.status,
                 doors_open = excluded.doors_open, doors_close = excluded.doors_close,
                 issuer_keys = excluded.issuer_keys, tiers = excluded.tiers,
                 reentry = excluded.reentry, unknown_tickets = excluded.unknown_tickets,
                 holder_proof = excluded.holder_proof, ends_at = excluded.ends_at,
                 end_grace_secs = excluded.end_grace_secs, tier_gates = excluded.tier_gates,
                 undo_window_secs = excluded.undo_window_secs",
        )
        .bind(i64_of(event.event_id)?)
        .bind(organizer.to_base58())
        .bind(&event.name)
        .bind(enum_text(&event.status))
        .bind(event.doors.opens_at)
        .bind(event.doors.closes_at)
        .bind(json(&event.issuer_keys))
        .bind(json(&event.tiers))
        .bind(json(&event.reentry))
        .bind(enum_text(&event.unknown_tickets))
        .bind(json(&event.holder_proof))
        .bind(event.ends_at)
        .bind(i64::from(event.end_grace_secs))
        .bind(json(&event.tier_gates))
        .bind(i64::from(event.undo_window_secs))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO cache_changes (event_id, kind, ticket_id, changed_at) VALUES ($1, 'event', NULL, $2)",
        )
        .bind(i64_of(event.event_id)?)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Inserts or replaces tickets (a mint, a transfer, a freeze, a
    /// revocation...) in one transaction, and tells the gates.
    pub async fn upsert_tickets(
        &self,
        tickets: &[CachedTicket],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for t in tickets {
            sqlx::query(
                "INSERT INTO tickets (event_id, ticket_id, tier, owner, generation, status)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (event_id, ticket_id) DO UPDATE SET tier = excluded.tier,
                     owner = excluded.owner, generation = excluded.generation, status = excluded.status",
            )
            .bind(i64_of(t.event_id)?)
            .bind(i64::from(t.ticket_id))
            .bind(i64::from(t.tier))
            .bind(t.owner.to_base58())
            .bind(i64::from(t.generation))
            .bind(enum_text(&t.status))
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO cache_changes (event_id, kind, ticket_id, changed_at) VALUES ($1, 'ticket', $2, $3)",
            )
            .bind(i64_of(t.event_id)?)
            .bind(i64::from(t.ticket_id))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn event(&self, event_id: u64) -> Result<Option<CachedEvent>, StoreError> {
        let row = sqlx::query("SELECT * FROM events WHERE event_id = $1")
            .bind(i64_of(event_id)?)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| event_from_row(&r)).transpose()
    }

    pub async fn ticket(
        &self,
        event_id: u64,
        ticket_id: u32,
    ) -> Result<Option<CachedTicket>, StoreError> {
        let row = sqlx::query("SELECT * FROM tickets WHERE event_id = $1 AND ticket_id = $2")
            .bind(i64_of(event_id)?)
            .bind(i64::from(ticket_id))
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| ticket_from_row(&r)).transpose()
    }

    /// The newest cursor of an event's change feed (0 when nothing changed yet).
    pub async fn cursor(&self, event_id: u64) -> Result<u64, StoreError> {
        let row = sqlx::query(
            "SELECT COALESCE(MAX(seq), 0) AS seq FROM cache_changes WHERE event_id = $1",
        )
        .bind(i64_of(event_id)?)
        .fetch_one(&self.pool)
        .await?;
        u64::try_from(row.try_get::<i64, _>("seq")?).map_err(corrupt)
    }

    /// Everything a gate of `event_id` caches, at the current cursor.
    pub async fn snapshot(&self, event_id: u64, now: i64) -> Result<CacheSnapshot, StoreError> {
        let mut tx = self.pool.begin().await?;
        let cursor_row = sqlx::query(
            "SELECT COALESCE(MAX(seq), 0) AS seq FROM cache_changes WHERE event_id = $1",
        )
        .bind(i64_of(event_id)?)
        .fetch_one(&mut *tx)
        .await?;
        let cursor = u64::try_from(cursor_row.try_get::<i64, _>("seq")?).map_err(corrupt)?;
        let events = sqlx::query("SELECT * FROM events WHERE event_id = $1")
            .bind(i64_of(event_id)?)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(event_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let tickets = sqlx::query("SELECT * FROM tickets WHERE event_id = $1 ORDER BY ticket_id")
            .bind(i64_of(event_id)?)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(ticket_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let presence =
            sqlx::query("SELECT * FROM ticket_presence WHERE event_id = $1 ORDER BY ticket_id")
                .bind(i64_of(event_id)?)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| presence_from_row(event_id, r))
                .collect::<Result<Vec<_>, _>>()?;
        let undone = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{UNDONE_ADMISSIONS} ORDER BY s.ticket_id, s.scanned_at_ms"
        )))
        .bind(i64_of(event_id)?)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| undone_from_row(event_id, r))
        .collect::<Result<Vec<_>, _>>()?;
        tx.commit().await?;
        Ok(CacheSnapshot {
            v: PROTOCOL_VERSION,
            cursor,
            generated_at: now,
            events,
            tickets,
            presence,
            undone,
        })
    }

    /// Changes after `cursor`, at most `limit` feed entries; each changed
    /// event or ticket appears once, in its current state.
    pub async fn delta(
        &self,
        event_id: u64,
        cursor: u64,
        limit: u32,
        now: i64,
    ) -> Result<CacheDelta, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, kind FROM cache_changes WHERE event_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(i64_of(event_id)?)
        .bind(i64_of(cursor)?)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        let has_more = rows.len() > limit as usize;
        let mut to_cursor = cursor;
        let mut event_changed = false;
        for row in rows.iter().take(limit as usize) {
            to_cursor = u64::try_from(row.try_get::<i64, _>("seq")?).map_err(corrupt)?;
            event_changed |= row.try_get::<String, _>("kind")? == "event";
        }
        let mut changes = Vec::new();
        if event_changed && let Some(event) = self.event(event_id).await? {
            changes.push(CacheChange::Event(event));
        }
        // Each changed ticket once, in its current state.
        let tickets = sqlx::query(
            "SELECT * FROM tickets WHERE event_id = $1 AND ticket_id IN (
                 SELECT ticket_id FROM cache_changes
                 WHERE event_id = $1 AND kind = 'ticket' AND seq > $2 AND seq <= $3)
             ORDER BY ticket_id",
        )
        .bind(i64_of(event_id)?)
        .bind(i64_of(cursor)?)
        .bind(i64_of(to_cursor)?)
        .fetch_all(&self.pool)
        .await?;
        for row in &tickets {
            changes.push(CacheChange::Ticket(ticket_from_row(row)?));
        }
        let presence = sqlx::query(
            "SELECT * FROM ticket_presence WHERE event_id = $1 AND ticket_id IN (
                 SELECT ticket_id FROM cache_changes
                 WHERE event_id = $1 AND kind = 'presence' AND seq > $2 AND seq <= $3)
             ORDER BY ticket_id",
        )
        .bind(i64_of(event_id)?)
        .bind(i64_of(cursor)?)
        .bind(i64_of(to_cursor)?)
        .fetch_all(&self.pool)
        .await?;
        for row in &presence {
            changes.push(CacheChange::Presence(presence_from_row(event_id, row)?));
        }
        // An undo changes its ticket's presence: with it go the ticket's
        // undone admissions, which other gates may still hold as "inside".
        if !presence.is_empty() {
            let undone = sqlx::query(sqlx::AssertSqlSafe(format!(
                "{UNDONE_ADMISSIONS} AND s.ticket_id IN (
                     SELECT ticket_id FROM cache_changes
                     WHERE event_id = $1 AND kind = 'presence' AND seq > $2 AND seq <= $3)
                 ORDER BY s.ticket_id, s.scanned_at_ms"
            )))
            .bind(i64_of(event_id)?)
            .bind(i64_of(cursor)?)
            .bind(i64_of(to_cursor)?)
            .fetch_all(&self.pool)
            .await?;
            for row in &undone {
                changes.push(CacheChange::Undone(undone_from_row(event_id, row)?));
            }
        }
        Ok(CacheDelta {
            v: PROTOCOL_VERSION,
            from_cursor: cursor,
            to_cursor,
            generated_at: now,
            changes,
            has_more,
        })
    }
}

pub(super) fn event_from_row(r: &AnyRow) -> Result<CachedEvent, StoreError> {
    Ok(CachedEvent {
        event_id: u64::try_from(r.try_get::<i64, _>("event_id")?).map_err(corrupt)?,
        name: r.try_get("name")?,
        status: enum_parse(&r.try_get::<String, _>("status")?)?,
        doors: shared::DoorsWindow {
            opens_at: r.try_get("doors_open")?,
            closes_at: r.try_get("doors_close")?,
        },
        issuer_keys: unjson(&r.try_get::<String, _>("issuer_keys")?)?,
        tiers: unjson(&r.try_get::<String, _>("tiers")?)?,
        reentry: unjson(&r.try_get::<String, _>("reentry")?)?,
        unknown_tickets: enum_parse(&r.try_get::<String, _>("unknown_tickets")?)?,
        holder_proof: unjson(&r.try_get::<String, _>("holder_proof")?)?,
        ends_at: r.try_get("ends_at")?,
        end_grace_secs: u32::try_from(r.try_get::<i64, _>("end_grace_secs")?).map_err(corrupt)?,
        tier_gates: unjson(&r.try_get::<String, _>("tier_gates")?)?,
        undo_window_secs: u32::try_from(r.try_get::<i64, _>("undo_window_secs")?)
            .map_err(corrupt)?,
    })
}

/// A `tickets` row as the gates see it (for queries built elsewhere).
pub fn ticket_of_row(r: &AnyRow) -> Result<CachedTicket, StoreError> {
    ticket_from_row(r)
}

pub(crate) fn ticket_from_row(r: &AnyRow) -> Result<CachedTicket, StoreError> {
    Ok(CachedTicket {
        event_id: u64::try_from(r.try_get::<i64, _>("event_id")?).map_err(corrupt)?,
        ticket_id: u32::try_from(r.try_get::<i64, _>("ticket_id")?).map_err(corrupt)?,
        tier: u8::try_from(r.try_get::<i64, _>("tier")?).map_err(corrupt)?,
        owner: PublicKeyBytes::from_str(&r.try_get::<String, _>("owner")?).map_err(corrupt)?,
        generation: u32::try_from(r.try_get::<i64, _>("generation")?).map_err(corrupt)?,
        status: enum_parse(&r.try_get::<String, _>("status")?)?,
    })
}
