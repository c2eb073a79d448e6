//! The rules applied after the fact: a journal record's admission reviewed
//! with the server's fresher data ([`review_admission`]), and which outcome
//! codes open a gate ([`outcome_opens`]). The review goes through the one
//! implementation of the rules, `decide`'s.

use super::{
    Decision, Direction, GatePolicy, HolderProofPolicy, Presence, Rejection, TicketState,
    decide_presented,
};
use crate::UnixSeconds;
use crate::credential::{CheckedHolderProof, VerifiedCredential};
use crate::keys::PublicKeyBytes;

/// Codes of every refusal ([`Rejection::code`]).
const REJECTION_CODES: &[&str] = &[
    "unreadable_code",
    "bad_signature",
    "issuer_key_missing",
    "wrong_event",
    "event_cancelled",
    "doors_not_open",
    "doors_closed",
    "event_ended",
    "tier_not_allowed",
    "frozen",
    "revoked",
    "refunded",
    "stale_generation",
    "owner_mismatch",
    "holder_proof_missing",
    "holder_proof_stale",
    "holder_key_not_yet_valid",
    "holder_key_expired",
    "unknown_ticket",
    "already_inside",
    "reentry_not_allowed",
    "reentry_too_soon",
];

/// Whether a decision with the stable `code` opens the gate: `Some(true)` for
/// admissions and exits, `Some(false)` for refusals, `None` for a code this
/// build does not know. Lets the server check an uploaded record's `opened`
/// against its `outcome`.
pub fn outcome_opens(code: &str) -> Option<bool> {
    match code {
        "admitted" | "readmitted" | "admitted_unknown_ticket" | "exit_recorded" => Some(true),
        c if REJECTION_CODES.contains(&c) => Some(false),
        super::undo::UNDO_OUTCOME => Some(false),
        _ => None,
    }
}

/// What a scanned code presents, as far as the rules go: a verified
/// credential's body, or what a journal record says a gate verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presented {
    pub event_id: u64,
    pub ticket_id: u32,
    pub tier: u8,
    pub generation: u32,
    /// `None` when only a journal record is at hand: it does not carry the
    /// owner, so the owner check is left to the gate that saw the code.
    pub owner: Option<PublicKeyBytes>,
    /// The holder proof the code carried, its signatures checked.
    pub holder_proof: Option<CheckedHolderProof>,
}

impl From<&VerifiedCredential> for Presented {
    fn from(credential: &VerifiedCredential) -> Self {
        let body = credential.body();
        Self {
            event_id: body.event_id,
            ticket_id: body.ticket_id,
            tier: body.tier,
            generation: body.generation,
            owner: Some(body.owner),
            holder_proof: credential.holder_proof(),
        }
    }
}

/// An admission a gate (or a handheld) made, reviewed with what the server
/// knows now: the refusal [`decide`]'s rules give it with the ticket's
/// current standing (`state`) and the event's current rules (`policy`) at
/// the scan's time `at`, or `None` when they admit it too. Where the holder
/// was is left out (two admissions of one ticket are a conflict, which the
/// presence fold finds), and so is the holder proof (a journal record does
/// not carry it; the gate checked it).
pub fn review_admission(
    presented: &Presented,
    state: Option<&TicketState>,
    policy: &GatePolicy,
    at: UnixSeconds,
) -> Option<Rejection> {
    let standing = state.map(|s| TicketState {
        presence: Presence::NeverEntered,
        entries: 0,
        ..*s
    });
    let rules = GatePolicy {
        direction: Direction::Entry,
        holder_proof: HolderProofPolicy::NotRequired,
        ..policy.clone()
    };
    match decide_presented(presented, standing.as_ref(), &rules, at) {
        Decision::Rejected(rejection) => Some(rejection),
        Decision::Admitted(_) | Decision::ExitRecorded { .. } => None,
    }
}
