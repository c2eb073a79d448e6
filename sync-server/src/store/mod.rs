//! The server's database: SQLite (embedded default) or PostgreSQL.
//!
//! One implementation over sqlx's `Any` driver, with the few statements that
//! differ per backend chosen by [`Backend`]. Each backend has its own
//! migrations (`migrations/sqlite`, `migrations/postgres`), and the same test
//! suite runs against both. Integers are stored as 64-bit everywhere and
//! booleans as 0/1, so the same row decoding works on both.
//!
//! This file owns the connection, migrations, errors and the row helpers
//! every subject shares; each subject's statements live in its own module:
//! `gates` (gates, enrolment, devices, request nonces), `feed` (events,
//! tickets and the gates' change feed), `scans` (ingest, conflicts, gate
//! figures, ticket state), `conflict_reviews` (both scans of a conflict and
//! the organizer's resolution), `presence` (where holders are), `holdings` (a
//! wallet's tickets as its holder's page shows them), `incidents`
//! (admissions the server would have refused), `validators` (who may scan
//! an event), `replay` (the chain side), `inventory`, `mints` (organizer
//! mints as durable intents), `cancellations` (an event's cancellation, as
//! far as it got), `closing` (what settling it returned), `sales` (an
//! event's purchases counted and its attendance) and `payments`.

use serde::Serialize;
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

pub mod auth;
mod cancellations;
mod closing;
mod conflict_reviews;
mod events;
mod feed;
mod gates;
mod holdings;
mod incidents;
mod inventory;
mod live;
mod mints;
mod payments;
mod presence;
mod purchases;
mod replay;
mod sales;
mod scans;
mod transfers;
mod validators;
mod voids;
pub use cancellations::{Cancellation, CancellationPhase, RefundCounts};
pub use closing::SettlementRecord;
pub use conflict_reviews::{
    ConflictOutcome, ConflictResolution, ConflictReview, ConflictScan, NewResolution,
};
pub use events::{DetailsChange, EventDetails, EventFilter, EventRecord};
pub(crate) use feed::ticket_from_row;
pub use feed::ticket_of_row;
pub use gates::{Device, EnrolError, NonceUse, token_hash};
pub use holdings::SentByEmail;
pub use incidents::Incident;
pub use inventory::{CardPrice, EVENT_CAPACITY, SeatCounter, seats_of};
pub use live::{AttendeeRow, DeviceRow, MinuteCount, RefusalCount};
pub use mints::{
    MintItem, MintItemState, MintKind, MintRequest, MintState, NewMintRequest, Recorded,
    UnsettledMint,
};
pub use payments::record_webhook_event;
pub use purchases::{
    MailStatus, NewPurchase, PaymentMethod, PaymentOutcome, Purchase, PurchaseStatus, WebhookEffect,
};
pub use replay::{EventChain, PendingScan, ReplayState, ReplaySummary, ScanReplay, Settlement};
pub use sales::{AttendanceRow, SalesLine};
pub use scans::{Conflict, GateCounts};
pub use transfers::{EmailTransfer, TransferStatus};
pub use validators::ValidatorAssignment;
pub use voids::UNDONE_AFTER_CHAIN;

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
    /// An id no row can have: the database's integers are signed 64-bit,
    /// so an id above `i64::MAX` names nothing (it came from a client).
    #[error("{0} is not an id this server could have given out")]
    IdOutOfRange(u64),
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
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

/// `$from,$from+1,...` for `count` bound parameters: the only thing ever
/// formatted into SQL text here; every value is bound.
fn param_list(from: usize, count: usize) -> String {
    (from..from + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `v` as the database's integer; an id beyond it names no row.
pub(crate) fn i64_of(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::IdOutOfRange(v))
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

    /// Whether holders' presence changed since the last call.
    pub fn take_presence_changed(&self) -> bool {
        self.presence_changed
            .swap(false, std::sync::atomic::Ordering::AcqRel)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Cheap liveness probe for `/health`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
