//! Admission rules: who may pass a gate, as one pure function.
//!
//! [`decide`] is the single source of the rules. The gate agent calls it
//! offline with its cached ticket state; the sync server calls it online with
//! its database state. Neither keeps rules of its own, so they never disagree.
//!
//! Every outcome is a variant carrying what gate staff need to act on it (the
//! time and gate of an earlier entry, when doors open, ...). The stable
//! machine code of an outcome ([`Decision::code`]) is what travels to the
//! server; the words shown to staff ([`Decision::staff_text`]) are separate.

use serde::{Deserialize, Serialize};

use crate::UnixSeconds;
use crate::credential::{
    CheckedHolderProof, CredentialError, IssuerKeys, VerifiedCredential, verify_text,
};
use crate::keys::PublicKeyBytes;

mod review;
mod text;
pub mod undo;

pub use review::{Presented, outcome_opens, review_admission};

/// Which way a scanner lets people through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Direction {
    Entry,
    Exit,
}

/// The event's own state, as the gate last heard it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EventStatus {
    Active,
    Cancelled,
}

/// When doors are open: `opens_at` inclusive, `closes_at` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DoorsWindow {
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub opens_at: UnixSeconds,
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub closes_at: UnixSeconds,
}

/// Whether an admitted holder may come in again: never, only after an
/// exit scan (organizers call it "exit required"), or at any time.
///
/// The JSON names are `"forbidden"`, `{"allowed_after": {"min_outside_secs":
/// N}}` (also read as `exit_required`) and `"allowed"`. In the binary cache
/// format a variant is its position, so new variants only ever go last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ReentryPolicy {
    Forbidden,
    /// Exit required: re-entry is allowed once an exit scan took the holder
    /// out and they have been outside this long.
    #[serde(alias = "exit_required")]
    AllowedAfter {
        min_outside_secs: u32,
    },
    /// Re-entry at any time, no exit scan needed: a holder recorded inside
    /// is let in again (wristband events, one-gate venues without exit
    /// scanners). A second entry is then not a conflict either.
    Allowed,
}

impl ReentryPolicy {
    /// Whether an entry of a holder recorded inside is a re-entry the
    /// organizer allows rather than a second person on one ticket.
    pub fn admits_while_inside(&self) -> bool {
        matches!(self, ReentryPolicy::Allowed)
    }
}

/// What to do with a well-signed ticket the gate's cache does not know (minted
/// after the last sync).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum UnknownTicketPolicy {
    Reject,
    AdmitIfSigned,
}

/// Whether the event asks for the holder's rotating proof: a code signed a
/// moment ago by the owner's wallet, or (the usual way, format version 2) by
/// a session key the owner's wallet approved. Events without it keep static
/// codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum HolderProofPolicy {
    NotRequired,
    /// The proof must have been signed at most `window_secs` before (or,
    /// for clock skew, after) the scan, on the gate's clock; a delegated
    /// proof's time must also lie within its session key's validity.
    Required {
        window_secs: u32,
    },
}

/// Which gates may admit one tier: the organizer's rule. A tier the rule
/// does not list may pass any gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TierGates {
    /// The tier's index.
    pub tier: u8,
    /// Gate numbers that admit it; every other gate refuses it.
    pub gates: Vec<u32>,
}

/// Everything a gate needs to know to apply the rules for one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatePolicy {
    pub event_id: u64,
    /// This gate's number within the event (on chain and in the journal).
    pub gate: u32,
    pub direction: Direction,
    pub event_status: EventStatus,
    pub doors: DoorsWindow,
    /// Tier indexes allowed through this gate (the gate's own setting);
    /// `None` allows all tiers.
    pub allowed_tiers: Option<Vec<u8>>,
    /// The event's tier -> gates rule: a tier listed passes only the gates
    /// listed for it.
    pub tier_gates: Vec<TierGates>,
    /// When the event ends. Entries are refused from `ends_at +
    /// end_grace_secs` on; exits never are.
    pub ends_at: UnixSeconds,
    pub end_grace_secs: u32,
    pub reentry: ReentryPolicy,
    pub unknown_tickets: UnknownTicketPolicy,
    pub holder_proof: HolderProofPolicy,
    /// Turnstile undo window in seconds (0: off): for this long after an
    /// admission, staff (or a turnstile that did not turn) may void it so
    /// the ticket can be scanned again. See [`undo`].
    #[serde(default)]
    pub undo_window_secs: u32,
}

