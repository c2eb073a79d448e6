//! What one scan means at this gate: the gate's policy built from the cached
//! event and the gate's own settings, the pipeline verify -> `shared::decide`,
//! and the [`Verdict`] that outputs and the status page show.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use shared::admission::Evaluation;
use shared::wire::{CachedEvent, ScanContext, ScanRecord};
use shared::{Decision, GatePolicy, PublicKeyBytes, Rejection, TicketState, UnixSeconds};
use uuid::Uuid;

use crate::config::GateConfig;
use crate::store::ScanOutcome;

/// A code read by one of the scanner inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// The input's name, recorded in the journal (`serial:/dev/ttyACM0`, `camera:0`, ...).
    pub source: Arc<str>,
    pub text: String,
}

/// Outcome code used when the journal could not be written and the gate failed closed.
pub const JOURNAL_UNAVAILABLE: &str = "journal_unavailable";
/// Outcome code used when the journal could not be written because the data
/// disk is full (the gate failed closed).
pub const STORAGE_FULL: &str = "storage_full";

/// Why a scan could not be written to the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalFailure {
    /// The disk holding the store has no space left; freeing space cures it.
    StorageFull(String),
    /// Any other reason (the store cannot be opened, a read-only file, ...).
    Unavailable(String),
}

impl JournalFailure {
    pub fn from_store(error: &crate::store::StoreError) -> Self {
        if error.is_storage_full() {
            Self::StorageFull(error.to_string())
        } else {
            Self::Unavailable(error.to_string())
        }
    }

    /// The outcome code of a scan refused for this reason.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::StorageFull(_) => STORAGE_FULL,
            Self::Unavailable(_) => JOURNAL_UNAVAILABLE,
        }
    }

    /// What the status page's alert line says while scans cannot be recorded.
    pub fn alert(&self) -> String {
        match self {
            Self::StorageFull(_) => "Storage full: the gate's data disk has no space left, \
                 so scans cannot be recorded. Free space on it (call a technician)."
                .to_owned(),
            Self::Unavailable(e) => format!("journal not writable: {e}"),
        }
    }
}

/// The result of one scan as staff and the turnstile see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub scan_id: Uuid,
    pub source: String,
    pub at_ms: i64,
    /// Stable outcome code (`admitted`, `already_inside`, ...).
    pub outcome: String,
    pub opens: bool,
    /// Words for staff.
    pub text: String,
    pub tier: Option<u8>,
    pub tier_name: Option<String>,
    pub ticket_id: Option<u32>,
    /// Whether the scan is in the journal (false only when the journal failed).
    pub journaled: bool,
}

/// Why the gate could not pick its event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateSetupError {
    #[error("the ticket cache is empty: import a cache file (gate-agent cache import FILE)")]
    EmptyCache,
    #[error("event {0} is not in the ticket cache")]
    EventNotCached(u64),
    #[error("the cache holds {0} events; set gate.event_id to the one this gate serves")]
    WhichEvent(usize),
}

/// The gate's view of its event: policy, issuer keys and tier names.
#[derive(Debug, Clone)]
pub struct Gate {
    number: u32,
    direction: shared::Direction,
    policy: Result<GatePolicy, GateSetupError>,
    keys: HashMap<u64, Vec<PublicKeyBytes>>,
    tier_names: HashMap<u8, String>,
}

impl Gate {
    /// Builds the gate from its settings and the cached events. A cache that does
    /// not fit still gives a gate: one that refuses every code and says why.
    pub fn new(config: &GateConfig, events: &[CachedEvent]) -> Self {
        let event = match config.event_id {
            Some(id) => events
                .iter()
                .find(|e| e.event_id == id)
                .ok_or(GateSetupError::EventNotCached(id)),
            None => match events {
                [] => Err(GateSetupError::EmptyCache),
                [one] => Ok(one),
                many => Err(GateSetupError::WhichEvent(many.len())),
            },
        };
        let keys = events
            .iter()
            .map(|e| (e.event_id, e.issuer_keys.clone()))
            .collect();
        let tier_names = event
            .as_ref()
            .map(|e| e.tiers.iter().map(|t| (t.index, t.name.clone())).collect())
            .unwrap_or_default();
        let policy = event.map(|e| {
            e.policy_for(
                config.number,
                config.direction,
                config.allowed_tiers.clone(),
            )
        });
        Self {
            number: config.number,
            direction: config.direction,
            policy,
            keys,
            tier_names,
        }
    }

