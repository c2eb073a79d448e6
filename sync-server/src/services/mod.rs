//! The server's work, without HTTP: what the gates, organizers and buyers
//! ask for, as functions over [`Services`] (storage, chain, mail, payments,
//! clock). Handlers parse and authorize, then call in here; background
//! workers call the same functions on a timer.
//!
//! Nothing here names axum, a handler or `AppState`: services sit below the
//! HTTP layer and above storage, chain and the adapters.

pub mod auth;
pub mod cancellation;
pub mod conflicts;
mod error;
pub mod events;
pub mod gates;
pub mod health;
pub mod holder_keys;
pub mod holdings;
pub mod incidents;
pub mod inventory;
pub mod live;
pub mod minting;
pub mod organizer;
pub mod purchases;
pub mod replay;
pub mod rules;
pub mod sales;
pub mod settlement;
pub mod staff;
pub mod ticket_files;
pub mod ticket_holds;
pub mod tickets;
pub mod transfers;
pub mod validation;
pub mod workers;

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use shared::PublicKeyBytes;
use shared::wire::{CachedEvent, CachedTicket};
use tokio::sync::{Notify, watch};

pub use error::ServiceError;

use crate::adapters::cache::ReadCache;
use crate::adapters::mail::{MailError, Mailer, SmtpMailer};
use crate::adapters::payments::{PaymentError, PaymentProvider, StripeProvider};
use crate::clock::Clock;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// Everything the server's services and workers work with.
#[derive(Clone)]
pub struct Services {
    pub store: Store,
    pub config: Arc<Config>,
    /// Signs the gates' cache snapshots, deltas and cache files.
    pub server_key: Arc<SigningKey>,
    pub clock: Arc<dyn Clock>,
    /// Bumped on every cache change made through this instance; wakes
    /// long-polling gates at once.
    changes: Arc<watch::Sender<u64>>,
    /// Wakes the replay worker when new entries were ingested.
    pub replay_wakeup: Arc<Notify>,
    /// The chain and the keys for it; `None` runs the gate sync alone
    /// (no event creation, no replay).
    pub chain: Option<Arc<organizer::ChainContext>>,
    /// Prometheus metrics, served at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Sends confirmation and claim mail; `None` when `[smtp]` names no
    /// relay (purchases and transfers still work, without mail).
    pub mailer: Option<Arc<dyn Mailer>>,
    /// Card payments; `None` when `[stripe]` has no secret key (card
    /// purchases are then refused with 503, SOL purchases still work).
    pub payments: Option<Arc<dyn PaymentProvider>>,
    /// Public event reads, reused for a second unless an event changed.
    pub read_cache: Arc<ReadCache>,
    /// The mail relay's last answer to `/health`.
    pub smtp_probe: Arc<health::SmtpProbe>,
    /// One lock per event that this instance's mints take ticket ids under.
    pub mint_locks: Arc<minting::EventLocks>,
}

impl Services {
    /// The services of `config` on `store`, with the mail relay and card
    /// payments it names (each off, with an error logged, when its settings
    /// do not work) and no chain.
    pub fn new(
        store: Store,
        config: Config,
        server_key: SigningKey,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let smtp = crate::config::SmtpSettings {
            claim_url: config.smtp.claim_page(&config.api.public_url),
            ..config.smtp.clone()
        };
        let mailer = SmtpMailer::new(&smtp)
            .map(|m| Arc::new(m) as Arc<dyn Mailer>)
            .inspect_err(|e| {
                if !matches!(e, MailError::Disabled) {
                    tracing::error!(error = %e, "mail is off: the [smtp] settings do not work");
                }
            })
            .ok();
        let payments = StripeProvider::new(&config.stripe)
            .map(|p| Arc::new(p) as Arc<dyn PaymentProvider>)
            .inspect_err(|e| {
                if !matches!(e, PaymentError::Disabled) {
                    tracing::error!(error = %e, "card payments are off: the [stripe] settings do not work");
                }
            })
            .ok();
        Self {
            mailer,
            payments,
            read_cache: Arc::default(),
            smtp_probe: Arc::default(),
            mint_locks: Arc::default(),
            store,
            config: Arc::new(config),
            server_key: Arc::new(server_key),
            clock,
            changes: Arc::new(watch::channel(0).0),
            replay_wakeup: Arc::new(Notify::new()),
            chain: None,
            metrics: Arc::new(Metrics::new().expect("metric names are valid")),
        }
    }

    /// Wakes the gates' long polls: the change feed has something new.
    pub fn notify_gates(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    /// A receiver that sees every [`Services::notify_gates`] from now on.
    pub fn watch_changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Publishes a new or changed event to its gates.
    pub async fn publish_event(
        &self,
        event: &CachedEvent,
        organizer: &PublicKeyBytes,
    ) -> Result<(), StoreError> {
        self.store
            .upsert_event(event, organizer, self.clock.now())
            .await?;
        self.read_cache.invalidate();
        self.notify_gates();
        Ok(())
    }

    /// Publishes new tickets or changes of known ones (transfer, freeze,
    /// revocation) to the gates.
    pub async fn publish_tickets(&self, tickets: &[CachedTicket]) -> Result<(), StoreError> {
        self.store.upsert_tickets(tickets, self.clock.now()).await?;
        self.notify_gates();
        Ok(())
    }
}
