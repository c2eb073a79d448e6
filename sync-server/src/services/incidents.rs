//! Incidents: admissions an offline gate or handheld made that the server,
//! with its fresher data, would have refused (revoked, frozen, stale
//! generation, unknown ticket, outside the event's time, wrong tier or
//! gate). Found at ingest by the one implementation of the rules,
//! `shared::review_admission` (`decide` fed with the server's current
//! standing of the ticket and the event's current rules at the scan's time),
//! counted in `sync_incidents_total{reason}`, and listed for the organizer
//! next to the conflicts.

use std::collections::HashMap;

use serde::Serialize;
use shared::wire::{CachedEvent, ScanRecord};
use shared::{Direction, Presence, Presented, PublicKeyBytes, TicketState, review_admission};
use uuid::Uuid;

use super::{ServiceError, Services};
use crate::store::{Conflict, Incident};

/// What an organizer reviews after the doors: double admissions and
/// admissions the server would have refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct IncidentReport {
    /// Admissions of a ticket whose holder was already inside (e.g. two
    /// gates offline at once), oldest first.
    pub conflicts: Vec<Conflict>,
    /// Admissions the server would have refused, oldest first.
    pub incidents: Vec<Incident>,
}

/// The conflicts and incidents of an event; not found for an unknown event.
pub async fn report(services: &Services, event_id: u64) -> Result<IncidentReport, ServiceError> {
    super::events::organizer_of(services, event_id).await?;
    Ok(IncidentReport {
        conflicts: services.store.conflicts(event_id, None).await?,
        incidents: services.store.incidents(event_id).await?,
    })
}

/// Reviews the admissions among `scans` (filed under `event` at `gate`)
/// that the server has not stored yet, and records those it would have
/// refused. `owners` holds the owner of each scan's verified code where the
/// upload carried one (handhelds); a gate's record does not. Runs before the
/// scans are stored: a crash in between leaves incidents that are listed
/// once their scans arrive.
pub(crate) async fn review(
    services: &Services,
    event: &CachedEvent,
    gate: u32,
    scans: &[ScanRecord],
    owners: &HashMap<Uuid, PublicKeyBytes>,
) -> Result<(), ServiceError> {
    let admissions: Vec<&ScanRecord> = scans
        .iter()
        .filter(|s| s.opened && s.direction == Direction::Entry && s.ticket_id.is_some())
        .collect();
    if admissions.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = admissions.iter().map(|s| s.scan_id).collect();
    let stored = services.store.stored_scan_ids(&ids).await?;
    let fresh: Vec<&ScanRecord> = admissions
        .into_iter()
        .filter(|s| !stored.contains(&s.scan_id))
        .collect();
    if fresh.is_empty() {
        return Ok(());
    }
    let mut ticket_ids: Vec<u32> = fresh.iter().filter_map(|s| s.ticket_id).collect();
    ticket_ids.sort_unstable();
    ticket_ids.dedup();
    let standing: HashMap<u32, TicketState> = services
        .store
        .tickets_by_id(event.event_id, &ticket_ids)
        .await?
        .into_iter()
        .map(|t| {
            let state = TicketState {
                event_id: t.event_id,
                ticket_id: t.ticket_id,
                tier: t.tier,
                owner: t.owner,
                generation: t.generation,
                status: t.status,
                presence: Presence::NeverEntered,
                entries: 0,
            };
            (t.ticket_id, state)
        })
        .collect();
    let allowed_tiers = services
        .store
        .gate(event.event_id, gate)
        .await?
        .and_then(|g| g.allowed_tiers);
    let policy = event.policy_for(gate, Direction::Entry, allowed_tiers);
    let now = services.clock.now();
    let incidents: Vec<Incident> = fresh
        .into_iter()
        .filter_map(|scan| {
            let ticket_id = scan.ticket_id?;
            let state = standing.get(&ticket_id);
            let presented = Presented {
                event_id: event.event_id,
                ticket_id,
                tier: scan.tier.or(state.map(|s| s.tier)).unwrap_or(0),
                generation: scan.generation.or(state.map(|s| s.generation))?,
                owner: owners.get(&scan.scan_id).copied(),
                holder_proof: None,
            };
            let at = scan.scanned_at_ms.div_euclid(1000);
            let refusal = review_admission(&presented, state, &policy, at)?;
            Some(Incident {
                scan_id: scan.scan_id,
                event_id: event.event_id,
                ticket_id: Some(ticket_id),
                gate,
                reason: refusal.code().to_owned(),
                scanned_at_ms: scan.scanned_at_ms,
                recorded_at: now,
            })
        })
        .collect();
    if incidents.is_empty() {
        return Ok(());
    }
    let new = services.store.record_incidents(&incidents).await?;
    for reason in &new {
        tracing::warn!(event = event.event_id, gate, reason = %reason,
            "an offline admission the server would have refused");
    }
    services
        .metrics
        .count_incidents(new.iter().map(String::as_str));
    Ok(())
}
