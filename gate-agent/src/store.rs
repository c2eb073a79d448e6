//! The gate's durable store: one SQLite file (WAL, `synchronous=FULL`) with the
//! ticket cache and the scan journal.
//!
//! The rule this module exists for: a scan's ticket-state change and its
//! journal row are written in ONE transaction, and that transaction is
//! committed before anything opens the turnstile. A crash at any point leaves
//! either both or neither.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use shared::admission::undo::{
    LastAdmission, UNDO_OUTCOME, UndoRefusal, judge_undo, state_after_undo,
};
use shared::wire::{
    CacheChange, CacheDelta, CacheSnapshot, CachedEvent, CachedTicket, PresenceUpdate, ScanRecord,
    UndoneAdmission,
};
use shared::{Direction, Presence, PublicKeyBytes, TicketState, TicketStatus, presence};
use uuid::Uuid;

const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    event_id INTEGER PRIMARY KEY,
    body     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tickets (
    event_id  INTEGER NOT NULL,
    ticket_id INTEGER NOT NULL,
    inside    INTEGER NOT NULL,
    state     TEXT NOT NULL,
    PRIMARY KEY (event_id, ticket_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS journal (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    scan_id       TEXT NOT NULL UNIQUE,
    gate          INTEGER NOT NULL,
    direction     TEXT NOT NULL,
    scanned_at_ms INTEGER NOT NULL,
    source        TEXT NOT NULL,
    event_id      INTEGER,
    ticket_id     INTEGER,
    generation    INTEGER,
    tier          INTEGER,
    outcome       TEXT NOT NULL,
    opened        INTEGER NOT NULL,
    detail        TEXT NOT NULL,
    uploaded      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS journal_by_time ON journal (scanned_at_ms);
CREATE INDEX IF NOT EXISTS journal_unsent ON journal (uploaded) WHERE uploaded = 0;
";

/// Schema 2, the turnstile undo: an admission's row keeps the ticket's
/// state from before it (`prior_state`, JSON; NULL for a ticket the cache
/// did not know), so an undo can put the holder back; an undo's row names
/// the admission it voids (`voids`).
const SCHEMA_2: &str = "
ALTER TABLE journal ADD COLUMN prior_state TEXT;
ALTER TABLE journal ADD COLUMN voids TEXT;
CREATE INDEX journal_voids ON journal (voids) WHERE voids IS NOT NULL;
";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "database {path} was written by a newer agent (schema {found}, this build knows {SCHEMA_VERSION})"
    )]
    NewerSchema { path: PathBuf, found: i64 },
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("stored row is not readable: {0}")]
    Corrupt(String),
    #[error("writing the export: {0}")]
    Export(#[from] std::io::Error),
}

impl StoreError {
    /// Whether the error means the disk holding the store has no space left
    /// (`SQLITE_FULL`, or `ENOSPC` from a plain file write). Staff are told
    /// "storage full" rather than a database error for this one: it is the
    /// failure a full data partition gives, and freeing space cures it.
    pub fn is_storage_full(&self) -> bool {
        match self {
            Self::Open { source, .. } | Self::Sql(source) => matches!(
                source,
                rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::DiskFull
            ),
            Self::Export(e) => e.kind() == std::io::ErrorKind::StorageFull,
            Self::NewerSchema { .. } | Self::Corrupt(_) => false,
        }
    }
}

/// Open handle on the store file.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// What `cache info` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CacheInfo {
    pub events: Vec<EventSummary>,
    pub tickets: u64,
    pub inside: u64,
    pub cursor: Option<u64>,
    /// When the server generated the snapshot (Unix seconds).
    pub generated_at: Option<i64>,
    /// When this gate imported it (Unix milliseconds).
    pub imported_at_ms: Option<i64>,
    pub signer: Option<String>,
    pub journal_entries: u64,
    pub journal_unsent: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventSummary {
    pub event_id: u64,
    pub name: String,
}

/// What an import changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    pub events: usize,
    pub tickets: usize,
    /// Tickets whose local presence (scanned here) was kept over the snapshot's.
    pub kept_local_presence: usize,
}

/// Counts for the status page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub admitted: u64,
    pub rejected: u64,
    pub exits: u64,
    pub inside: u64,
    pub unsent: u64,
}

