//! The organizer's check-in rules for an event and the sanity of its times.
//!
//! Every rule the gates apply is the organizer's and settable per event:
//! re-entry, unknown-but-signed tickets, the holder proof and its window,
//! which gates admit which tier, how long after the end gates still admit,
//! and the turnstile undo window. They are stored on the event and reach running gates through the
//! change feed (the cached event carries them), so a change takes effect at
//! the next delta. Events made through the ticketing API close their doors
//! at the end plus its grace, so the grace is what the organizer sets.

use serde::{Deserialize, Serialize};
use shared::wire::CachedEvent;
use shared::{HolderProofPolicy, ReentryPolicy, TierGates, UnknownTicketPolicy};

use super::{ServiceError, Services};

/// Longest a re-entry wait, a holder proof window or an end-time grace may
/// be: a day.
const MAX_RULE_SECS: u32 = 86_400;
/// Longest holder proof window: an hour (a longer one makes screenshots
/// work again).
const MAX_PROOF_WINDOW_SECS: u32 = 3600;
/// Most gates one tier may be sent to.
const MAX_GATES_PER_TIER: usize = 64;
/// Longest turnstile undo window: two minutes (a turnstile's "not passed"
/// comes within seconds; longer would let a ticket in twice).
const MAX_UNDO_WINDOW_SECS: u32 = 120;

/// An event's check-in rules, all of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EventRules {
    /// `"forbidden"`; `{"allowed_after": {"min_outside_secs": N}}` (exit
    /// required: only after an exit scan and N seconds outside); or
    /// `"allowed"` (at any time, no exit scan needed).
    pub reentry: ReentryPolicy,
    /// A well-signed ticket the gate does not know yet (minted after its
    /// last sync): `"reject"` or `"admit_if_signed"`.
    pub unknown_tickets: UnknownTicketPolicy,
    /// `"not_required"`, or `{"required": {"window_secs": N}}`: the holder's
    /// rotating proof, at most N seconds old.
    pub holder_proof: HolderProofPolicy,
    /// Which gates (by number) admit which tier; a tier not listed passes
    /// any gate.
    pub tier_gates: Vec<TierGates>,
    /// Seconds after the event's end during which gates still admit.
    pub end_grace_secs: u32,
    /// Turnstile undo window in seconds (0: off): how long after an
    /// admission a gate may void it when the holder did not pass.
    pub undo_window_secs: u32,
}

impl EventRules {
    /// The rules an event carries now.
    pub fn of(event: &CachedEvent) -> Self {
        Self {
            reentry: event.reentry,
            unknown_tickets: event.unknown_tickets,
            holder_proof: event.holder_proof,
            tier_gates: event.tier_gates.clone(),
            end_grace_secs: event.end_grace_secs,
            undo_window_secs: event.undo_window_secs,
        }
    }
}

impl From<&crate::store::EventRecord> for EventRules {
    fn from(r: &crate::store::EventRecord) -> Self {
        Self {
            reentry: r.reentry,
            unknown_tickets: r.unknown_tickets,
            holder_proof: r.holder_proof,
            tier_gates: r.tier_gates.clone(),
            end_grace_secs: r.end_grace_secs,
            undo_window_secs: r.undo_window_secs,
        }
    }
}

impl Default for EventRules {
    /// What an event gets unless its organizer says otherwise: no re-entry,
    /// only tickets the gate knows, no holder proof, any tier at any gate,
    /// no grace after the end.
    fn default() -> Self {
        Self {
            reentry: ReentryPolicy::Forbidden,
            unknown_tickets: UnknownTicketPolicy::Reject,
            holder_proof: HolderProofPolicy::NotRequired,
            tier_gates: Vec::new(),
            end_grace_secs: 0,
            undo_window_secs: 0,
        }
    }
}

/// Rules to change; an absent one stays as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesChange {
    /// `"forbidden"`; `{"allowed_after": {"min_outside_secs": N}}` with N
    /// at most 86400 (exit required; `exit_required` is read as the same);
    /// or `"allowed"` (no exit scan needed).
    #[serde(default)]
    pub reentry: Option<ReentryPolicy>,
    /// `"reject"` or `"admit_if_signed"`.
    #[serde(default)]
    pub unknown_tickets: Option<UnknownTicketPolicy>,
    /// `"not_required"`, or `{"required": {"window_secs": N}}` with N from 1
    /// to 3600.
    #[serde(default)]
    pub holder_proof: Option<HolderProofPolicy>,
    /// The whole tier -> gates rule (replaces the current one): each tier
    /// of the event at most once, with 1 to 64 gate numbers.
    #[serde(default)]
    pub tier_gates: Option<Vec<TierGates>>,
    /// 0 to 86400 seconds.
    #[serde(default)]
    pub end_grace_secs: Option<u32>,
    /// Turnstile undo window, 0 (off) to 120 seconds.
    #[serde(default)]
    pub undo_window_secs: Option<u32>,
}

