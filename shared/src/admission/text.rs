//! The words a gate's screen shows for each outcome, in the terms staff use.
//! Separate from the stable codes ([`Decision::code`]): the words may change,
//! the codes never do.

use super::{AdmissionKind, Decision, Rejection};
use crate::UnixSeconds;
use crate::credential::CredentialError;

impl Decision {
    /// Words for the gate's screen, in the terms staff use. `now` turns
    /// timestamps into "12 min ago" so no time zone is needed.
    pub fn staff_text(&self, now: UnixSeconds) -> String {
        match self {
            Decision::Admitted(a) => match a.kind {
                AdmissionKind::FirstEntry => "Welcome - entry OK".to_owned(),
                AdmissionKind::ReEntry { exited_at } => {
                    format!("Re-entry OK (went out {})", ago(now, exited_at))
                }
                AdmissionKind::ReEntryWithoutExit { entered_at } => {
                    format!("Re-entry OK (came in {})", ago(now, entered_at))
                }
                AdmissionKind::UnknownTicket => {
                    "Entry OK - new ticket, signature checked".to_owned()
                }
            },
            Decision::ExitRecorded {
                was_inside: true, ..
            } => "Exit recorded".to_owned(),
            Decision::ExitRecorded {
                was_inside: false, ..
            } => "Exit recorded (no entry was on record)".to_owned(),
            Decision::Rejected(r) => r.staff_text(now),
        }
    }
}

impl Rejection {
    /// Words for the gate's screen; `now` turns timestamps into "12 min ago".
    pub fn staff_text(&self, now: UnixSeconds) -> String {
        match self {
            Rejection::UnreadableCode(_) => "Not a ticket code - scan again".to_owned(),
            Rejection::BadSignature(CredentialError::BadDelegationSignature) => {
                "FORGED live code: not approved by the ticket holder's wallet - call a supervisor"
                    .to_owned()
            }
            Rejection::BadSignature(CredentialError::BadSessionSignature) => {
                "FORGED live code: not signed by the holder's phone - call a supervisor".to_owned()
            }
            Rejection::BadSignature(_) => "FORGED CODE - call a supervisor".to_owned(),
            Rejection::IssuerKeyMissing => {
                "Gate has no ticket data for this event - call a technician".to_owned()
            }
            Rejection::WrongEvent { ticket_event, .. } => {
                format!("Ticket is for another event (#{ticket_event})")
            }
            Rejection::EventCancelled => "Event cancelled".to_owned(),
            Rejection::DoorsNotOpen { opens_at } => {
                format!("Doors not open yet - open {}", until(now, *opens_at))
            }
            Rejection::DoorsClosed { closed_at } => {
                format!("Doors closed {}", ago(now, *closed_at))
            }
            Rejection::EventEnded { ended_at, .. } => {
                format!("Event is over (ended {})", ago(now, *ended_at))
            }
            Rejection::TierNotAllowed { tier } => {
                format!("Tier {tier} ticket: not valid at this gate - send to the right gate")
            }
            Rejection::Frozen => "Ticket on security hold - call a supervisor".to_owned(),
            Rejection::Revoked => "Ticket revoked".to_owned(),
            Rejection::Refunded => "Ticket refunded - no longer valid".to_owned(),
            Rejection::StaleGeneration { .. } => {
                "Old code: ticket was transferred - ask for the current code".to_owned()
            }
            Rejection::OwnerMismatch => "Code does not match the ticket's holder".to_owned(),
            Rejection::HolderProofMissing => {
                "Show the live code from the ticket app (not a screenshot)".to_owned()
            }
            Rejection::HolderProofStale {
                signed_at,
                window_secs,
            } if *signed_at <= now => format!(
                "Code is a screenshot: older than {window_secs} s (made {}) - ask for the live code",
                ago(now, *signed_at)
            ),
            Rejection::HolderProofStale { signed_at, .. } => format!(
                "Code dated {} s ahead: the phone's clock is wrong - ask the holder to fix it",
                signed_at.saturating_sub(now)
            ),
            Rejection::HolderKeyNotYetValid { valid_from } => format!(
                "Ticket page not approved yet (from {}) - check the phone's clock",
                until(now, *valid_from)
            ),
            Rejection::HolderKeyExpired { valid_until } => format!(
                "Ticket page's approval ran out {} - holder must reopen the ticket page and approve with the wallet",
                ago(now, *valid_until)
            ),
            Rejection::UnknownTicket => "Unknown ticket - send to the box office".to_owned(),
            Rejection::AlreadyInside { since, gate } => {
                format!(
                    "ALREADY INSIDE - entered {} at gate {gate}",
                    ago(now, *since)
                )
            }
            Rejection::ReEntryNotAllowed { exited_at } => {
                format!("No re-entry at this event (left {})", ago(now, *exited_at))
            }
            Rejection::ReEntryTooSoon { allowed_at, .. } => {
                format!("Re-entry allowed {}", until(now, *allowed_at))
            }
        }
    }
}

pub(super) fn ago(now: UnixSeconds, at: UnixSeconds) -> String {
    let secs = now.saturating_sub(at).max(0);
    match secs {
        0..=59 => format!("{secs} s ago"),
        60..=5999 => format!("{} min ago", secs / 60),
        _ => format!("{} h ago", secs / 3600),
    }
}

fn until(now: UnixSeconds, at: UnixSeconds) -> String {
    let secs = at.saturating_sub(now).max(0);
    match secs {
        0..=59 => format!("in {secs} s"),
        60..=5999 => format!("in {} min", secs / 60),
        _ => format!("in {} h", secs / 3600),
    }
}