impl GatePolicy {
    /// The first moment entries are refused because the event is over.
    pub fn entries_end_at(&self) -> UnixSeconds {
        self.ends_at.saturating_add(i64::from(self.end_grace_secs))
    }

    /// Whether the event's tier -> gates rule lets `tier` through this gate.
    fn tier_passes_here(&self, tier: u8) -> bool {
        self.tier_gates
            .iter()
            .filter(|rule| rule.tier == tier)
            .all(|rule| rule.gates.contains(&self.gate))
    }
}

/// A ticket's standing as set by the organizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TicketStatus {
    Active,
    /// Security hold: refused until the organizer lifts it.
    Frozen,
    Revoked,
    Refunded,
}

/// Where the holder is, as far as the gates know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    NeverEntered,
    Inside {
        since: UnixSeconds,
        gate: u32,
    },
    /// Left at `since` through `gate`.
    Outside {
        since: UnixSeconds,
        gate: u32,
    },
}

/// What the gate (or the server) knows of one ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketState {
    pub event_id: u64,
    pub ticket_id: u32,
    pub tier: u8,
    pub owner: PublicKeyBytes,
    pub generation: u32,
    pub status: TicketStatus,
    pub presence: Presence,
    pub entries: u32,
}

/// The outcome of one scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Admitted(Admission),
    /// The holder left; exits are never refused for a ticket of this event.
    ExitRecorded {
        tier: u8,
        was_inside: bool,
    },
    Rejected(Rejection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    pub kind: AdmissionKind,
    pub tier: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdmissionKind {
    FirstEntry,
    ReEntry {
        exited_at: UnixSeconds,
    },
    /// The holder was recorded inside and the event allows re-entry without
    /// an exit scan ([`ReentryPolicy::Allowed`]).
    ReEntryWithoutExit {
        entered_at: UnixSeconds,
    },
    /// Not in the gate's cache (minted after the last sync), admitted on its
    /// signature because the policy allows it.
    UnknownTicket,
}

/// Why a scan was refused. One variant per cause staff handle differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Not a ticket code at all, or a damaged one.
    UnreadableCode(CredentialError),
    /// A readable code whose issuer signature or holder proof is forged.
    BadSignature(CredentialError),
    /// The gate holds no issuer key for its own event: its cache is missing.
    IssuerKeyMissing,
    WrongEvent {
        ticket_event: u64,
        gate_event: u64,
    },
    EventCancelled,
    DoorsNotOpen {
        opens_at: UnixSeconds,
    },
    DoorsClosed {
        closed_at: UnixSeconds,
    },
    /// The event ended at `ended_at`, and its grace for latecomers ran out
    /// at `admitted_until`.
    EventEnded {
        ended_at: UnixSeconds,
        admitted_until: UnixSeconds,
    },
    TierNotAllowed {
        tier: u8,
    },
    Frozen,
    Revoked,
    Refunded,
    /// The code of a previous owner: the ticket was transferred since.
    StaleGeneration {
        presented: u32,
        current: u32,
    },
    /// Same generation, different owner: the code was not issued for the
    /// ticket's holder.
    OwnerMismatch,
    HolderProofMissing,
    /// The proof was signed more than `window_secs` before or after the
    /// scan on the gate's clock: a screenshot, or a phone whose clock is off.
    HolderProofStale {
        signed_at: UnixSeconds,
        window_secs: u32,
    },
    /// The proof was signed before its session key's approval starts.
    HolderKeyNotYetValid {
        valid_from: UnixSeconds,
    },
    /// The proof was signed after its session key's approval ended: the
    /// holder must approve a new key with their wallet.
    HolderKeyExpired {
        valid_until: UnixSeconds,
    },
    /// Not in the cache, and the policy admits only known tickets.
    UnknownTicket,
    AlreadyInside {
        since: UnixSeconds,
        gate: u32,
    },
    ReEntryNotAllowed {
        exited_at: UnixSeconds,
    },
    ReEntryTooSoon {
        exited_at: UnixSeconds,
        allowed_at: UnixSeconds,
    },
}