impl RulesChange {
    /// Checks each given rule for an event with `tiers` tiers; a refusal
    /// names the field as `{prefix}{name}` (`rules.end_grace_secs`).
    pub fn check(&self, prefix: &str, tiers: usize) -> Result<(), ServiceError> {
        let field = |name: &str| format!("{prefix}{name}");
        if let Some(ReentryPolicy::AllowedAfter { min_outside_secs }) = self.reentry
            && min_outside_secs > MAX_RULE_SECS
        {
            return Err(ServiceError::invalid(
                field("reentry.allowed_after.min_outside_secs"),
                format_args!("at most {MAX_RULE_SECS} seconds"),
            ));
        }
        if let Some(HolderProofPolicy::Required { window_secs }) = self.holder_proof
            && !(1..=MAX_PROOF_WINDOW_SECS).contains(&window_secs)
        {
            return Err(ServiceError::invalid(
                field("holder_proof.required.window_secs"),
                format_args!("must be from 1 to {MAX_PROOF_WINDOW_SECS} seconds"),
            ));
        }
        if let Some(grace) = self.end_grace_secs
            && grace > MAX_RULE_SECS
        {
            return Err(ServiceError::invalid(
                field("end_grace_secs"),
                format_args!("at most {MAX_RULE_SECS} seconds"),
            ));
        }
        if let Some(window) = self.undo_window_secs
            && window > MAX_UNDO_WINDOW_SECS
        {
            return Err(ServiceError::invalid(
                field("undo_window_secs"),
                format_args!("0 (off) to {MAX_UNDO_WINDOW_SECS} seconds"),
            ));
        }
        for (i, rule) in self.tier_gates.iter().flatten().enumerate() {
            let at = |name: &str| field(&format!("tier_gates[{i}].{name}"));
            if usize::from(rule.tier) >= tiers {
                return Err(ServiceError::invalid(
                    at("tier"),
                    format_args!(
                        "the event has {tiers} tiers (0 to {})",
                        tiers.saturating_sub(1)
                    ),
                ));
            }
            let listed = self.tier_gates.iter().flatten().take(i);
            if listed.into_iter().any(|earlier| earlier.tier == rule.tier) {
                return Err(ServiceError::invalid(at("tier"), "listed twice"));
            }
            if !(1..=MAX_GATES_PER_TIER).contains(&rule.gates.len()) {
                return Err(ServiceError::invalid(
                    at("gates"),
                    format_args!("1 to {MAX_GATES_PER_TIER} gate numbers"),
                ));
            }
        }
        Ok(())
    }

    /// The rules after this change.
    pub fn applied_to(&self, rules: &EventRules) -> EventRules {
        EventRules {
            reentry: self.reentry.unwrap_or(rules.reentry),
            unknown_tickets: self.unknown_tickets.unwrap_or(rules.unknown_tickets),
            holder_proof: self.holder_proof.unwrap_or(rules.holder_proof),
            tier_gates: self
                .tier_gates
                .clone()
                .unwrap_or_else(|| rules.tier_gates.clone()),
            end_grace_secs: self.end_grace_secs.unwrap_or(rules.end_grace_secs),
            undo_window_secs: self.undo_window_secs.unwrap_or(rules.undo_window_secs),
        }
    }
}

/// Writes `rules` into the cached event (what gates receive).
pub fn apply(event: &mut CachedEvent, rules: &EventRules) {
    event.reentry = rules.reentry;
    event.unknown_tickets = rules.unknown_tickets;
    event.holder_proof = rules.holder_proof;
    event.tier_gates = rules.tier_gates.clone();
    event.end_grace_secs = rules.end_grace_secs;
    event.undo_window_secs = rules.undo_window_secs;
}

/// When the doors of an event made through the ticketing API close: at its
/// end plus the grace the organizer gives latecomers.
pub fn doors_close_at(ends_at: i64, rules: &EventRules) -> i64 {
    ends_at.saturating_add(i64::from(rules.end_grace_secs))
}

/// An event's times make sense: it ends after it starts, and it does not lie
/// entirely in the past at `now`. When the order is wrong the refusal names
/// `moved` (`starts_at` when only the start moved, else `ends_at`).
pub fn check_times(
    starts_at: i64,
    ends_at: i64,
    now: i64,
    moved: &str,
) -> Result<(), ServiceError> {
    if ends_at <= starts_at {
        let reason = if moved == "starts_at" {
            "must be before ends_at"
        } else {
            "must be after starts_at"
        };
        return Err(ServiceError::invalid(moved, reason));
    }
    if ends_at <= now {
        return Err(ServiceError::invalid(
            "ends_at",
            "is in the past: an event cannot lie entirely in the past",
        ));
    }
    Ok(())
}

/// Changes an event's rules and publishes them to its gates (they apply them
/// from their next delta). Events made through the ticketing API move their
/// doors' closing with the grace.
pub async fn set(
    services: &Services,
    event_id: u64,
    change: &RulesChange,
) -> Result<EventRules, ServiceError> {
    let organizer = super::events::organizer_of(services, event_id).await?;
    let mut event = services
        .store
        .event(event_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no event {event_id}")))?;
    change.check("", event.tiers.len())?;
    let rules = change.applied_to(&EventRules::of(&event));
    apply(&mut event, &rules);
    if services.store.event_record(event_id).await?.is_some() {
        event.doors.closes_at = doors_close_at(event.ends_at, &rules);
    }
    services.publish_event(&event, &organizer).await?;
    Ok(rules)
}