/// The journal's backlog as counted at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    /// Rows not acknowledged by the server.
    pub unsent: u64,
    /// The journal's last row (`seq`) when counted: rows after it are not in
    /// `unsent` yet, whoever reads the count later.
    pub through_seq: i64,
}

/// One journal row as exported: the wire record plus the staff-facing detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub seq: i64,
    #[serde(flatten)]
    pub record: ScanRecord,
    pub detail: String,
    pub uploaded: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

impl Store {
    /// Opens (creating if needed) the store, with durability settings applied.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(open_err)?;
        // WAL lets `cache info`, `journal export` and the status page read while
        // the daemon writes; FULL makes every commit survive a power cut.
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(%mode, "database is not in WAL mode");
        }
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
            .map_err(open_err)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(open_err)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path: path.to_owned(),
                found: version,
            });
        }
        // Each step and its version in one transaction: a power cut leaves
        // the file at the old version or the new, never between. A store at
        // the current version is not written to here: opening it must work
        // on a full disk, so that the gate can still read its cache and say
        // why it refuses scans rather than fail to start.
        conn.execute_batch(&format!("BEGIN; {SCHEMA} COMMIT;"))
            .map_err(open_err)?;
        if version < 2 {
            conn.execute_batch(&format!("BEGIN; {SCHEMA_2} PRAGMA user_version=2; COMMIT;"))
                .map_err(open_err)?;
        }
        Ok(Self {
            conn,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the cache with a snapshot, in one transaction. Presence that this
    /// gate recorded is kept when it is newer than the snapshot's view (the
    /// server may not have heard of this gate's scans yet).
    pub fn import_snapshot(
        &mut self,
        snapshot: &CacheSnapshot,
        signer: &PublicKeyBytes,
        now_ms: i64,
    ) -> Result<ImportSummary, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut local: HashMap<(u64, u32), TicketState> = HashMap::new();
        {
            let mut stmt = tx.prepare("SELECT state FROM tickets")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            for row in rows {
                let state: TicketState = serde_json::from_str(&row?)
                    .map_err(|e| StoreError::Corrupt(format!("ticket state: {e}")))?;
                local.insert((state.event_id, state.ticket_id), state);
            }
        }
        tx.execute("DELETE FROM events", [])?;
        tx.execute("DELETE FROM tickets", [])?;
        {
            let mut ins = tx.prepare("INSERT INTO events (event_id, body) VALUES (?1, ?2)")?;
            for event in &snapshot.events {
                let body =
                    serde_json::to_string(event).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                ins.execute(params![event.event_id as i64, body])?;
            }
        }
        let mut kept = 0;
        {
            let mut ins = tx.prepare(
                "INSERT OR REPLACE INTO tickets (event_id, ticket_id, inside, state) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            let server_view: HashMap<(u64, u32), &PresenceUpdate> = snapshot
                .presence
                .iter()
                .map(|p| ((p.event_id, p.ticket_id), p))
                .collect();
            let mut undone_of: HashMap<(u64, u32), Vec<&UndoneAdmission>> = HashMap::new();
            for undone in &snapshot.undone {
                undone_of
                    .entry((undone.now.event_id, undone.now.ticket_id))
                    .or_default()
                    .push(undone);
            }
            for ticket in &snapshot.tickets {
                let mut state = fresh_state(ticket);
                if let Some(prior) = local.get(&(ticket.event_id, ticket.ticket_id))
                    && prior.entries > 0
                {
                    state.presence = prior.presence;
                    state.entries = prior.entries;
                    kept += 1;
                }
                if let Some(update) = server_view.get(&(ticket.event_id, ticket.ticket_id)) {
                    presence::merge(&mut state, update);
                }
                for undone in undone_of
                    .get(&(ticket.event_id, ticket.ticket_id))
                    .into_iter()
                    .flatten()
                {
                    presence::forget_undone(&mut state, undone);
                }
                write_state(&mut ins, &state)?;
            }
        }
        for (key, value) in [
            ("cursor", snapshot.cursor.to_string()),
            ("generated_at", snapshot.generated_at.to_string()),
            ("imported_at_ms", now_ms.to_string()),
            ("signer", signer.to_base58()),
        ] {
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                params![key, value],
            )?;
        }
        tx.commit()?;
        Ok(ImportSummary {
            events: snapshot.events.len(),
            tickets: snapshot.tickets.len(),
            kept_local_presence: kept,
        })
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    pub fn events(&self) -> Result<Vec<CachedEvent>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT body FROM events ORDER BY event_id")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.map(|row| {
            serde_json::from_str(&row?).map_err(|e| StoreError::Corrupt(format!("event: {e}")))
        })
        .collect()
    }

    pub fn ticket_state(
        &self,
        event_id: u64,
        ticket_id: u32,
    ) -> Result<Option<TicketState>, StoreError> {
        read_state(&self.conn, event_id, ticket_id)
    }

    /// Runs `decide` against the stored state of the scanned ticket and writes
    /// the outcome (new ticket state, if any, and the journal row) in ONE
    /// transaction. Returns only after the commit is durable.
    pub fn record_scan<F>(&mut self, decide: F) -> Result<RecordedScan, StoreError>
    where
        F: FnOnce(&dyn Fn(u64, u32) -> Option<TicketState>) -> ScanOutcome,
    {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let lookup_error = std::cell::RefCell::new(None);
        let outcome = {
            let lookup = |event_id: u64, ticket_id: u32| match read_state(&tx, event_id, ticket_id)
            {
                Ok(state) => state,
                Err(e) => {
                    *lookup_error.borrow_mut() = Some(e);
                    None
                }
            };
            decide(&lookup)
        };
        if let Some(e) = lookup_error.into_inner() {
            return Err(e);
        }
        let r = &outcome.record;
        // An admission keeps where the holder was before it, for an undo.
        let prior_state = match (r.opened, r.direction, r.event_id, r.ticket_id) {
            (true, Direction::Entry, Some(event_id), Some(ticket_id)) => {
                read_state(&tx, event_id, ticket_id)?
                    .map(|prior| serde_json::to_string(&prior))
                    .transpose()
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?
            }
            _ => None,
        };
        if let Some(state) = &outcome.next_state {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO tickets (event_id, ticket_id, inside, state) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            write_state(&mut stmt, state)?;
        }
        let seq = {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO journal (scan_id, gate, direction, scanned_at_ms, source, event_id, \
                 ticket_id, generation, tier, outcome, opened, detail, prior_state) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?;
            stmt.execute(params![
                r.scan_id.to_string(),
                r.gate,
                direction_text(r.direction),
                r.scanned_at_ms,
                r.source,
                r.event_id.map(|v| v as i64),
                r.ticket_id,
                r.generation,
                r.tier,
                r.outcome,
                r.opened,
                outcome.detail,
                prior_state,
            ])?;
            tx.last_insert_rowid()
        };
        tx.commit()?;
        Ok(RecordedScan { seq, outcome })
    }

    /// Voids this gate's last admission (the holder did not pass) if the
    /// event's undo window allows it now: in ONE transaction the ticket goes
    /// back to where it was before the admission and an undo row naming the
    /// admission joins the journal (uploaded like any scan). Returns the
    /// undo's row, or why the undo is refused (nothing is written then).
    pub fn undo_last_admission(
        &mut self,
        request: &UndoRequest,
    ) -> Result<Result<UndoDone, UndoRefusal>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let last = tx
            .query_row(
                "SELECT j.scan_id, j.scanned_at_ms, j.event_id, j.ticket_id, j.generation, j.tier, \
                 j.prior_state, EXISTS (SELECT 1 FROM journal u WHERE u.voids = j.scan_id) \
                 FROM journal j WHERE j.gate = ?1 AND j.opened = 1 AND j.direction = 'entry' \
                 ORDER BY j.seq DESC LIMIT 1",
                [request.gate],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Option<i64>>(2)?,
                        r.get::<_, Option<u32>>(3)?,
                        r.get::<_, Option<u32>>(4)?,
                        r.get::<_, Option<u8>>(5)?,
                        r.get::<_, Option<String>>(6)?,
                        r.get::<_, bool>(7)?,
                    ))
                },
            )
            .optional()?;
        let judged = judge_undo(
            request.window_secs,
            last.as_ref().map(|l| LastAdmission {
                admitted_at_ms: l.1,
                undone: l.7,
            }),
            request.now_ms,
        );
        let Some((admission, admitted_at_ms, event_id, ticket_id, generation, tier, prior, _)) =
            last
        else {
            return Ok(Err(judged.err().unwrap_or(UndoRefusal::NothingToUndo)));
        };
        if let Err(refusal) = judged {
            return Ok(Err(refusal));
        }
        let (Some(event_id), Some(ticket_id)) = (event_id, ticket_id) else {
            return Ok(Err(UndoRefusal::HolderMoved));
        };
        let event_id = event_id as u64;
        let Some(current) = read_state(&tx, event_id, ticket_id)? else {
            return Ok(Err(UndoRefusal::HolderMoved));
        };
        let prior: Option<TicketState> = prior
            .map(|p| serde_json::from_str(&p))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("prior state: {e}")))?;
        let restored =
            match state_after_undo(&current, prior.as_ref(), request.gate, admitted_at_ms) {
                Ok(state) => state,
                Err(refusal) => return Ok(Err(refusal)),
            };
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO tickets (event_id, ticket_id, inside, state) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            write_state(&mut stmt, &restored)?;
        }
        let voids = Uuid::parse_str(&admission)
            .map_err(|e| StoreError::Corrupt(format!("scan id {admission}: {e}")))?;
        let record = ScanRecord {
            scan_id: request.undo_id,
            gate: request.gate,
            direction: Direction::Entry,
            scanned_at_ms: request.now_ms,
            source: request.source.clone(),
            event_id: Some(event_id),
            ticket_id: Some(ticket_id),
            generation,
            tier,
            outcome: UNDO_OUTCOME.to_owned(),
            opened: false,
            voids: Some(voids),
        };
        let detail = format!("Admission undone: ticket {ticket_id} may be scanned again");
        tx.execute(
            "INSERT INTO journal (scan_id, gate, direction, scanned_at_ms, source, event_id, \
             ticket_id, generation, tier, outcome, opened, detail, voids) \
             VALUES (?1, ?2, 'entry', ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, ?10, ?11)",
            params![
                record.scan_id.to_string(),
                record.gate,
                record.scanned_at_ms,
                record.source,
                event_id as i64,
                ticket_id,
                generation,
                tier,
                record.outcome,
                detail,
                voids.to_string(),
            ],
        )?;
        let seq = tx.last_insert_rowid();
        tx.commit()?;
        Ok(Ok(UndoDone {
            seq,
            record,
            detail,
        }))
    }

    pub fn counts(&self) -> Result<Counts, StoreError> {
        let (admitted, rejected, exits, unsent) = self.conn.query_row(
            "SELECT \
               COALESCE(SUM(opened = 1 AND direction = 'entry' AND NOT EXISTS \
                 (SELECT 1 FROM journal u WHERE u.voids = journal.scan_id)), 0), \
               COALESCE(SUM(opened = 0 AND voids IS NULL), 0), \
               COALESCE(SUM(opened = 1 AND direction = 'exit'), 0), \
               COALESCE(SUM(uploaded = 0), 0) FROM journal",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            },
        )?;
        let inside: i64 =
            self.conn
                .query_row("SELECT COUNT(*) FROM tickets WHERE inside = 1", [], |r| {
                    r.get(0)
                })?;
        Ok(Counts {
            admitted: admitted as u64,
            rejected: rejected as u64,
            exits: exits as u64,
            inside: inside as u64,
            unsent: unsent as u64,
        })
    }

    pub fn cache_info(&self) -> Result<CacheInfo, StoreError> {
        let events = self
            .events()?
            .into_iter()
            .map(|e| EventSummary {
                event_id: e.event_id,
                name: e.name,
            })
            .collect();
        let tickets: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM tickets", [], |r| r.get(0))?;
        let counts = self.counts()?;
        let journal_entries: i64 =
            self.conn
                .query_row("SELECT COUNT(*) FROM journal", [], |r| r.get(0))?;
        let num = |k: &str| -> Result<Option<i64>, StoreError> {
            Ok(self.meta(k)?.and_then(|v| v.parse().ok()))
        };
        Ok(CacheInfo {
            events,
            tickets: tickets as u64,
            inside: counts.inside,
            cursor: num("cursor")?.map(|v| v as u64),
            generated_at: num("generated_at")?,
            imported_at_ms: num("imported_at_ms")?,
            signer: self.meta("signer")?,
            journal_entries: journal_entries as u64,
            journal_unsent: counts.unsent,
        })
    }

    /// Journal rows in order, from `since_ms` (inclusive) when given.
    pub fn journal(&self, since_ms: Option<i64>) -> Result<Vec<JournalEntry>, StoreError> {
        self.journal_rows("scanned_at_ms >= ?1", since_ms.unwrap_or(i64::MIN), -1)
    }

    /// The oldest `limit` journal rows not yet acknowledged by the server.
    pub fn unsent_journal(&self, limit: usize) -> Result<Vec<JournalEntry>, StoreError> {
        self.journal_rows(
            "uploaded = 0 AND seq > ?1",
            0,
            i64::try_from(limit).unwrap_or(i64::MAX),
        )
    }

    /// Marks the scans the server acknowledged as uploaded, in one
    /// transaction; returns how many rows changed.
    pub fn mark_uploaded(&mut self, scan_ids: &[Uuid]) -> Result<usize, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut changed = 0;
        {
            let mut stmt =
                tx.prepare("UPDATE journal SET uploaded = 1 WHERE scan_id = ?1 AND uploaded = 0")?;
            for id in scan_ids {
                changed += stmt.execute([id.to_string()])?;
            }
        }
        tx.commit()?;
        Ok(changed)
    }

    /// Journal rows the server has not acknowledged yet, and the last row
    /// there was when they were counted (one read, so the two agree).
    pub fn backlog(&self) -> Result<Backlog, StoreError> {
        let (unsent, through_seq) = self.conn.query_row(
            "SELECT (SELECT COUNT(*) FROM journal WHERE uploaded = 0), \
                    (SELECT COALESCE(MAX(seq), 0) FROM journal)",
            [],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
        )?;
        Ok(Backlog {
            unsent: unsent.max(0) as u64,
            through_seq,
        })
    }

    /// Journal rows the server has not acknowledged yet.
    pub fn unsent_count(&self) -> Result<u64, StoreError> {
        let n: i64 =
            self.conn
                .query_row("SELECT COUNT(*) FROM journal WHERE uploaded = 0", [], |r| {
                    r.get(0)
                })?;
        Ok(n.max(0) as u64)
    }

    /// Applies a cache delta in one transaction: events replaced, tickets
    /// updated with the organizer's fields while this gate's own presence is
    /// kept (as [`Store::import_snapshot`] does), cursor moved to `to_cursor`.
    /// `imported_at_ms` changes only when something did, so the decision loop
    /// reloads its gate policy only then.
    pub fn apply_delta(&mut self, delta: &CacheDelta, now_ms: i64) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for change in &delta.changes {
            match change {
                CacheChange::Event(event) => {
                    let body = serde_json::to_string(event)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    tx.execute(
                        "INSERT OR REPLACE INTO events (event_id, body) VALUES (?1, ?2)",
                        params![event.event_id as i64, body],
                    )?;
                }
                CacheChange::Ticket(ticket) => {
                    let mut state = fresh_state(ticket);
                    if let Some(prior) = read_state(&tx, ticket.event_id, ticket.ticket_id)? {
                        state.presence = prior.presence;
                        state.entries = prior.entries;
                    }
                    put_state(&tx, &state)?;
                }
                // The server may report an admission this gate has undone
                // since (uploaded before the undo): taking it would put
                // the holder back inside.
                CacheChange::Presence(update) if undone_here(&tx, update)? => {}
                CacheChange::Presence(update) => {
                    if let Some(mut state) = read_state(&tx, update.event_id, update.ticket_id)?
                        && presence::merge(&mut state, update)
                    {
                        put_state(&tx, &state)?;
                    }
                }
                // Another gate undid an admission this gate may have taken
                // from the server: the holder did not come in.
                CacheChange::Undone(undone) => {
                    let (event_id, ticket_id) = (undone.now.event_id, undone.now.ticket_id);
                    if let Some(mut state) = read_state(&tx, event_id, ticket_id)?
                        && presence::forget_undone(&mut state, undone)
                    {
                        put_state(&tx, &state)?;
                    }
                }
            }
        }
        let mut meta = vec![
            ("cursor", delta.to_cursor.to_string()),
            ("generated_at", delta.generated_at.to_string()),
        ];
        if !delta.changes.is_empty() {
            meta.push(("imported_at_ms", now_ms.to_string()));
        }
        for (key, value) in meta {
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                params![key, value],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Writes several `meta` keys in one transaction.
    pub fn set_meta(&mut self, entries: &[(&str, String)]) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for (key, value) in entries {
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                params![key, value],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn journal_rows(
        &self,
        filter: &str,
        arg: i64,
        limit: i64,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT seq, scan_id, gate, direction, scanned_at_ms, source, event_id, ticket_id, \
             generation, tier, outcome, opened, detail, uploaded, voids FROM journal \
             WHERE {filter} ORDER BY seq LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![arg, limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u32>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, Option<i64>>(6)?,
                r.get::<_, Option<u32>>(7)?,
                r.get::<_, Option<u32>>(8)?,
                r.get::<_, Option<u8>>(9)?,
                r.get::<_, String>(10)?,
                r.get::<_, bool>(11)?,
                r.get::<_, String>(12)?,
                r.get::<_, bool>(13)?,
                r.get::<_, Option<String>>(14)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (
                seq,
                scan_id,
                gate,
                direction,
                at,
                source,
                event,
                ticket,
                generation,
                tier,
                outcome,
                opened,
                detail,
                uploaded,
                voids,
            ) = row?;
            let scan_id = Uuid::parse_str(&scan_id)
                .map_err(|e| StoreError::Corrupt(format!("scan id {scan_id}: {e}")))?;
            let voids = voids
                .map(|v| Uuid::parse_str(&v))
                .transpose()
                .map_err(|e| StoreError::Corrupt(format!("voided scan id: {e}")))?;
            out.push(JournalEntry {
                seq,
                record: ScanRecord {
                    scan_id,
                    gate,
                    direction: if direction == "exit" {
                        Direction::Exit
                    } else {
                        Direction::Entry
                    },
                    scanned_at_ms: at,
                    source,
                    event_id: event.map(|v| v as u64),
                    ticket_id: ticket,
                    generation,
                    tier,
                    outcome,
                    opened,
                    voids,
                },
                detail,
                uploaded,
            });
        }
        Ok(out)
    }

    /// Writes the journal as JSON lines or CSV; returns the number of rows.
    pub fn export_journal(
        &self,
        since_ms: Option<i64>,
        format: ExportFormat,
        out: &mut dyn Write,
    ) -> Result<usize, StoreError> {
        let rows = self.journal(since_ms)?;
        match format {
            ExportFormat::Jsonl => {
                for row in &rows {
                    let line = serde_json::to_string(row)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    writeln!(out, "{line}")?;
                }
            }
            ExportFormat::Csv => {
                writeln!(
                    out,
                    "seq,scan_id,gate,direction,scanned_at_ms,source,event_id,ticket_id,\
                     generation,tier,outcome,opened,detail,uploaded"
                )?;
                for e in &rows {
                    let r = &e.record;
                    let opt = |v: Option<String>| v.unwrap_or_default();
                    writeln!(
                        out,
                        "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                        e.seq,
                        r.scan_id,
                        r.gate,
                        direction_text(r.direction),
                        r.scanned_at_ms,
                        csv_field(&r.source),
                        opt(r.event_id.map(|v| v.to_string())),
                        opt(r.ticket_id.map(|v| v.to_string())),
                        opt(r.generation.map(|v| v.to_string())),
                        opt(r.tier.map(|v| v.to_string())),
                        csv_field(&r.outcome),
                        r.opened,
                        csv_field(&e.detail),
                        e.uploaded,
                    )?;
                }
            }
        }
        out.flush()?;
        Ok(rows.len())
    }

    /// Every ticket state, for consistency checks and diagnostics.
    pub fn all_ticket_states(&self) -> Result<Vec<TicketState>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT state FROM tickets ORDER BY event_id, ticket_id")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.map(|row| {
            serde_json::from_str(&row?).map_err(|e| StoreError::Corrupt(format!("ticket: {e}")))
        })
        .collect()
    }
}