impl Decision {
    /// Whether the turnstile opens.
    pub fn opens_gate(&self) -> bool {
        !matches!(self, Decision::Rejected(_))
    }

    /// The stable code of the outcome, as stored in journals and sent to the
    /// server. Never change an existing code.
    pub fn code(&self) -> &'static str {
        match self {
            Decision::Admitted(a) => match a.kind {
                AdmissionKind::FirstEntry => "admitted",
                AdmissionKind::ReEntry { .. } | AdmissionKind::ReEntryWithoutExit { .. } => {
                    "readmitted"
                }
                AdmissionKind::UnknownTicket => "admitted_unknown_ticket",
            },
            Decision::ExitRecorded { .. } => "exit_recorded",
            Decision::Rejected(r) => r.code(),
        }
    }

    /// The tier to show staff, when the code said one.
    pub fn tier(&self) -> Option<u8> {
        match self {
            Decision::Admitted(a) => Some(a.tier),
            Decision::ExitRecorded { tier, .. } => Some(*tier),
            Decision::Rejected(Rejection::TierNotAllowed { tier }) => Some(*tier),
            Decision::Rejected(_) => None,
        }
    }

    /// The verdict for a code that failed decoding or verification, seen at a
    /// gate serving `gate_event`.
    pub fn for_credential_error(error: CredentialError, gate_event: u64) -> Self {
        let rejection = match error {
            CredentialError::UnknownIssuer { event_id } if event_id != gate_event => {
                Rejection::WrongEvent {
                    ticket_event: event_id,
                    gate_event,
                }
            }
            CredentialError::UnknownIssuer { .. } => Rejection::IssuerKeyMissing,
            e @ (CredentialError::BadIssuerSignature
            | CredentialError::BadHolderSignature
            | CredentialError::BadDelegationSignature
            | CredentialError::BadSessionSignature) => Rejection::BadSignature(e),
            e => Rejection::UnreadableCode(e),
        };
        Decision::Rejected(rejection)
    }

    /// The ticket's state after this decision, or `None` when a refusal leaves
    /// it unchanged. Pure: the gate writes the result in the same database
    /// transaction as the journal row.
    pub fn next_state(
        &self,
        credential: &VerifiedCredential,
        prior: Option<&TicketState>,
        gate: u32,
        now: UnixSeconds,
    ) -> Option<TicketState> {
        let body = credential.body();
        let mut state = match prior {
            Some(prior) => *prior,
            None => TicketState {
                event_id: body.event_id,
                ticket_id: body.ticket_id,
                tier: body.tier,
                owner: body.owner,
                generation: body.generation,
                status: TicketStatus::Active,
                presence: Presence::NeverEntered,
                entries: 0,
            },
        };
        // A newer generation than the cache knows is a transfer the gate has
        // not heard of yet; the signed code is the better information.
        if body.generation > state.generation {
            state.generation = body.generation;
            state.owner = body.owner;
            state.tier = body.tier;
        }
        match self {
            Decision::Admitted(_) => {
                state.presence = Presence::Inside { since: now, gate };
                state.entries = state.entries.saturating_add(1);
            }
            // An exit of someone not inside moves nobody (the same rule as
            // the server's fold): recorded outside, a holder who never came
            // in would be refused as a re-entry where re-entry is forbidden.
            Decision::ExitRecorded { .. } => {
                if matches!(state.presence, Presence::Inside { .. }) {
                    state.presence = Presence::Outside { since: now, gate };
                }
            }
            Decision::Rejected(_) => return None,
        }
        Some(state)
    }
}

