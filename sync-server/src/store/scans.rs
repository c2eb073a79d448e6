//! Scan ingest and what follows from it: conflict marks and (through
//! `presence`) where each holder is, then the readings of stored scans:
//! conflicts, per-gate figures, a ticket's state for online validation, and
//! counts.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use shared::presence::{self, OpeningScan, PresenceFold};
use shared::wire::{JournalAck, PROTOCOL_VERSION, ScanRecord};
use shared::{Direction, Presence};
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::gates::{Device, NonceUse};
use super::presence::{PresenceRow, presence_from_row};
use super::{Backend, ReplayState, Store, StoreError, corrupt, enum_text, i64_of, param_list};

/// Scans per multi-row INSERT: 14 values each stays far below both
/// backends' limits on bound parameters.
const INGEST_ROWS_PER_STATEMENT: usize = 100;

/// A scan that conflicts with an earlier admission of the same ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Conflict {
    pub scan_id: Uuid,
    pub conflicts_with: Uuid,
    pub event_id: u64,
    pub ticket_id: u32,
    pub gate: u32,
    pub earlier_gate: u32,
    pub scanned_at_ms: i64,
    pub earlier_scanned_at_ms: i64,
}

/// Live figures for one gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GateCounts {
    pub gate: u32,
    pub name: String,
    /// Admissions, less those the gate undid.
    pub admitted: u64,
    pub rejected: u64,
    /// Admissions the gate undid (the holder did not pass).
    pub undone: u64,
    pub exits: u64,
    /// Admissions through this gate whose holder has not left since.
    pub inside: u64,
    pub conflicts: u64,
    pub last_seen_at: Option<i64>,
    /// Unsent journal entries the gate reported on its last request.
    pub backlog: u64,
    /// How far the clock of the gate's most recently heard box is from the
    /// server's, in seconds (positive: ahead), from its last signed request.
    pub clock_skew_secs: Option<i64>,
}

/// What the replay worker makes of a new scan: admissions of known tickets
/// go on chain, everything else stays here.
fn replay_state_of(scan: &ScanRecord) -> &'static str {
    match (scan.opened, scan.ticket_id) {
        (true, Some(_)) => ReplayState::Ingested,
        _ => ReplayState::None,
    }
    .as_str()
}