/// Staff ask to void the gate's last admission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndoRequest {
    /// This gate's number: only its own admissions can be undone here.
    pub gate: u32,
    /// The event's undo window (0: off).
    pub window_secs: u32,
    pub now_ms: i64,
    /// The undo row's own id (UUIDv7).
    pub undo_id: Uuid,
    /// Who asked (`status-page`, `cli`, ...), recorded as the row's source.
    pub source: String,
}

/// An undo that took effect: its journal row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndoDone {
    pub seq: i64,
    pub record: ScanRecord,
    /// Words for staff.
    pub detail: String,
}

/// What the decision produced for one scan, ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOutcome {
    pub record: ScanRecord,
    pub next_state: Option<TicketState>,
    /// Words for staff (also kept in the journal for the organizer's review).
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedScan {
    pub seq: i64,
    pub outcome: ScanOutcome,
}

fn fresh_state(t: &CachedTicket) -> TicketState {
    TicketState {
        event_id: t.event_id,
        ticket_id: t.ticket_id,
        tier: t.tier,
        owner: t.owner,
        generation: t.generation,
        status: t.status,
        presence: Presence::NeverEntered,
        entries: 0,
    }
}

fn read_state(
    conn: &Connection,
    event_id: u64,
    ticket_id: u32,
) -> Result<Option<TicketState>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT state FROM tickets WHERE event_id = ?1 AND ticket_id = ?2")?;
    let text: Option<String> = stmt
        .query_row(params![event_id as i64, ticket_id], |r| r.get(0))
        .optional()?;
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("ticket state: {e}")))
    })
    .transpose()
}