impl Rejection {
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::UnreadableCode(_) => "unreadable_code",
            Rejection::BadSignature(_) => "bad_signature",
            Rejection::IssuerKeyMissing => "issuer_key_missing",
            Rejection::WrongEvent { .. } => "wrong_event",
            Rejection::EventCancelled => "event_cancelled",
            Rejection::DoorsNotOpen { .. } => "doors_not_open",
            Rejection::DoorsClosed { .. } => "doors_closed",
            Rejection::EventEnded { .. } => "event_ended",
            Rejection::TierNotAllowed { .. } => "tier_not_allowed",
            Rejection::Frozen => "frozen",
            Rejection::Revoked => "revoked",
            Rejection::Refunded => "refunded",
            Rejection::StaleGeneration { .. } => "stale_generation",
            Rejection::OwnerMismatch => "owner_mismatch",
            Rejection::HolderProofMissing => "holder_proof_missing",
            Rejection::HolderProofStale { .. } => "holder_proof_stale",
            Rejection::HolderKeyNotYetValid { .. } => "holder_key_not_yet_valid",
            Rejection::HolderKeyExpired { .. } => "holder_key_expired",
            Rejection::UnknownTicket => "unknown_ticket",
            Rejection::AlreadyInside { .. } => "already_inside",
            Rejection::ReEntryNotAllowed { .. } => "reentry_not_allowed",
            Rejection::ReEntryTooSoon { .. } => "reentry_too_soon",
        }
    }
}

/// The admission rules. Pure: the same inputs always give the same decision.
///
/// Checks run from the most to the least fundamental, so staff always see the
/// reason that matters most: the ticket is for this event at all, the event
/// runs, the ticket is in good standing and belongs to this holder, this gate
/// and this hour accept it, and only then where the holder is.
pub fn decide(
    credential: &VerifiedCredential,
    state: Option<&TicketState>,
    policy: &GatePolicy,
    now: UnixSeconds,
) -> Decision {
    decide_presented(&Presented::from(credential), state, policy, now)
}

fn decide_presented(
    body: &Presented,
    state: Option<&TicketState>,
    policy: &GatePolicy,
    now: UnixSeconds,
) -> Decision {
    use Rejection as R;
    let reject = Decision::Rejected;

    if body.event_id != policy.event_id {
        return reject(R::WrongEvent {
            ticket_event: body.event_id,
            gate_event: policy.event_id,
        });
    }
    if policy.event_status == EventStatus::Cancelled {
        return reject(R::EventCancelled);
    }

    if let Some(state) = state {
        if body.generation < state.generation {
            return reject(R::StaleGeneration {
                presented: body.generation,
                current: state.generation,
            });
        }
        if body.generation == state.generation && body.owner.is_some_and(|o| o != state.owner) {
            return reject(R::OwnerMismatch);
        }
    }
    // A code newer than the cache carries the ticket's tier as issued for the
    // new holder; otherwise the cache (organizer's word) wins.
    let tier = match state {
        Some(s) if body.generation <= s.generation => s.tier,
        _ => body.tier,
    };

    if policy.direction == Direction::Exit {
        let was_inside = matches!(state.map(|s| s.presence), Some(Presence::Inside { .. }));
        return Decision::ExitRecorded { tier, was_inside };
    }

    if let Some(state) = state {
        match state.status {
            TicketStatus::Active => {}
            TicketStatus::Frozen => return reject(R::Frozen),
            TicketStatus::Revoked => return reject(R::Revoked),
            TicketStatus::Refunded => return reject(R::Refunded),
        }
    }
    if let Some(allowed) = &policy.allowed_tiers
        && !allowed.contains(&tier)
    {
        return reject(R::TierNotAllowed { tier });
    }
    if !policy.tier_passes_here(tier) {
        return reject(R::TierNotAllowed { tier });
    }
    if now < policy.doors.opens_at {
        return reject(R::DoorsNotOpen {
            opens_at: policy.doors.opens_at,
        });
    }
    if now >= policy.entries_end_at() {
        return reject(R::EventEnded {
            ended_at: policy.ends_at,
            admitted_until: policy.entries_end_at(),
        });
    }
    if now >= policy.doors.closes_at {
        return reject(R::DoorsClosed {
            closed_at: policy.doors.closes_at,
        });
    }
    if let HolderProofPolicy::Required { window_secs } = policy.holder_proof
        && let Some(rejection) = holder_proof_refusal(body.holder_proof, window_secs, now)
    {
        return reject(rejection);
    }

    let Some(state) = state else {
        return match policy.unknown_tickets {
            UnknownTicketPolicy::Reject => reject(R::UnknownTicket),
            UnknownTicketPolicy::AdmitIfSigned => Decision::Admitted(Admission {
                kind: AdmissionKind::UnknownTicket,
                tier,
            }),
        };
    };
    match state.presence {
        Presence::NeverEntered => Decision::Admitted(Admission {
            kind: AdmissionKind::FirstEntry,
            tier,
        }),
        Presence::Inside { since, .. } if policy.reentry.admits_while_inside() => {
            Decision::Admitted(Admission {
                kind: AdmissionKind::ReEntryWithoutExit { entered_at: since },
                tier,
            })
        }
        Presence::Inside { since, gate } => reject(R::AlreadyInside { since, gate }),
        Presence::Outside {
            since: exited_at, ..
        } => match policy.reentry {
            ReentryPolicy::Forbidden => reject(R::ReEntryNotAllowed { exited_at }),
            ReentryPolicy::Allowed => Decision::Admitted(Admission {
                kind: AdmissionKind::ReEntry { exited_at },
                tier,
            }),
            ReentryPolicy::AllowedAfter { min_outside_secs } => {
                let allowed_at = exited_at.saturating_add(i64::from(min_outside_secs));
                if now < allowed_at {
                    reject(R::ReEntryTooSoon {
                        exited_at,
                        allowed_at,
                    })
                } else {
                    Decision::Admitted(Admission {
                        kind: AdmissionKind::ReEntry { exited_at },
                        tier,
                    })
                }
            }
        },
    }
}

