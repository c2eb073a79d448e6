//! Validation for handheld clients without the gate agent. The same
//! `shared::evaluate` as the gates, against the server's view of each ticket
//! (the organizer's fields plus where the holder is by every gate's scans).
//! Every scan goes into the same journal table as the gates' uploads, so
//! conflicts, per-gate counts and the batched replay on chain treat them
//! alike: an admission here is recorded on chain in the next
//! `validate_entries` batch, not one transaction per scan.
//!
//! [`validate_online`] decides now; [`ingest_offline`] stores scans a
//! handheld decided while offline, idempotent by scan id, each with the code
//! it scanned, which is verified: the posted outcome is never taken on its
//! word alone. Who may validate which event is `super::staff`'s.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use shared::wire::{CachedEvent, JournalAck, RefusedScan, ScanContext, ScanRecord};
use shared::{Credential, GatePolicy, PublicKeyBytes};
use tokio::sync::Mutex;
use uuid::Uuid;

use super::gates::{after_ingest, record_fault, with_refusals};
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
    let policy = event.policy_for(gate, info.direction, info.allowed_tiers);
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

/// A scan a handheld decided offline, with the code (the QR credential's
/// text) it scanned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandheldScan {
    pub record: ScanRecord,
    pub code: Option<String>,
}

/// Stores scans `validator`'s handheld decided offline at `gate`;
/// idempotent by scan id. Each scan must name that gate. Each record is
/// checked against the code it carries (signed by the event's issuer, for
/// this event, the record's ticket and generation) and refused on its own
/// otherwise (`code_missing`, `code_invalid`, `code_mismatch`,
/// `wrong_event`, `outcome_invalid`, `source_invalid`): nothing of a refused
/// record is stored. New admissions the server would have refused are
/// recorded as incidents.
pub async fn ingest_offline(
    services: &Services,
    validator: &PublicKeyBytes,
    event_id: u64,
    gate: u32,
    scans: &[HandheldScan],
) -> Result<JournalAck, ServiceError> {
    let (event, _) = event_and_policy(services, event_id, gate).await?;
    if let Some(i) = scans.iter().position(|scan| scan.record.gate != gate) {
        return Err(ServiceError::invalid(
            format!("scans[{i}].gate"),
            "must be the gate of the request",
        ));
    }
    let mut kept = Vec::with_capacity(scans.len());
    let mut owners = HashMap::new();
    let mut refused = Vec::new();
    for scan in scans {
        match checked_record(&event, scan) {
            Ok((record, owner)) => {
                owners.insert(record.scan_id, owner);
                kept.push(record);
            }
            Err(reason) => refused.push(RefusedScan {
                scan_id: scan.record.scan_id,
                reason: reason.to_owned(),
            }),
        }
    }
    super::incidents::review(services, &event, gate, &kept, &owners).await?;
    let (mut ack, new_outcomes) = services
        .store
        .ingest_counted(
            &handheld(validator, event_id, gate),
            &kept,
            services.clock.now(),
        )
        .await?;
    with_refusals(services, &mut ack, refused);
    after_ingest(services, gate, &ack, &new_outcomes);
    Ok(ack)
}

/// The record to store for a handheld's scan, with its ids taken from the
/// verified code and the code's owner; or why it is refused.
fn checked_record(
    event: &CachedEvent,
    scan: &HandheldScan,
) -> Result<(ScanRecord, PublicKeyBytes), &'static str> {
    let record = &scan.record;
    if let Some(fault) = record_fault(record, event.event_id) {
        return Err(fault);
    }
    if shared::outcome_opens(&record.outcome).is_none() {
        return Err("outcome_invalid");
    }
    let code = scan
        .code
        .as_deref()
        .filter(|code| !code.trim().is_empty())
        .ok_or("code_missing")?;
    let credential = Credential::decode(code).map_err(|_| "code_invalid")?;
    if credential.body.event_id != event.event_id {
        return Err("wrong_event");
    }
    let keys = |id: u64| -> Vec<PublicKeyBytes> {
        if id == event.event_id {
            event.issuer_keys.clone()
        } else {
            Vec::new()
        }
    };
    let verified = credential.verify(&keys).map_err(|_| "code_invalid")?;
    let body = verified.body();
    if record.ticket_id.is_some_and(|id| id != body.ticket_id)
        || record.generation.is_some_and(|g| g != body.generation)
    {
        return Err("code_mismatch");
    }
    let mut stored = record.clone();
    stored.event_id = Some(body.event_id);
    stored.ticket_id = Some(body.ticket_id);
    stored.generation = Some(body.generation);
    stored.tier = record.tier.or(Some(body.tier));
    Ok((stored, body.owner))
}