impl Store {
    /// PostgreSQL plans an upload's ticket lookups from its statistics.
    /// Scan tables grow from empty within minutes when doors open, faster
    /// than autovacuum re-analyses them, and with statistics that still say
    /// "empty" the lookups read the event's rows by `event_id` and filter:
    /// measured, 12,000 rows read per upload instead of 100 at 25,000 scans.
    /// So once the tables have doubled since their last ANALYZE (and hold
    /// 1,000 new scans), one is run in the background.
    fn keep_statistics_fresh(&self, stored: u64) {
        use std::sync::atomic::Ordering;
        if self.backend != Backend::Postgres || stored == 0 {
            return;
        }
        let since = self.scans_since_analyze.fetch_add(stored, Ordering::AcqRel) + stored;
        let at = self.scans_at_analyze.load(Ordering::Acquire);
        if since < at.max(1000) {
            return;
        }
        // One instance of this process runs it; the counter restarts now.
        if self
            .scans_since_analyze
            .compare_exchange(since, 0, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        self.scans_at_analyze.store(at + since, Ordering::Release);
        let pool = self.pool.clone();
        tokio::spawn(async move {
            if let Err(e) = sqlx::query("ANALYZE scans, ticket_presence")
                .execute(&pool)
                .await
            {
                tracing::warn!(error = %e, "could not refresh the scan tables' statistics");
            }
        });
    }

    /// Stores a gate's scans. Each scan id is stored once: a retried upload
    /// changes nothing. Admissions of a ticket that is already inside by the
    /// scans' own clocks (no exit in between) are kept and marked as
    /// conflicts. Returns the acknowledgement for the gate.
    pub async fn ingest(
        &self,
        device: &Device,
        scans: &[ScanRecord],
        now: i64,
    ) -> Result<JournalAck, StoreError> {
        self.ingest_inner(device, scans, now, None)
            .await?
            .map(|(ack, _)| ack)
            .ok_or_else(|| corrupt("ingest without a nonce cannot be refused"))
    }

    /// [`Store::ingest`], also returning the outcome codes of the scans that
    /// were new (for metrics).
    pub async fn ingest_counted(
        &self,
        device: &Device,
        scans: &[ScanRecord],
        now: i64,
    ) -> Result<(JournalAck, Vec<String>), StoreError> {
        self.ingest_inner(device, scans, now, None)
            .await?
            .ok_or_else(|| corrupt("ingest without a nonce cannot be refused"))
    }

    /// [`Store::ingest`] that also accepts the request's nonce in the same
    /// transaction: one durable commit per upload instead of two. `None`
    /// when the nonce was used before (nothing is stored then). Also returns
    /// the outcome codes of the scans that were new (for metrics).
    pub async fn ingest_request(
        &self,
        device: &Device,
        scans: &[ScanRecord],
        now: i64,
        request: &NonceUse,
    ) -> Result<Option<(JournalAck, Vec<String>)>, StoreError> {
        self.ingest_inner(device, scans, now, Some(request)).await
    }

    /// A multi-row insert of `chunk` with one `?` per value. SQLite looks a
    /// `$n` parameter up by name in a list, once per parameter when binding:
    /// quadratic in a 1,400-parameter insert (10% of ingest's CPU,
    /// measured). Plain `?` needs no lookup; every one is bound in order.
    fn insert_scans_sqlite<'q>(
        device: &Device,
        event_id: u64,
        chunk: &'q [ScanRecord],
        now: i64,
    ) -> Result<sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>, StoreError> {
        let row = format!("({})", ["?"; 15].join(","));
        let sql = format!(
            "INSERT INTO scans (scan_id, device_id, event_id, gate, direction, scanned_at_ms, source,
                 ticket_id, generation, tier, outcome, opened, received_at, replay_state, voids) VALUES {}
             ON CONFLICT (scan_id) DO NOTHING RETURNING ticket_id, opened, outcome",
            vec![row; chunk.len()].join(",")
        );
        // Only placeholders are formatted into the text; every value is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for scan in chunk {
            query = query
                .bind(scan.scan_id.to_string())
                .bind(device.device_id.to_string())
                .bind(i64_of(event_id)?)
                .bind(i64::from(device.gate_number))
                .bind(enum_text(&scan.direction))
                .bind(scan.scanned_at_ms)
                .bind(scan.source.clone())
                .bind(scan.ticket_id.map(i64::from))
                .bind(scan.generation.map(i64::from))
                .bind(scan.tier.map(i64::from))
                .bind(scan.outcome.clone())
                .bind(i64::from(scan.opened))
                .bind(now)
                .bind(replay_state_of(scan))
                .bind(scan.voids.map(|v| v.to_string()));
        }
        Ok(query)
    }

    /// The same insert for PostgreSQL with the rows as one JSON parameter
    /// (`json_to_recordset`): five parameters instead of 1,400 to encode,
    /// send and plan.
    fn insert_scans_postgres<'q>(
        device: &Device,
        event_id: u64,
        chunk: &'q [ScanRecord],
        now: i64,
    ) -> Result<sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>, StoreError> {
        let rows: Vec<serde_json::Value> = chunk
            .iter()
            .map(|scan| {
                serde_json::json!({
                    "scan_id": scan.scan_id.to_string(),
                    "direction": enum_text(&scan.direction),
                    "scanned_at_ms": scan.scanned_at_ms,
                    "source": scan.source,
                    "ticket_id": scan.ticket_id,
                    "generation": scan.generation,
                    "tier": scan.tier,
                    "outcome": scan.outcome,
                    "opened": i64::from(scan.opened),
                    "replay_state": replay_state_of(scan),
                    "voids": scan.voids.map(|v| v.to_string()),
                })
            })
            .collect();
        let query = sqlx::query(
            "INSERT INTO scans (scan_id, device_id, event_id, gate, direction, scanned_at_ms, source,
                 ticket_id, generation, tier, outcome, opened, received_at, replay_state, voids)
             SELECT r.scan_id, $2, $3, $4, r.direction, r.scanned_at_ms, r.source, r.ticket_id,
                 r.generation, r.tier, r.outcome, r.opened, $5, r.replay_state, r.voids
             FROM json_to_recordset($1::json) AS r(scan_id text, direction text,
                 scanned_at_ms bigint, source text, ticket_id bigint, generation bigint,
                 tier bigint, outcome text, opened bigint, replay_state text, voids text)
             ON CONFLICT (scan_id) DO NOTHING RETURNING ticket_id, opened, outcome",
        )
        .bind(serde_json::Value::Array(rows).to_string())
        .bind(device.device_id.to_string())
        .bind(i64_of(event_id)?)
        .bind(i64::from(device.gate_number))
        .bind(now);
        Ok(query)
    }

    async fn ingest_inner(
        &self,
        device: &Device,
        scans: &[ScanRecord],
        now: i64,
        request: Option<&NonceUse>,
    ) -> Result<Option<(JournalAck, Vec<String>)>, StoreError> {
        // A gate reports scans of its own event; they are filed under the
        // device's event whatever the record says.
        let event_id = device.event_id;
        let mut tx = self.pool.begin().await?;
        if let Some(request) = request
            && !self.accept_in(&mut tx, request).await?
        {
            return Ok(None);
        }
        let mut stored = 0u32;
        let mut new_outcomes: Vec<String> = Vec::new();
        let mut touched: Vec<u32> = Vec::new();
        for chunk in scans.chunks(INGEST_ROWS_PER_STATEMENT) {
            let query = match self.backend {
                Backend::Sqlite => Self::insert_scans_sqlite(device, event_id, chunk, now)?,
                Backend::Postgres => Self::insert_scans_postgres(device, event_id, chunk, now)?,
            };
            for row in query.fetch_all(&mut *tx).await? {
                stored += 1;
                new_outcomes.push(row.try_get::<String, _>("outcome")?);
                let opened: i64 = row.try_get("opened")?;
                if let (1, Some(ticket)) = (opened, row.try_get::<Option<i64>, _>("ticket_id")?) {
                    touched.push(u32::try_from(ticket).map_err(corrupt)?);
                }
            }
        }
        self.keep_statistics_fresh(u64::from(stored));
        touched.extend(self.apply_undos(&mut tx, device, scans, now).await?);
        touched.sort_unstable();
        touched.dedup();
        let mut conflicts = Vec::new();
        for chunk in touched.chunks(500) {
            conflicts.extend(self.recompute_conflicts(&mut tx, event_id, chunk).await?);
        }
        tx.commit().await?;
        let acked: Vec<Uuid> = scans.iter().map(|s| s.scan_id).collect();
        let batch: std::collections::HashSet<Uuid> = acked.iter().copied().collect();
        conflicts.retain(|id| batch.contains(id));
        Ok(Some((
            JournalAck {
                v: PROTOCOL_VERSION,
                stored,
                duplicates: u32::try_from(acked.len())
                    .unwrap_or(u32::MAX)
                    .saturating_sub(stored),
                acked,
                refused: Vec::new(),
                conflicts,
                server_time: now,
            },
            new_outcomes,
        )))
    }

    /// Folds each ticket's gate-opening scans (`shared::presence::fold`)
    /// and writes what the fold says: each scan's conflict and unmatched-exit
    /// marks (only rows whose marks change) and each ticket's presence.
    /// Scans that arrive late (a gate that was offline) slot in by their own
    /// time.
    async fn recompute_conflicts(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        event_id: u64,
        ticket_ids: &[u32],
    ) -> Result<Vec<Uuid>, StoreError> {
        let rows = opening_scans_query(event_id, ticket_ids)?
            .fetch_all(&mut **tx)
            .await?;
        // Each row as the pure fold sees it, with the marks stored now.
        let mut scans: Vec<(i64, OpeningScan)> = Vec::with_capacity(rows.len());
        let mut stored: HashMap<Uuid, (Option<String>, bool)> = HashMap::new();
        for row in &rows {
            let (ticket, scan) = opening_scan_of(row)?;
            stored.insert(
                scan.scan_id,
                (
                    row.try_get("conflict_of")?,
                    row.try_get::<i64, _>("unmatched_exit")? == 1,
                ),
            );
            scans.push((ticket, scan));
        }
        let mut conflicts = Vec::new();
        let mut changed: Vec<(Option<String>, bool, String)> = Vec::new();
        // Per ticket: where the holder is after its last scan.
        let mut presence: Vec<(i64, PresenceRow)> = Vec::new();
        let rules = self.fold_rules(tx, event_id).await?;
        for run in scans.chunk_by(|a, b| a.0 == b.0) {
            let folded = presence::fold_under(run.iter().map(|(_, scan)| scan), rules);
            for mark in &folded.marks {
                let new = (mark.conflict_of.map(|c| c.to_string()), mark.unmatched_exit);
                if stored.get(&mark.scan_id) != Some(&new) {
                    changed.push((new.0, new.1, mark.scan_id.to_string()));
                }
            }
            conflicts.extend(folded.conflicts());
            presence.push((run[0].0, PresenceRow::of(&folded)));
        }
        for (conflict_of, unmatched_exit, scan_id) in changed {
            sqlx::query(
                "UPDATE scans SET conflict_of = $1, unmatched_exit = $2 WHERE scan_id = $3",
            )
            .bind(conflict_of)
            .bind(i64::from(unmatched_exit))
            .bind(scan_id)
            .execute(&mut **tx)
            .await?;
        }
        self.store_presence(tx, event_id, &presence).await?;
        Ok(conflicts)
    }

    /// Each of `ticket_ids`' fold over every gate-opening scan stored; a
    /// ticket without such scans is absent.
    pub async fn folds(
        &self,
        event_id: u64,
        ticket_ids: &[u32],
    ) -> Result<HashMap<u32, PresenceFold>, StoreError> {
        let mut folds = HashMap::new();
        for chunk in ticket_ids.chunks(500) {
            let rows = opening_scans_query(event_id, chunk)?
                .fetch_all(&self.pool)
                .await?;
            let scans = rows
                .iter()
                .map(opening_scan_of)
                .collect::<Result<Vec<_>, _>>()?;
            for run in scans.chunk_by(|a, b| a.0 == b.0) {
                let ticket = u32::try_from(run[0].0).map_err(corrupt)?;
                folds.insert(ticket, presence::fold(run.iter().map(|(_, scan)| scan)));
            }
        }
        Ok(folds)
    }

    /// Conflicting admissions of an event, optionally at one gate only.
    pub async fn conflicts(
        &self,
        event_id: u64,
        gate: Option<u32>,
    ) -> Result<Vec<Conflict>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.scan_id, s.conflict_of, s.ticket_id, s.gate, s.scanned_at_ms,
                    e.gate AS earlier_gate, e.scanned_at_ms AS earlier_at
             FROM scans s JOIN scans e ON e.scan_id = s.conflict_of
             WHERE s.event_id = $1 AND s.conflict_of IS NOT NULL AND ($2 < 0 OR s.gate = $2 OR e.gate = $2)
             ORDER BY s.scanned_at_ms",
        )
        .bind(i64_of(event_id)?)
        .bind(gate.map_or(-1, i64::from))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Conflict {
                    scan_id: Uuid::parse_str(&r.try_get::<String, _>("scan_id")?)
                        .map_err(corrupt)?,
                    conflicts_with: Uuid::parse_str(&r.try_get::<String, _>("conflict_of")?)
                        .map_err(corrupt)?,
                    event_id,
                    ticket_id: u32::try_from(r.try_get::<i64, _>("ticket_id")?).map_err(corrupt)?,
                    gate: u32::try_from(r.try_get::<i64, _>("gate")?).map_err(corrupt)?,
                    earlier_gate: u32::try_from(r.try_get::<i64, _>("earlier_gate")?)
                        .map_err(corrupt)?,
                    scanned_at_ms: r.try_get("scanned_at_ms")?,
                    earlier_scanned_at_ms: r.try_get("earlier_at")?,
                })
            })
            .collect()
    }

    /// Per-gate figures for an event. `online_within` decides nothing here;
    /// the API adds online/offline from `last_seen_at`.
    pub async fn gate_counts(&self, event_id: u64) -> Result<Vec<GateCounts>, StoreError> {
        let gates = sqlx::query(
            "SELECT g.number, g.name,
                (SELECT MAX(d.last_seen_at) FROM devices d WHERE d.event_id = g.event_id AND d.gate_number = g.number) AS last_seen,
                (SELECT d.clock_skew_secs FROM devices d WHERE d.event_id = g.event_id AND d.gate_number = g.number
                   AND d.revoked_at IS NULL AND d.last_seen_at IS NOT NULL ORDER BY d.last_seen_at DESC LIMIT 1) AS clock_skew,
                (SELECT CAST(COALESCE(SUM(d.backlog), 0) AS BIGINT) FROM devices d WHERE d.event_id = g.event_id AND d.gate_number = g.number AND d.revoked_at IS NULL) AS backlog,
                (SELECT COUNT(*) FROM scans s WHERE s.event_id = g.event_id AND s.gate = g.number AND s.opened = 1 AND s.direction = 'entry' AND s.voided_by IS NULL) AS admitted,
                (SELECT COUNT(*) FROM scans s WHERE s.event_id = g.event_id AND s.gate = g.number AND s.opened = 0 AND s.voids IS NULL) AS rejected,
                (SELECT COUNT(*) FROM scans s WHERE s.event_id = g.event_id AND s.gate = g.number AND s.voided_by IS NOT NULL) AS undone,
                (SELECT COUNT(*) FROM scans s WHERE s.event_id = g.event_id AND s.gate = g.number AND s.opened = 1 AND s.direction = 'exit') AS exits,
                (SELECT COUNT(*) FROM scans s WHERE s.event_id = g.event_id AND s.gate = g.number AND s.conflict_of IS NOT NULL) AS conflicts
             FROM gates g WHERE g.event_id = $1 ORDER BY g.number",
        )
        .bind(i64_of(event_id)?)
        .fetch_all(&self.pool)
        .await?;
        // Inside: per ticket, the latest gate-opening scan is an entry; it
        // counts for the gate it went through.
        let inside_rows = sqlx::query(
            "SELECT s.gate, COUNT(*) AS n FROM scans s
             WHERE s.event_id = $1 AND s.opened = 1 AND s.direction = 'entry' AND s.ticket_id IS NOT NULL
               AND s.voided_by IS NULL
               AND NOT EXISTS (SELECT 1 FROM scans later WHERE later.event_id = s.event_id
                   AND later.ticket_id = s.ticket_id AND later.opened = 1 AND later.voided_by IS NULL
                   AND (later.scanned_at_ms > s.scanned_at_ms
                        OR (later.scanned_at_ms = s.scanned_at_ms AND later.scan_id > s.scan_id)))
             GROUP BY s.gate",
        )
        .bind(i64_of(event_id)?)
        .fetch_all(&self.pool)
        .await?;
        let mut inside = std::collections::HashMap::new();
        for r in inside_rows {
            inside.insert(r.try_get::<i64, _>("gate")?, r.try_get::<i64, _>("n")?);
        }
        let count = |r: &AnyRow, col: &str| -> Result<u64, StoreError> {
            u64::try_from(r.try_get::<i64, _>(col)?).map_err(corrupt)
        };
        gates
            .iter()
            .map(|r| {
                let number: i64 = r.try_get("number")?;
                Ok(GateCounts {
                    gate: u32::try_from(number).map_err(corrupt)?,
                    name: r.try_get("name")?,
                    admitted: count(r, "admitted")?,
                    rejected: count(r, "rejected")?,
                    undone: count(r, "undone")?,
                    exits: count(r, "exits")?,
                    inside: u64::try_from(inside.get(&number).copied().unwrap_or(0))
                        .map_err(corrupt)?,
                    conflicts: count(r, "conflicts")?,
                    last_seen_at: r.try_get("last_seen")?,
                    backlog: count(r, "backlog")?,
                    clock_skew_secs: r.try_get("clock_skew")?,
                })
            })
            .collect()
    }

    /// A ticket as a gate would hold it: the organizer's fields plus where the
    /// holder is by every gate's scans. For online validation.
    pub async fn ticket_state(
        &self,
        event_id: u64,
        ticket_id: u32,
    ) -> Result<Option<shared::TicketState>, StoreError> {
        let Some(ticket) = self.ticket(event_id, ticket_id).await? else {
            return Ok(None);
        };
        let presence =
            sqlx::query("SELECT * FROM ticket_presence WHERE event_id = $1 AND ticket_id = $2")
                .bind(i64_of(event_id)?)
                .bind(i64::from(ticket_id))
                .fetch_optional(&self.pool)
                .await?
                .map(|r| presence_from_row(event_id, &r))
                .transpose()?;
        Ok(Some(shared::TicketState {
            event_id,
            ticket_id,
            tier: ticket.tier,
            owner: ticket.owner,
            generation: ticket.generation,
            status: ticket.status,
            presence: presence.map_or(Presence::NeverEntered, |p| p.presence),
            entries: presence.map_or(0, |p| p.entries),
        }))
    }

    /// How many tickets of an event the gates know.
    pub async fn ticket_count(&self, event_id: u64) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM tickets WHERE event_id = $1")
            .bind(i64_of(event_id)?)
            .fetch_one(&self.pool)
            .await?;
        u64::try_from(row.try_get::<i64, _>("n")?).map_err(corrupt)
    }

    /// How many scans of an event are stored (all outcomes).
    pub async fn scan_count(&self, event_id: u64) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM scans WHERE event_id = $1")
            .bind(i64_of(event_id)?)
            .fetch_one(&self.pool)
            .await?;
        u64::try_from(row.try_get::<i64, _>("n")?).map_err(corrupt)
    }
}