/// Whether `update` puts the holder inside by an admission that this
/// gate's journal shows undone.
fn undone_here(conn: &Connection, update: &PresenceUpdate) -> Result<bool, StoreError> {
    let Presence::Inside { since, gate } = update.presence else {
        return Ok(false);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM journal j WHERE j.event_id = ?1 AND j.ticket_id = ?2 \
         AND j.gate = ?3 AND j.opened = 1 AND j.scanned_at_ms >= ?4 AND j.scanned_at_ms < ?4 + 1000 \
         AND EXISTS (SELECT 1 FROM journal u WHERE u.voids = j.scan_id))",
    )?;
    Ok(stmt.query_row(
        params![
            update.event_id as i64,
            update.ticket_id,
            gate,
            since.saturating_mul(1000)
        ],
        |r| r.get(0),
    )?)
}

/// Writes `state` as its ticket's row.
fn put_state(conn: &Connection, state: &TicketState) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR REPLACE INTO tickets (event_id, ticket_id, inside, state) \
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    write_state(&mut stmt, state)
}

fn write_state(stmt: &mut rusqlite::Statement<'_>, state: &TicketState) -> Result<(), StoreError> {
    let json = serde_json::to_string(state).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let inside = matches!(state.presence, Presence::Inside { .. });
    stmt.execute(params![
        state.event_id as i64,
        state.ticket_id,
        inside,
        json
    ])?;
    Ok(())
}