    /// This gate's number within its event.
    pub fn number(&self) -> u32 {
        self.number
    }

    pub fn setup_error(&self) -> Option<&GateSetupError> {
        self.policy.as_ref().err()
    }

    pub fn policy(&self) -> Option<&GatePolicy> {
        self.policy.as_ref().ok()
    }

    /// Decides one scan against `lookup` (the stored ticket states). Pure apart
    /// from the lookup: time and scan id are passed in.
    pub fn evaluate(
        &self,
        scan: &Scan,
        lookup: &dyn Fn(u64, u32) -> Option<TicketState>,
        now_ms: i64,
        scan_id: Uuid,
    ) -> ScanOutcome {
        let now: UnixSeconds = now_ms.div_euclid(1000);
        let evaluation = match &self.policy {
            Ok(policy) => shared::evaluate(&scan.text, &self.keys, lookup, policy, now),
            Err(_) => Evaluation {
                credential: None,
                decision: Decision::Rejected(Rejection::IssuerKeyMissing),
                next_state: None,
            },
        };
        let mut detail = evaluation.decision.staff_text(now);
        if let Decision::Rejected(Rejection::UnreadableCode(e) | Rejection::BadSignature(e)) =
            &evaluation.decision
        {
            detail = format!("{detail} ({e})");
        }
        let record = ScanRecord::from_evaluation(
            &evaluation,
            ScanContext {
                scan_id,
                gate: self.number,
                direction: self.direction,
                scanned_at_ms: now_ms,
                source: scan.source.to_string(),
            },
        );
        ScanOutcome {
            record,
            next_state: evaluation.next_state,
            detail,
        }
    }

    pub fn verdict(&self, outcome: &ScanOutcome, journaled: bool) -> Verdict {
        let r = &outcome.record;
        Verdict {
            scan_id: r.scan_id,
            source: r.source.clone(),
            at_ms: r.scanned_at_ms,
            outcome: r.outcome.clone(),
            opens: r.opened,
            text: outcome.detail.clone(),
            tier: r.tier,
            tier_name: r.tier.and_then(|t| self.tier_names.get(&t).cloned()),
            ticket_id: r.ticket_id,
            journaled,
        }
    }

    /// The verdict when the journal could not be written and the gate fails closed.
    pub fn journal_failure_verdict(
        &self,
        outcome: &ScanOutcome,
        failure: &JournalFailure,
    ) -> Verdict {
        let mut v = self.verdict(outcome, false);
        v.outcome = failure.outcome().to_owned();
        v.opens = false;
        v.text = match failure {
            JournalFailure::StorageFull(_) => {
                "Storage full - gate stays shut. Call a technician to free space on the gate"
                    .to_owned()
            }
            JournalFailure::Unavailable(error) => {
                format!("Cannot record scans - gate stays shut. Call a technician ({error})")
            }
        };
        v
    }
}

/// Where the agent reads the time. Tests pass a fixed or stepped clock.
pub trait Clock: Send + Sync {
    /// Unix milliseconds.
    fn now_ms(&self) -> i64;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// A clock fixed at a settable time.
#[derive(Debug, Default)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    pub fn new(now_ms: i64) -> Self {
        Self(std::sync::atomic::AtomicI64::new(now_ms))
    }
    pub fn set(&self, now_ms: i64) {
        self.0.store(now_ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}