/// Why an event that asks for the holder's proof refuses the one presented,
/// if it does. The proof's signatures were checked when the credential was
/// verified (the delegation against the code's owner, whom `decide` checks
/// against the cache before this); here only time counts: the proof is
/// judged on the gate's clock `now`, the session key's approval at the
/// proof's own time (both made by the same phone clock).
fn holder_proof_refusal(
    proof: Option<CheckedHolderProof>,
    window_secs: u32,
    now: UnixSeconds,
) -> Option<Rejection> {
    let Some(proof) = proof else {
        return Some(Rejection::HolderProofMissing);
    };
    let signed_at = proof.signed_at();
    if now.abs_diff(signed_at) > u64::from(window_secs) {
        return Some(Rejection::HolderProofStale {
            signed_at,
            window_secs,
        });
    }
    match proof {
        CheckedHolderProof::Wallet { .. } => None,
        CheckedHolderProof::Session {
            key_valid_from,
            key_valid_until,
            ..
        } => {
            if signed_at < key_valid_from {
                Some(Rejection::HolderKeyNotYetValid {
                    valid_from: key_valid_from,
                })
            } else if signed_at >= key_valid_until {
                Some(Rejection::HolderKeyExpired {
                    valid_until: key_valid_until,
                })
            } else {
                None
            }
        }
    }
}

/// One scan evaluated end to end: decode, verify, decide, and the state to
/// store if the decision changes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// The verified credential, when the code was readable and well signed.
    pub credential: Option<VerifiedCredential>,
    pub decision: Decision,
    pub next_state: Option<TicketState>,
}

/// Runs the whole pipeline on a scanned text. `lookup` finds the cached state
/// of a ticket by (event id, ticket id).
pub fn evaluate(
    text: &str,
    keys: &impl IssuerKeys,
    lookup: impl FnOnce(u64, u32) -> Option<TicketState>,
    policy: &GatePolicy,
    now: UnixSeconds,
) -> Evaluation {
    match verify_text(text, keys) {
        Err(error) => Evaluation {
            credential: None,
            decision: Decision::for_credential_error(error, policy.event_id),
            next_state: None,
        },
        Ok(credential) => {
            let state = lookup(credential.body().event_id, credential.body().ticket_id);
            let decision = decide(&credential, state.as_ref(), policy, now);
            let next_state = decision.next_state(&credential, state.as_ref(), policy.gate, now);
            Evaluation {
                credential: Some(credential),
                decision,
                next_state,
            }
        }
    }
}
