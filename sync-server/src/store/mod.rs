//! The server's database: SQLite (embedded default) or PostgreSQL.
//!
//! One implementation over sqlx's `Any` driver, with the few statements that
//! differ per backend chosen by [`Backend`]. Each backend has its own
//! migrations (`migrations/sqlite`, `migrations/postgres`), and the same test
//! suite runs against both. Integers are stored as 64-bit everywhere and
//! booleans as 0/1, so the same row decoding works on both.

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::wire::{
    CacheChange, CacheDelta, CacheSnapshot, CachedEvent, CachedTicket, GateInfo, JournalAck,
    PROTOCOL_VERSION, PresenceUpdate, ScanRecord,
};
use shared::{Direction, Presence, PublicKeyBytes};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use uuid::Uuid;

mod inventory;
mod payments;
mod purchases;
mod replay;
pub use inventory::{CardPrice, EVENT_CAPACITY, SeatCounter, seats_of};
pub use payments::record_webhook_event;
pub use purchases::{
    MailStatus, NewPurchase, PaymentMethod, PaymentOutcome, Purchase, PurchaseStatus, WebhookEffect,
};
pub use replay::{EventChain, PendingScan, ReplaySummary, ScanReplay, Settlement};

/// Scans per multi-row INSERT: 14 values each stays far below both
/// backends' limits on bound parameters.
const INGEST_ROWS_PER_STATEMENT: usize = 100;

/// Presence rows per statement (6 values each).
const PRESENCE_ROWS_PER_STATEMENT: usize = 200;

pub use crate::config::Backend;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL {0:?} is neither sqlite: nor postgres:")]
    UnsupportedUrl(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// Why an enrolment was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnrolError {
    #[error("unknown enrolment token")]
    UnknownToken,
    #[error("the enrolment token was already used")]
    TokenUsed,
    #[error("the enrolment token expired")]
    TokenExpired,
    #[error("this device key is already enrolled")]
    KeyAlreadyEnrolled,
}

/// An enrolled gate device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub device_id: Uuid,
    pub public_key: PublicKeyBytes,
    pub event_id: u64,
    pub gate_number: u32,
    pub revoked: bool,
}

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
    pub admitted: u64,
    pub rejected: u64,
    pub exits: u64,
    /// Admissions through this gate whose holder has not left since.
    pub inside: u64,
    pub conflicts: u64,
    pub last_seen_at: Option<i64>,
    /// Unsent journal entries the gate reported on its last request.
    pub backlog: u64,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// When expired request nonces were last purged (Unix seconds).
    last_nonce_purge: std::sync::Arc<std::sync::atomic::AtomicI64>,
    /// Set when an ingest changed where holders are; the journal handler
    /// takes it to wake the gates' long polls.
    presence_changed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// PostgreSQL: scans stored since the scan tables were last analysed,
    /// and how many there were then (see [`Store::keep_statistics_fresh`]).
    scans_since_analyze: std::sync::Arc<std::sync::atomic::AtomicU64>,
    scans_at_analyze: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// A device request's nonce, to be recorded as used (with the device's last
/// contact and backlog) in the same transaction as the request's effect.
#[derive(Debug, Clone)]
pub struct NonceUse {
    pub device_id: Uuid,
    pub nonce: String,
    pub now: i64,
    /// Nonces older than this are forgotten (they are outside the window).
    pub forget_before: i64,
    pub backlog: Option<u64>,
}

/// Expired nonces are purged at most this often, not on every request.
const NONCE_PURGE_EVERY_SECS: i64 = 60;

/// `$from,$from+1,...` for `count` bound parameters: the only thing ever
/// formatted into SQL text here; every value is bound.
fn param_list(from: usize, count: usize) -> String {
    (from..from + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// What the replay worker makes of a new scan: admissions of known tickets
/// go on chain, everything else stays here.
fn replay_state_of(scan: &ScanRecord) -> &'static str {
    match (scan.opened, scan.ticket_id) {
        (true, Some(_)) => "ingested",
        _ => "none",
    }
}

pub(crate) fn i64_of(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| corrupt(format!("{v} does not fit a 64-bit signed column")))
}

fn enum_text<T: Serialize>(value: &T) -> String {
    // Unit variants serialise to a JSON string; store it without quotes.
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn enum_parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(corrupt)
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn unjson<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(corrupt)
}