/// The gate-opening scans of `ticket_ids`, grouped by ticket, with the marks
/// stored on them.
fn opening_scans_query(
    event_id: u64,
    ticket_ids: &[u32],
) -> Result<sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>, StoreError> {
    let sql = format!(
        "SELECT scan_id, ticket_id, direction, conflict_of, unmatched_exit, scanned_at_ms, gate,
             voided_by FROM scans WHERE event_id = $1 AND opened = 1 AND ticket_id IN ({})
         ORDER BY ticket_id, scanned_at_ms, gate, scan_id",
        param_list(2, ticket_ids.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(i64_of(event_id)?);
    for id in ticket_ids {
        query = query.bind(i64::from(*id));
    }
    Ok(query)
}

/// One row of [`opening_scans_query`] as the fold sees it, with its ticket.
fn opening_scan_of(row: &AnyRow) -> Result<(i64, OpeningScan), StoreError> {
    let direction: String = row.try_get("direction")?;
    let scan_id: String = row.try_get("scan_id")?;
    Ok((
        row.try_get("ticket_id")?,
        OpeningScan {
            scan_id: Uuid::parse_str(&scan_id).map_err(corrupt)?,
            gate: u32::try_from(row.try_get::<i64, _>("gate")?).map_err(corrupt)?,
            direction: if direction == "exit" {
                Direction::Exit
            } else {
                Direction::Entry
            },
            at_ms: row.try_get("scanned_at_ms")?,
            voided: row.try_get::<Option<String>, _>("voided_by")?.is_some(),
        },
    ))
}
