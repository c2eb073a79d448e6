//! Where each holder is: one `ticket_presence` row per ticket that went
//! through a gate, written when a scan changes it and announced on the
//! gates' change feed.

use shared::Presence;
use shared::presence::PresenceFold;
use shared::wire::{PresenceUpdate, UndoneAdmission};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, corrupt, i64_of, param_list};

/// Presence rows per statement (6 values each).
const PRESENCE_ROWS_PER_STATEMENT: usize = 200;

/// A ticket's presence as stored in `ticket_presence`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct PresenceRow {
    pub(super) inside: bool,
    pub(super) since: i64,
    pub(super) gate: i64,
    pub(super) entries: i64,
}

impl PresenceRow {
    /// The row of a ticket whose opening scans folded to `folded`.
    pub(super) fn of(folded: &PresenceFold) -> Self {
        let (inside, since, gate) = match folded.presence {
            Presence::NeverEntered => (false, 0, 0),
            Presence::Inside { since, gate } => (true, since, gate),
            Presence::Outside { since, gate } => (false, since, gate),
        };
        Self {
            inside,
            since,
            gate: i64::from(gate),
            entries: i64::from(folded.entries),
        }
    }
}

impl Store {
    /// Writes each ticket's presence where it changed, and puts the change
    /// in the feed the gates' deltas are cut from.
    pub(super) async fn store_presence(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        event_id: u64,
        presence: &[(i64, PresenceRow)],
    ) -> Result<(), StoreError> {
        let event = i64_of(event_id)?;
        let mut changed: Vec<&(i64, PresenceRow)> = Vec::new();
        // Rows are compared in chunks (one SELECT each) and written with
        // multi-row statements: an upload of 100 scans touches up to 100
        // tickets, and per-ticket statements were most of its cost.
        for chunk in presence.chunks(PRESENCE_ROWS_PER_STATEMENT) {
            let sql = format!(
                "SELECT ticket_id, inside, since, gate, entries FROM ticket_presence
                 WHERE event_id = $1 AND ticket_id IN ({})",
                param_list(2, chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(event);
            for (ticket, _) in chunk {
                query = query.bind(*ticket);
            }
            let mut old = std::collections::HashMap::new();
            for r in query.fetch_all(&mut **tx).await? {
                old.insert(
                    r.try_get::<i64, _>("ticket_id")?,
                    PresenceRow {
                        inside: r.try_get::<i64, _>("inside")? == 1,
                        since: r.try_get("since")?,
                        gate: r.try_get("gate")?,
                        entries: r.try_get("entries")?,
                    },
                );
            }
            changed.extend(
                chunk
                    .iter()
                    .filter(|(ticket, p)| old.get(ticket) != Some(p)),
            );
        }
        for chunk in changed.chunks(PRESENCE_ROWS_PER_STATEMENT) {
            let rows = |width: usize| {
                (0..chunk.len())
                    .map(|i| {
                        let cols: Vec<String> =
                            (1..=width).map(|k| format!("${}", i * width + k)).collect();
                        format!("({})", cols.join(","))
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let sql = format!(
                "INSERT INTO ticket_presence (event_id, ticket_id, inside, since, gate, entries)
                 VALUES {}
                 ON CONFLICT (event_id, ticket_id) DO UPDATE SET inside = excluded.inside,
                     since = excluded.since, gate = excluded.gate, entries = excluded.entries",
                rows(6)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (ticket, p) in chunk {
                query = query
                    .bind(event)
                    .bind(*ticket)
                    .bind(i64::from(p.inside))
                    .bind(p.since)
                    .bind(p.gate)
                    .bind(p.entries);
            }
            query.execute(&mut **tx).await?;
            let sql = format!(
                "INSERT INTO cache_changes (event_id, kind, ticket_id, changed_at) VALUES {}",
                (0..chunk.len())
                    .map(|i| format!(
                        "(${}, 'presence', ${}, ${})",
                        i * 3 + 1,
                        i * 3 + 2,
                        i * 3 + 3
                    ))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (ticket, p) in chunk {
                query = query.bind(event).bind(*ticket).bind(p.since);
            }
            query.execute(&mut **tx).await?;
        }
        if !changed.is_empty() {
            self.presence_changed
                .store(true, std::sync::atomic::Ordering::Release);
        }
        Ok(())
    }
}

pub(super) fn presence_from_row(event_id: u64, r: &AnyRow) -> Result<PresenceUpdate, StoreError> {
    let since: i64 = r.try_get("since")?;
    let gate = u32::try_from(r.try_get::<i64, _>("gate")?).map_err(corrupt)?;
    let entries = u32::try_from(r.try_get::<i64, _>("entries")?).map_err(corrupt)?;
    Ok(PresenceUpdate {
        event_id,
        ticket_id: u32::try_from(r.try_get::<i64, _>("ticket_id")?).map_err(corrupt)?,
        presence: if entries == 0 {
            // Only unmatched exits: the holder never came in.
            Presence::NeverEntered
        } else if r.try_get::<i64, _>("inside")? == 1 {
            Presence::Inside { since, gate }
        } else {
            Presence::Outside { since, gate }
        },
        entries,
    })
}

/// The admissions of an event its gates undid, each with its ticket's
/// presence as [`presence_from_row`] reads it; `$1` is the event. Append
/// a condition on `s.ticket_id` to narrow it.
pub(super) const UNDONE_ADMISSIONS: &str =
    "SELECT s.ticket_id, s.gate AS undone_gate, s.scanned_at_ms,
         COALESCE(p.inside, 0) AS inside, COALESCE(p.since, 0) AS since,
         COALESCE(p.gate, 0) AS gate, COALESCE(p.entries, 0) AS entries
     FROM scans s LEFT JOIN ticket_presence p
         ON p.event_id = s.event_id AND p.ticket_id = s.ticket_id
     WHERE s.event_id = $1 AND s.opened = 1 AND s.direction = 'entry'
         AND s.voided_by IS NOT NULL";

/// One row of [`UNDONE_ADMISSIONS`].
pub(super) fn undone_from_row(event_id: u64, r: &AnyRow) -> Result<UndoneAdmission, StoreError> {
    Ok(UndoneAdmission {
        gate: u32::try_from(r.try_get::<i64, _>("undone_gate")?).map_err(corrupt)?,
        // As the presence fold rounds an admission's time.
        since: r.try_get::<i64, _>("scanned_at_ms")?.div_euclid(1000),
        now: presence_from_row(event_id, r)?,
    })
}