/// Hex SHA-256 of an enrolment token; only the hash is stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Store {
    /// Connects and applies this backend's migrations. For SQLite the file is
    /// created if missing and runs in WAL mode with `synchronous=FULL`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend =
            Backend::from_url(url).ok_or_else(|| StoreError::UnsupportedUrl(url.to_owned()))?;
        let (url, max) = match backend {
            Backend::Sqlite => {
                let sep = if url.contains('?') { '&' } else { '?' };
                let url = if url.contains("mode=") {
                    url.to_owned()
                } else {
                    format!("{url}{sep}mode=rwc")
                };
                (url, 1)
            }
            Backend::Postgres => (url.to_owned(), 16),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Postgres {
                        // Plan every execution with the tables as they are now.
                        // A cached generic plan is made while the scan tables
                        // are still empty at the start of an event and keeps
                        // choosing sequential scans once they hold thousands
                        // of rows (measured: 100+ ms per lookup by ticket).
                        sqlx::query("SET plan_cache_mode = force_custom_plan")
                            .execute(&mut *conn)
                            .await?;
                    }
                    if backend == Backend::Sqlite {
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = FULL",
                            "PRAGMA foreign_keys = ON",
                            "PRAGMA busy_timeout = 5000",
                        ] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        let store = Self {
            pool,
            backend,
            last_nonce_purge: Default::default(),
            presence_changed: Default::default(),
            scans_since_analyze: Default::default(),
            scans_at_analyze: Default::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&self.pool).await?,
            Backend::Postgres => {
                sqlx::migrate!("migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

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

    /// Whether holders' presence changed since the last call.
    pub fn take_presence_changed(&self) -> bool {
        self.presence_changed
            .swap(false, std::sync::atomic::Ordering::AcqRel)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Cheap liveness probe for `/health`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    // ----- events and tickets (the organizer's side of the cache) -----

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
                 issuer_keys, tiers, reentry, unknown_tickets, holder_proof)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (event_id) DO UPDATE SET name = excluded.name, status = excluded.status,
                 doors_open = excluded.doors_open, doors_close = excluded.doors_close,
                 issuer_keys = excluded.issuer_keys, tiers = excluded.tiers,
                 reentry = excluded.reentry, unknown_tickets = excluded.unknown_tickets,
                 holder_proof = excluded.holder_proof",
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

    // ----- gates, enrolment and devices -----

    pub async fn create_gate(&self, event_id: u64, gate: &GateInfo) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO gates (event_id, number, name, direction, allowed_tiers) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (event_id, number) DO UPDATE SET name = excluded.name,
                 direction = excluded.direction, allowed_tiers = excluded.allowed_tiers",
        )
        .bind(i64_of(event_id)?)
        .bind(i64::from(gate.number))
        .bind(&gate.name)
        .bind(enum_text(&gate.direction))
        .bind(gate.allowed_tiers.as_ref().map(json))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn gate(&self, event_id: u64, number: u32) -> Result<Option<GateInfo>, StoreError> {
        let row = sqlx::query("SELECT * FROM gates WHERE event_id = $1 AND number = $2")
            .bind(i64_of(event_id)?)
            .bind(i64::from(number))
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| gate_from_row(&r)).transpose()
    }

    pub async fn gate_by_name(
        &self,
        event_id: u64,
        name: &str,
    ) -> Result<Option<GateInfo>, StoreError> {
        let row = sqlx::query("SELECT * FROM gates WHERE event_id = $1 AND name = $2")
            .bind(i64_of(event_id)?)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| gate_from_row(&r)).transpose()
    }

    /// Stores a one-time enrolment token (by its hash) for a gate.
    pub async fn create_enrol_token(
        &self,
        token: &str,
        event_id: u64,
        gate_number: u32,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO enrol_tokens (token_hash, event_id, gate_number, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash(token))
        .bind(i64_of(event_id)?)
        .bind(i64::from(gate_number))
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Spends a one-time token and registers the device's key, atomically: a
    /// token enrols exactly one device even when two boxes race for it.
    pub async fn enrol(
        &self,
        token: &str,
        device_key: &PublicKeyBytes,
        agent_version: &str,
        hostname: Option<&str>,
        now: i64,
    ) -> Result<Result<Device, EnrolError>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let hash = token_hash(token);
        let Some(row) = sqlx::query("SELECT * FROM enrol_tokens WHERE token_hash = $1")
            .bind(&hash)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(Err(EnrolError::UnknownToken));
        };
        if row.try_get::<Option<i64>, _>("used_at")?.is_some() {
            return Ok(Err(EnrolError::TokenUsed));
        }
        if row.try_get::<i64, _>("expires_at")? <= now {
            return Ok(Err(EnrolError::TokenExpired));
        }
        let existing = sqlx::query("SELECT device_id FROM devices WHERE public_key = $1")
            .bind(device_key.to_base58())
            .fetch_optional(&mut *tx)
            .await?;
        if existing.is_some() {
            return Ok(Err(EnrolError::KeyAlreadyEnrolled));
        }
        let device_id = Uuid::now_v7();
        let spent = sqlx::query(
            "UPDATE enrol_tokens SET used_at = $1, device_id = $2 WHERE token_hash = $3 AND used_at IS NULL",
        )
        .bind(now)
        .bind(device_id.to_string())
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
        if spent.rows_affected() != 1 {
            return Ok(Err(EnrolError::TokenUsed));
        }
        let event_id: i64 = row.try_get("event_id")?;
        let gate_number: i64 = row.try_get("gate_number")?;
        sqlx::query(
            "INSERT INTO devices (device_id, public_key, event_id, gate_number, agent_version, hostname, enrolled_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(device_id.to_string())
        .bind(device_key.to_base58())
        .bind(event_id)
        .bind(gate_number)
        .bind(agent_version)
        .bind(hostname)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(Device {
            device_id,
            public_key: *device_key,
            event_id: u64::try_from(event_id).map_err(corrupt)?,
            gate_number: u32::try_from(gate_number).map_err(corrupt)?,
            revoked: false,
        }))
    }

    pub async fn device(&self, device_id: Uuid) -> Result<Option<Device>, StoreError> {
        let row = sqlx::query("SELECT * FROM devices WHERE device_id = $1")
            .bind(device_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(Device {
                device_id,
                public_key: PublicKeyBytes::from_str(&r.try_get::<String, _>("public_key")?)
                    .map_err(corrupt)?,
                event_id: u64::try_from(r.try_get::<i64, _>("event_id")?).map_err(corrupt)?,
                gate_number: u32::try_from(r.try_get::<i64, _>("gate_number")?).map_err(corrupt)?,
                revoked: r.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
            })
        })
        .transpose()
    }

    pub async fn revoke_device(&self, device_id: Uuid, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE devices SET revoked_at = $1 WHERE device_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(device_id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Accepts one signed request of a device: records its nonce and notes
    /// that the device was heard from (with its unsent backlog), in one
    /// transaction. `false` if the device already used the nonce (a replayed
    /// request); then nothing is written. Nonces older than `forget_before`
    /// are dropped now and then: the timestamp window refuses those requests
    /// anyway.
    pub async fn accept_request(
        &self,
        device_id: Uuid,
        nonce: &str,
        now: i64,
        forget_before: i64,
        backlog: Option<u64>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let accepted = self
            .accept_in(
                &mut tx,
                &NonceUse {
                    device_id,
                    nonce: nonce.to_owned(),
                    now,
                    forget_before,
                    backlog,
                },
            )
            .await?;
        if accepted {
            tx.commit().await?;
        }
        Ok(accepted)
    }

    /// [`Store::accept_request`]'s statements inside a caller's transaction.
    async fn accept_in(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        request: &NonceUse,
    ) -> Result<bool, StoreError> {
        let last_purge = self
            .last_nonce_purge
            .load(std::sync::atomic::Ordering::Relaxed);
        if request.now - last_purge >= NONCE_PURGE_EVERY_SECS {
            self.last_nonce_purge
                .store(request.now, std::sync::atomic::Ordering::Relaxed);
            sqlx::query("DELETE FROM device_nonces WHERE seen_at < $1")
                .bind(request.forget_before)
                .execute(&mut **tx)
                .await?;
        }
        let inserted = sqlx::query(
            "INSERT INTO device_nonces (device_id, nonce, seen_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(request.device_id.to_string())
        .bind(request.nonce.clone())
        .bind(request.now)
        .execute(&mut **tx)
        .await?;
        if inserted.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE devices SET last_seen_at = $1, backlog = COALESCE($2, backlog) WHERE device_id = $3",
        )
        .bind(request.now)
        .bind(request.backlog.map(i64_of).transpose()?)
        .bind(request.device_id.to_string())
        .execute(&mut **tx)
        .await?;
        Ok(true)
    }

    /// Notes that a device was heard from, with its unsent backlog.
    pub async fn touch_device(
        &self,
        device_id: Uuid,
        now: i64,
        backlog: Option<u64>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE devices SET last_seen_at = $1, backlog = COALESCE($2, backlog) WHERE device_id = $3",
        )
        .bind(now)
        .bind(backlog.map(i64_of).transpose()?)
        .bind(device_id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ----- the gate cache -----

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
        tx.commit().await?;
        Ok(CacheSnapshot {
            v: PROTOCOL_VERSION,
            cursor,
            generated_at: now,
            events,
            tickets,
            presence,
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
        Ok(CacheDelta {
            v: PROTOCOL_VERSION,
            from_cursor: cursor,
            to_cursor,
            generated_at: now,
            changes,
            has_more,
        })
    }

    // ----- scan ingest -----

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
        let row = format!("({})", ["?"; 14].join(","));
        let sql = format!(
            "INSERT INTO scans (scan_id, device_id, event_id, gate, direction, scanned_at_ms, source,
                 ticket_id, generation, tier, outcome, opened, received_at, replay_state) VALUES {}
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
                .bind(replay_state_of(scan));
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
                })
            })
            .collect();
        let query = sqlx::query(
            "INSERT INTO scans (scan_id, device_id, event_id, gate, direction, scanned_at_ms, source,
                 ticket_id, generation, tier, outcome, opened, received_at, replay_state)
             SELECT r.scan_id, $2, $3, $4, r.direction, r.scanned_at_ms, r.source, r.ticket_id,
                 r.generation, r.tier, r.outcome, r.opened, $5, r.replay_state
             FROM json_to_recordset($1::json) AS r(scan_id text, direction text,
                 scanned_at_ms bigint, source text, ticket_id bigint, generation bigint,
                 tier bigint, outcome text, opened bigint, replay_state text)
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
                conflicts,
                server_time: now,
            },
            new_outcomes,
        )))
    }

    /// Walks each ticket's gate-opening scans in scan-time order and marks
    /// every admission made while the holder was already inside. Scans that
    /// arrive late (a gate that was offline) slot in by their own time. Only
    /// rows whose mark changes are written.
    async fn recompute_conflicts(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        event_id: u64,
        ticket_ids: &[u32],
    ) -> Result<Vec<Uuid>, StoreError> {
        let sql = format!(
            "SELECT scan_id, ticket_id, direction, conflict_of, scanned_at_ms, gate FROM scans
             WHERE event_id = $1 AND opened = 1 AND ticket_id IN ({})
             ORDER BY ticket_id, scanned_at_ms, scan_id",
            param_list(2, ticket_ids.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(i64_of(event_id)?);
        for id in ticket_ids {
            query = query.bind(i64::from(*id));
        }
        let rows = query.fetch_all(&mut **tx).await?;
        let mut current_ticket: Option<i64> = None;
        let mut inside_since: Option<String> = None;
        let mut conflicts = Vec::new();
        let mut changed: Vec<(Option<String>, String)> = Vec::new();
        // Per ticket: (inside, since, gate, entries) after its last scan.
        let mut presence: Vec<(i64, PresenceRow)> = Vec::new();
        for row in rows {
            let ticket: i64 = row.try_get("ticket_id")?;
            if current_ticket != Some(ticket) {
                current_ticket = Some(ticket);
                inside_since = None;
                presence.push((ticket, PresenceRow::default()));
            }
            let scan_id: String = row.try_get("scan_id")?;
            let direction: String = row.try_get("direction")?;
            let old: Option<String> = row.try_get("conflict_of")?;
            if let Some((_, p)) = presence.last_mut() {
                p.inside = direction != "exit";
                p.since = row.try_get::<i64, _>("scanned_at_ms")?.div_euclid(1000);
                p.gate = row.try_get("gate")?;
                p.entries += i64::from(direction != "exit");
            }
            let new = if direction == "exit" {
                inside_since = None;
                None
            } else if let Some(earlier) = &inside_since {
                Some(earlier.clone())
            } else {
                inside_since = Some(scan_id.clone());
                None
            };
            if new.is_some() {
                conflicts.push(Uuid::parse_str(&scan_id).map_err(corrupt)?);
            }
            if new != old {
                changed.push((new, scan_id));
            }
        }
        for (conflict_of, scan_id) in changed {
            sqlx::query("UPDATE scans SET conflict_of = $1 WHERE scan_id = $2")
                .bind(conflict_of)
                .bind(scan_id)
                .execute(&mut **tx)
                .await?;
        }
        self.store_presence(tx, event_id, &presence).await?;
        Ok(conflicts)
    }

    /// Writes each ticket's presence where it changed, and puts the change
    /// in the feed the gates' deltas are cut from.
    async fn store_presence(
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
                (SELECT CAST(COALESCE(SUM(d.backlog), 0) AS BIGINT) FROM devices d WHERE d.event_id = g.event_id AND d.gate_number = g.number AND d.revoked_at IS NULL) AS backlog,
                (SELECT COUNT(*) FROM scans s WHERE s.event_id = g.event_id AND s.gate = g.number AND s.opened = 1 AND s.direction = 'entry') AS admitted,
                (SELECT COUNT(*) FROM scans s WHERE s.event_id = g.event_id AND s.gate = g.number AND s.opened = 0) AS rejected,
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
               AND NOT EXISTS (SELECT 1 FROM scans later WHERE later.event_id = s.event_id
                   AND later.ticket_id = s.ticket_id AND later.opened = 1
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
                    exits: count(r, "exits")?,
                    inside: u64::try_from(inside.get(&number).copied().unwrap_or(0))
                        .map_err(corrupt)?,
                    conflicts: count(r, "conflicts")?,
                    last_seen_at: r.try_get("last_seen")?,
                    backlog: count(r, "backlog")?,
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

/// A ticket's presence as stored in `ticket_presence`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct PresenceRow {
    inside: bool,
    since: i64,
    gate: i64,
    entries: i64,
}

fn presence_from_row(event_id: u64, r: &AnyRow) -> Result<PresenceUpdate, StoreError> {
    let since: i64 = r.try_get("since")?;
    let gate = u32::try_from(r.try_get::<i64, _>("gate")?).map_err(corrupt)?;
    Ok(PresenceUpdate {
        event_id,
        ticket_id: u32::try_from(r.try_get::<i64, _>("ticket_id")?).map_err(corrupt)?,
        presence: if r.try_get::<i64, _>("inside")? == 1 {
            Presence::Inside { since, gate }
        } else {
            Presence::Outside { since, gate }
        },
        entries: u32::try_from(r.try_get::<i64, _>("entries")?).map_err(corrupt)?,
    })
}

fn event_from_row(r: &AnyRow) -> Result<CachedEvent, StoreError> {
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
    })
}

/// A `tickets` row as the gates see it (for queries built elsewhere).
pub fn ticket_of_row(r: &AnyRow) -> Result<CachedTicket, StoreError> {
    ticket_from_row(r)
}

fn ticket_from_row(r: &AnyRow) -> Result<CachedTicket, StoreError> {
    Ok(CachedTicket {
        event_id: u64::try_from(r.try_get::<i64, _>("event_id")?).map_err(corrupt)?,
        ticket_id: u32::try_from(r.try_get::<i64, _>("ticket_id")?).map_err(corrupt)?,
        tier: u8::try_from(r.try_get::<i64, _>("tier")?).map_err(corrupt)?,
        owner: PublicKeyBytes::from_str(&r.try_get::<String, _>("owner")?).map_err(corrupt)?,
        generation: u32::try_from(r.try_get::<i64, _>("generation")?).map_err(corrupt)?,
        status: enum_parse(&r.try_get::<String, _>("status")?)?,
    })
}

fn gate_from_row(r: &AnyRow) -> Result<GateInfo, StoreError> {
    Ok(GateInfo {
        number: u32::try_from(r.try_get::<i64, _>("number")?).map_err(corrupt)?,
        name: r.try_get("name")?,
        direction: enum_parse::<Direction>(&r.try_get::<String, _>("direction")?)?,
        allowed_tiers: r
            .try_get::<Option<String>, _>("allowed_tiers")?
            .map(|t| unjson(&t))
            .transpose()?,
    })
}
