//! The forms of an event's settings page: what each holds, filled from
//! the event, and read back into the API's bodies (or what is wrong, in
//! words an organizer understands).

use serde::Deserialize;
use shared::{HolderProofPolicy, ReentryPolicy, TierGates, UnknownTicketPolicy};

use super::events::{utc, whole_number};
use crate::http::api::events::UpdateEventBody;
use crate::http::validation::Validate;
use crate::services::rules::RulesChange;
use crate::store::EventRecord;

/// The details form (times as `YYYY-MM-DDTHH:MM`, UTC; numbers as text so
/// an empty one is named in words).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct EditEventForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub venue: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub starts_at: String,
    #[serde(default)]
    pub ends_at: String,
    #[serde(default)]
    pub doors_open_minutes: String,
    #[serde(default)]
    pub capacity: String,
    /// `yes` when ticked.
    #[serde(default)]
    pub transferable: Option<String>,
}

/// The rules form.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct RulesForm {
    /// `forbidden`, `allowed` (no exit scan needed) or `allowed_after`
    /// (exit required).
    #[serde(default)]
    pub reentry: String,
    #[serde(default)]
    pub min_outside_minutes: String,
    /// Seconds, 0 for off.
    #[serde(default)]
    pub undo_window_secs: String,
    /// `reject` or `admit_if_signed`.
    #[serde(default)]
    pub unknown_tickets: String,
    /// `not_required` or `required`.
    #[serde(default)]
    pub holder_proof: String,
    #[serde(default)]
    pub proof_window_secs: String,
    #[serde(default)]
    pub end_grace_minutes: String,
    /// Per tier index: the gate numbers admitting it, comma separated
    /// (empty: any gate). Named `tier_gates_0`, `tier_gates_1`, ...
    #[serde(flatten)]
    pub tier_gates: std::collections::BTreeMap<String, String>,
}

/// `2026-12-05T18:30` for a Unix time (what a `datetime-local` input holds).
pub(super) fn local(unix: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(unix).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()[..16].to_owned()
}

impl EditEventForm {
    pub(super) fn of(event: &EventRecord, chain: &ticketing::client::Event) -> Self {
        Self {
            name: event.name.clone(),
            venue: event.venue.clone(),
            description: event.description.clone(),
            starts_at: local(event.starts_at),
            ends_at: local(event.ends_at),
            doors_open_minutes: ((chain.starts_at - chain.doors_open_at).max(0) / 60).to_string(),
            capacity: event.capacity.to_string(),
            transferable: chain.transferable.then(|| "yes".into()),
        }
    }

    /// The API's body for this form, or what is wrong, in words.
    pub(super) fn body(&self) -> Result<UpdateEventBody, String> {
        let body = UpdateEventBody {
            name: Some(self.name.trim().to_owned()),
            description: Some(self.description.trim().to_owned()),
            venue: Some(self.venue.trim().to_owned()),
            starts_at: Some(utc("starts", &self.starts_at)?),
            ends_at: Some(utc("ends", &self.ends_at)?),
            doors_open_secs_before: Some(
                whole_number(
                    "Doors open, minutes before the start",
                    &self.doors_open_minutes,
                    0..=1440,
                    None,
                )? * 60,
            ),
            capacity: Some(whole_number("Capacity", &self.capacity, 1..=100_000, None)?),
            transferable: Some(self.transferable.is_some()),
            rules: None,
        };
        body.validate().map_err(|e| e.to_string())?;
        Ok(body)
    }
}

impl RulesForm {
    pub(super) fn of(event: &EventRecord) -> Self {
        let (reentry, outside) = match event.reentry {
            ReentryPolicy::Forbidden => ("forbidden", 0),
            ReentryPolicy::Allowed => ("allowed", 0),
            ReentryPolicy::AllowedAfter { min_outside_secs } => {
                ("allowed_after", min_outside_secs / 60)
            }
        };
        let (proof, window) = match event.holder_proof {
            HolderProofPolicy::NotRequired => ("not_required", 30),
            HolderProofPolicy::Required { window_secs } => ("required", window_secs),
        };
        Self {
            reentry: reentry.into(),
            min_outside_minutes: outside.to_string(),
            undo_window_secs: event.undo_window_secs.to_string(),
            unknown_tickets: match event.unknown_tickets {
                UnknownTicketPolicy::Reject => "reject",
                UnknownTicketPolicy::AdmitIfSigned => "admit_if_signed",
            }
            .into(),
            holder_proof: proof.into(),
            proof_window_secs: window.to_string(),
            end_grace_minutes: (event.end_grace_secs / 60).to_string(),
            tier_gates: event
                .tier_gates
                .iter()
                .map(|rule| {
                    let gates: Vec<String> = rule.gates.iter().map(u32::to_string).collect();
                    (format!("tier_gates_{}", rule.tier), gates.join(", "))
                })
                .collect(),
        }
    }