fn direction_text(d: Direction) -> &'static str {
    match d {
        Direction::Entry => "entry",
        Direction::Exit => "exit",
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Whether a ticket is in good standing (used by `verify` to explain).
pub fn status_text(status: TicketStatus) -> &'static str {
    match status {
        TicketStatus::Active => "active",
        TicketStatus::Frozen => "frozen",
        TicketStatus::Revoked => "revoked",
        TicketStatus::Refunded => "refunded",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::wire::PROTOCOL_VERSION;

    fn snapshot(generation: u32) -> CacheSnapshot {
        CacheSnapshot {
            v: PROTOCOL_VERSION,
            cursor: 1,
            generated_at: 10,
            events: vec![],
            tickets: (1..=3)
                .map(|t| CachedTicket {
                    event_id: 5,
                    ticket_id: t,
                    tier: 0,
                    owner: PublicKeyBytes([t as u8; 32]),
                    generation,
                    status: TicketStatus::Active,
                })
                .collect(),
            presence: vec![],
            undone: vec![],
        }
    }

    #[test]
    fn reimport_keeps_presence_recorded_here_and_takes_the_organizers_fields() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("g.db")).unwrap();
        let signer = PublicKeyBytes([9; 32]);
        store.import_snapshot(&snapshot(1), &signer, 0).unwrap();
        let mut inside = store.ticket_state(5, 2).unwrap().unwrap();
        inside.presence = Presence::Inside {
            since: 100,
            gate: 4,
        };
        inside.entries = 1;
        {
            let mut stmt = store
                .conn
                .prepare("INSERT OR REPLACE INTO tickets (event_id, ticket_id, inside, state) VALUES (?1, ?2, ?3, ?4)")
                .unwrap();
            write_state(&mut stmt, &inside).unwrap();
        }
        let summary = store.import_snapshot(&snapshot(2), &signer, 1).unwrap();
        assert_eq!(summary.kept_local_presence, 1);
        let after = store.ticket_state(5, 2).unwrap().unwrap();
        assert_eq!(
            after.presence,
            Presence::Inside {
                since: 100,
                gate: 4
            }
        );
        assert_eq!(
            after.generation, 2,
            "the transfer in the new snapshot applies"
        );
        assert_eq!(
            store.ticket_state(5, 1).unwrap().unwrap().presence,
            Presence::NeverEntered
        );
        assert_eq!(store.counts().unwrap().inside, 1);
    }

    #[test]
    fn delta_updates_the_organizers_fields_keeps_presence_and_moves_the_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("g.db")).unwrap();
        store
            .import_snapshot(&snapshot(1), &PublicKeyBytes([9; 32]), 0)
            .unwrap();
        let mut inside = store.ticket_state(5, 2).unwrap().unwrap();
        inside.presence = Presence::Inside {
            since: 100,
            gate: 4,
        };
        inside.entries = 1;
        {
            let mut stmt = store
                .conn
                .prepare("INSERT OR REPLACE INTO tickets (event_id, ticket_id, inside, state) VALUES (?1, ?2, ?3, ?4)")
                .unwrap();
            write_state(&mut stmt, &inside).unwrap();
        }
        let mut revoked = snapshot(1).tickets[1];
        revoked.status = TicketStatus::Revoked;
        let mut new = snapshot(1).tickets[0];
        new.ticket_id = 9;
        let delta = CacheDelta {
            v: PROTOCOL_VERSION,
            from_cursor: 1,
            to_cursor: 4,
            generated_at: 20,
            changes: vec![CacheChange::Ticket(revoked), CacheChange::Ticket(new)],
            has_more: false,
        };
        store.apply_delta(&delta, 77).unwrap();
        let after = store.ticket_state(5, 2).unwrap().unwrap();
        assert_eq!(after.status, TicketStatus::Revoked);
        assert_eq!(
            after.presence,
            Presence::Inside {
                since: 100,
                gate: 4
            }
        );
        assert!(store.ticket_state(5, 9).unwrap().is_some());
        assert_eq!(store.meta("cursor").unwrap().as_deref(), Some("4"));
        assert_eq!(store.meta("imported_at_ms").unwrap().as_deref(), Some("77"));

        // An empty delta moves the cursor but does not make the loop reload.
        let empty = CacheDelta {
            from_cursor: 4,
            to_cursor: 4,
            generated_at: 30,
            changes: vec![],
            ..delta
        };
        store.apply_delta(&empty, 99).unwrap();
        assert_eq!(store.meta("generated_at").unwrap().as_deref(), Some("30"));
        assert_eq!(store.meta("imported_at_ms").unwrap().as_deref(), Some("77"));
    }

    #[test]
    fn only_acknowledged_scans_are_marked_uploaded() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("g.db")).unwrap();
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        for id in &ids {
            store
                .record_scan(|_| ScanOutcome {
                    record: ScanRecord {
                        scan_id: *id,
                        gate: 1,
                        direction: Direction::Entry,
                        scanned_at_ms: 5,
                        source: "test".into(),
                        event_id: None,
                        ticket_id: None,
                        generation: None,
                        tier: None,
                        outcome: "unreadable".into(),
                        opened: false,
                        voids: None,
                    },
                    next_state: None,
                    detail: String::new(),
                })
                .unwrap();
        }
        assert_eq!(store.unsent_count().unwrap(), 3);
        let first_two: Vec<Uuid> = store
            .unsent_journal(2)
            .unwrap()
            .iter()
            .map(|e| e.record.scan_id)
            .collect();
        assert_eq!(first_two, ids[..2]);
        assert_eq!(store.mark_uploaded(&[ids[1], Uuid::now_v7()]).unwrap(), 1);
        assert_eq!(store.mark_uploaded(&[ids[1]]).unwrap(), 0, "already marked");
        let unsent: Vec<Uuid> = store
            .unsent_journal(10)
            .unwrap()
            .iter()
            .map(|e| e.record.scan_id)
            .collect();
        assert_eq!(unsent, [ids[0], ids[2]]);
        assert_eq!(store.unsent_count().unwrap(), 2);
        let last = store.journal(None).unwrap().last().unwrap().seq;
        assert_eq!(
            store.backlog().unwrap(),
            Backlog {
                unsent: 2,
                through_seq: last
            }
        );
    }

    #[test]
    fn csv_fields_with_commas_and_quotes_are_quoted() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a, \"b\""), "\"a, \"\"b\"\"\"");
    }
}
