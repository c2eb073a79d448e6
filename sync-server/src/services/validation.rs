//! Validation for handheld clients without the gate agent. The same
//! `shared::evaluate` as the gates, against the server's view of each ticket
//! (the organizer's fields plus where the holder is by every gate's scans).
//! Every scan goes into the same journal table as the gates' uploads, so
//! conflicts, per-gate counts and the batched replay on chain treat them
//! alike: an admission here is recorded on chain in the next
//! `validate_entries` batch, not one transaction per scan.
//!
//! [`validate_online`] decides now; [`ingest_offline`] stores scans a
//! handheld decided while offline, idempotent by scan id.

use sha2::{Digest, Sha256};
use shared::wire::{CachedEvent, JournalAck, ScanContext, ScanRecord};
use shared::{Credential, GatePolicy, PublicKeyBytes};
use tokio::sync::Mutex;
use uuid::Uuid;

use super::gates::after_ingest;
use super::{ServiceError, Services};
use crate::store::Device;

/// Online decisions are made one at a time in a server, so two handhelds
/// cannot both admit one ticket between a read and a write. (Across several
/// servers, the second admission is kept and flagged as a conflict, as for
/// gates that were offline.)
static DECIDING: Mutex<()> = Mutex::const_new(());

/// An online decision as journalled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlineDecision {
    pub scan_id: Uuid,
    /// Stable outcome code (`admitted`, `already_inside`, `revoked`, ...).
    pub outcome: String,
    /// Let the holder through.
    pub opens: bool,
    /// Words for staff.
    pub text: String,
    pub ticket_id: Option<u32>,
    /// This admission conflicts with an earlier one (the holder was inside).
    pub conflict: bool,
}

/// A stable pseudo-device per validator wallet, so its scans are filed like
/// a gate's.
fn handheld(validator: &PublicKeyBytes, event_id: u64, gate: u32) -> Device {
    let digest = Sha256::digest([b"handheld:".as_slice(), &validator.0].concat());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Device {
        device_id: uuid::Builder::from_custom_bytes(bytes).into_uuid(),
        public_key: *validator,
        event_id,
        gate_number: gate,
        revoked: false,
    }
}

/// The event and the admission policy of its gate `gate`: not found for an
/// unknown event, an invalid `gate` field for an unknown gate.
async fn event_and_policy(
    services: &Services,
    event_id: u64,
    gate: u32,
) -> Result<(CachedEvent, GatePolicy), ServiceError> {
    let event = services
        .store
        .event(event_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no event {event_id}")))?;
    let info = services.store.gate(event_id, gate).await?.ok_or_else(|| {
        ServiceError::invalid("gate", format!("event {event_id} has no gate {gate}"))
    })?;
    let policy = GatePolicy {
        event_id,
        gate,
        direction: info.direction,
        event_status: event.status,
        doors: event.doors,
        allowed_tiers: info.allowed_tiers,
        reentry: event.reentry,
        unknown_tickets: event.unknown_tickets,
        holder_proof: event.holder_proof,
    };
    Ok((event, policy))
}

/// The admission policy of an event's gate.
pub async fn policy(
    services: &Services,
    event_id: u64,
    gate: u32,
) -> Result<GatePolicy, ServiceError> {
    Ok(event_and_policy(services, event_id, gate).await?.1)
}

/// Decides the QR `code` scanned by `validator` at `gate` now, and
/// journals the scan like a gate's.
pub async fn validate_online(
    services: &Services,
    validator: &PublicKeyBytes,
    event_id: u64,
    gate: u32,
    code: &str,
) -> Result<OnlineDecision, ServiceError> {
    let (event, policy) = event_and_policy(services, event_id, gate).await?;
    let keys = |id: u64| -> Vec<PublicKeyBytes> {
        if id == event.event_id {
            event.issuer_keys.clone()
        } else {
            Vec::new()
        }
    };
    let one_at_a_time = DECIDING.lock().await;
    // The ticket's state is read before deciding (decide itself is pure).
    let prior = match Credential::decode(code) {
        Ok(c) => {
            services
                .store
                .ticket_state(c.body.event_id, c.body.ticket_id)
                .await?
        }
        Err(_) => None,
    };
    let now = services.clock.now();
    let evaluation = shared::evaluate(code, &keys, |_, _| prior, &policy, now);
    // One record rule with the gate (`shared`): the tier is the decision's,
    // else the code's.
    let scan = ScanRecord::from_evaluation(
        &evaluation,
        ScanContext {
            scan_id: Uuid::now_v7(),
            gate,
            direction: policy.direction,
            scanned_at_ms: now.saturating_mul(1000),
            source: format!("api:{}", validator.to_base58()),
        },
    );
    let (ack, new_outcomes) = services
        .store
        .ingest_counted(
            &handheld(validator, event_id, gate),
            std::slice::from_ref(&scan),
            now,
        )
        .await?;
    drop(one_at_a_time);
    after_ingest(services, gate, &ack, &new_outcomes);
    Ok(OnlineDecision {
        conflict: ack.conflicts.contains(&scan.scan_id),
        scan_id: scan.scan_id,
        text: evaluation.decision.staff_text(now),
        outcome: scan.outcome,
        opens: scan.opened,
        ticket_id: scan.ticket_id,
    })
}

/// Stores scans `validator`'s handheld decided offline at `gate`;
/// idempotent by scan id. Each scan must name that gate.
pub async fn ingest_offline(
    services: &Services,
    validator: &PublicKeyBytes,
    event_id: u64,
    gate: u32,
    scans: &[ScanRecord],
) -> Result<JournalAck, ServiceError> {
    policy(services, event_id, gate).await?;
    if let Some(i) = scans.iter().position(|scan| scan.gate != gate) {
        return Err(ServiceError::invalid(
            format!("scans[{i}].gate"),
            "must be the gate of the request",
        ));
    }
    let (ack, new_outcomes) = services
        .store
        .ingest_counted(
            &handheld(validator, event_id, gate),
            scans,
            services.clock.now(),
        )
        .await?;
    after_ingest(services, gate, &ack, &new_outcomes);
    Ok(ack)
}