    /// The rules this form sets (all of them), or what is wrong, in words.
    pub(super) fn change(&self, tiers: &[shared::wire::TierInfo]) -> Result<RulesChange, String> {
        let outside = whole_number(
            "Minutes outside before re-entry",
            &self.min_outside_minutes,
            0..=1440,
            Some(0),
        )?;
        let reentry = reentry_of(&self.reentry, outside)
            .ok_or("Re-entry: choose forbidden, allowed, or allowed after an exit scan")?;
        let unknown_tickets = match self.unknown_tickets.as_str() {
            "reject" => UnknownTicketPolicy::Reject,
            "admit_if_signed" => UnknownTicketPolicy::AdmitIfSigned,
            _ => return Err("Tickets a gate does not know yet: choose refuse or admit".into()),
        };
        let holder_proof = match self.holder_proof.as_str() {
            "not_required" => HolderProofPolicy::NotRequired,
            "required" => HolderProofPolicy::Required {
                window_secs: whole_number(
                    "Holder proof window (seconds)",
                    &self.proof_window_secs,
                    1..=3600,
                    None,
                )?,
            },
            _ => return Err("Holder proof: choose required or not".into()),
        };
        let mut tier_gates = Vec::new();
        for tier in tiers {
            let text = self
                .tier_gates
                .get(&format!("tier_gates_{}", tier.index))
                .map(|t| t.trim())
                .unwrap_or_default();
            if text.is_empty() {
                continue;
            }
            let mut gates = Vec::new();
            for part in text.split([',', ' ']).filter(|p| !p.is_empty()) {
                let gate = whole_number(
                    &format!("Gates for tier {}", tier.name),
                    part,
                    1..=u32::MAX,
                    None,
                )
                .map_err(|_| {
                    format!(
                        "Gates for tier {}: gate numbers separated by commas, like 1, 3 ({part:?} is not one)",
                        tier.name
                    )
                })?;
                if !gates.contains(&gate) {
                    gates.push(gate);
                }
            }
            tier_gates.push(TierGates {
                tier: tier.index,
                gates,
            });
        }
        Ok(RulesChange {
            reentry: Some(reentry),
            unknown_tickets: Some(unknown_tickets),
            holder_proof: Some(holder_proof),
            tier_gates: Some(tier_gates),
            end_grace_secs: Some(
                whole_number(
                    "Minutes after the end gates still admit",
                    &self.end_grace_minutes,
                    0..=1440,
                    Some(0),
                )? * 60,
            ),
            undo_window_secs: Some(whole_number(
                "Turnstile undo window (seconds, 0 for off)",
                &self.undo_window_secs,
                0..=120,
                Some(0),
            )?),
        })
    }
}

/// The re-entry rule a form's `reentry` choice and minutes outside mean.
pub(super) fn reentry_of(choice: &str, min_outside_minutes: u32) -> Option<ReentryPolicy> {
    match choice {
        "forbidden" => Some(ReentryPolicy::Forbidden),
        "allowed" => Some(ReentryPolicy::Allowed),
        "allowed_after" => Some(ReentryPolicy::AllowedAfter {
            min_outside_secs: min_outside_minutes * 60,
        }),
        _ => None,
    }
}

/// An event's check-in rules in a line of words, for its live page.
pub(super) fn rules_summary(event: &shared::wire::CachedEvent) -> String {
    let reentry = match event.reentry {
        ReentryPolicy::Forbidden => "forbidden".to_owned(),
        ReentryPolicy::Allowed => "allowed, no exit scan needed".to_owned(),
        ReentryPolicy::AllowedAfter {
            min_outside_secs: 0,
        } => "after an exit scan".to_owned(),
        ReentryPolicy::AllowedAfter { min_outside_secs } => format!(
            "after an exit scan and {} min outside",
            min_outside_secs / 60
        ),
    };
    let undo = match event.undo_window_secs {
        0 => "off".to_owned(),
        secs => format!("{secs} s"),
    };
    format!("Re-entry: {reentry} · Turnstile undo: {undo}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_through_the_form() {
        assert_eq!(local(1_764_075_600), "2025-11-25T13:00");
        assert_eq!(utc("starts", &local(1_764_075_600)), Ok(1_764_075_600));
    }
}
