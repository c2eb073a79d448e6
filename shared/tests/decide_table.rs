//! The admission rules as a table: one row per outcome, plus the edges of
//! every time window.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use ed25519_dalek::SigningKey;
use shared::admission::Evaluation;
use shared::credential::verify_text;
use shared::{
    Admission, AdmissionKind, Credential, CredentialBody, CredentialError, Decision, Direction,
    DoorsWindow, EventStatus, GatePolicy, HolderProofPolicy, IssuerKeys, Presence, PublicKeyBytes,
    ReentryPolicy, Rejection, TicketState, TicketStatus, TierGates, UnixSeconds,
    UnknownTicketPolicy, decide, evaluate, outcome_opens,
};

const EVENT: u64 = 77;
const OPENS: UnixSeconds = 10_000;
const CLOSES: UnixSeconds = 20_000;
/// The event ends before the doors close; its grace runs past them.
const ENDS: UnixSeconds = 18_000;
const GRACE: u32 = 3_000;
const NOW: UnixSeconds = 15_000;
const GATE: u32 = 2;

fn issuer() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
}
fn owner() -> SigningKey {
    SigningKey::from_bytes(&[2; 32])
}
fn new_owner() -> SigningKey {
    SigningKey::from_bytes(&[3; 32])
}

fn keys() -> impl IssuerKeys {
    let key = PublicKeyBytes::from(&issuer().verifying_key());
    move |event: u64| {
        if event == EVENT || event == 78 {
            vec![key]
        } else {
            vec![]
        }
    }
}

fn policy() -> GatePolicy {
    GatePolicy {
        event_id: EVENT,
        gate: GATE,
        direction: Direction::Entry,
        event_status: EventStatus::Active,
        doors: DoorsWindow {
            opens_at: OPENS,
            closes_at: CLOSES,
        },
        allowed_tiers: None,
        reentry: ReentryPolicy::AllowedAfter {
            min_outside_secs: 600,
        },
        unknown_tickets: UnknownTicketPolicy::AdmitIfSigned,
        holder_proof: HolderProofPolicy::NotRequired,
        tier_gates: vec![],
        ends_at: ENDS,
        end_grace_secs: GRACE,
        undo_window_secs: 0,
    }
}

fn cached() -> TicketState {
    TicketState {
        event_id: EVENT,
        ticket_id: 5,
        tier: 0,
        owner: PublicKeyBytes::from(&owner().verifying_key()),
        generation: 1,
        status: TicketStatus::Active,
        presence: Presence::NeverEntered,
        entries: 0,
    }
}

/// A code as the current holder would show it.
fn code() -> Credential {
    let s = cached();
    Credential::issue(
        CredentialBody {
            event_id: s.event_id,
            ticket_id: s.ticket_id,
            tier: s.tier,
            owner: s.owner,
            generation: s.generation,
        },
        &issuer(),
    )
}

struct Row {
    name: &'static str,
    text: String,
    state: Option<TicketState>,
    policy: GatePolicy,
    now: UnixSeconds,
    expected: Decision,
}

fn row(name: &'static str, expected: Decision) -> Row {
    Row {
        name,
        text: code().encode(),
        state: Some(cached()),
        policy: policy(),
        now: NOW,
        expected,
    }
}

impl Row {
    fn text(mut self, text: String) -> Self {
        self.text = text;
        self
    }
    fn state(mut self, f: impl FnOnce(&mut TicketState)) -> Self {
        let mut s = self.state.unwrap_or_else(cached);
        f(&mut s);
        self.state = Some(s);
        self
    }
    fn unknown(mut self) -> Self {
        self.state = None;
        self
    }
    fn policy(mut self, f: impl FnOnce(&mut GatePolicy)) -> Self {
        f(&mut self.policy);
        self
    }
    fn at(mut self, now: UnixSeconds) -> Self {
        self.now = now;
        self
    }
}

fn admitted(kind: AdmissionKind) -> Decision {
    Decision::Admitted(Admission { kind, tier: 0 })
}
fn rejected(r: Rejection) -> Decision {
    Decision::Rejected(r)
}

fn with_body(f: impl FnOnce(&mut CredentialBody)) -> Credential {
    let mut c = code();
    f(&mut c.body);
    Credential::issue(c.body, &issuer())
}

fn proof_at(signed_at: u32) -> String {
    code().with_holder_proof(&owner(), signed_at).encode()
}

fn table() -> Vec<Row> {
    use Rejection as R;
    let inside = Presence::Inside {
        since: 14_000,
        gate: 4,
    };
    let left_at = 14_000;
    let outside = Presence::Outside {
        since: left_at,
        gate: 4,
    };
    let proof_required = |p: &mut GatePolicy| {
        p.holder_proof = HolderProofPolicy::Required { window_secs: 30 };
    };
    vec![
        // Entries.
        row("first entry", admitted(AdmissionKind::FirstEntry)),
        row(
            "unknown ticket admitted on signature",
            admitted(AdmissionKind::UnknownTicket),
        )
        .unknown(),
        row(
            "unknown ticket refused by policy",
            rejected(R::UnknownTicket),
        )
        .unknown()
        .policy(|p| p.unknown_tickets = UnknownTicketPolicy::Reject),
        row(
            "already inside",
            rejected(R::AlreadyInside {
                since: 14_000,
                gate: 4,
            }),
        )
        .state(|s| s.presence = inside),
        row(
            "re-entry when policy forbids",
            rejected(R::ReEntryNotAllowed { exited_at: left_at }),
        )
        .state(|s| s.presence = outside)
        .policy(|p| p.reentry = ReentryPolicy::Forbidden),
        row(
            "re-entry one second too soon",
            rejected(R::ReEntryTooSoon {
                exited_at: left_at,
                allowed_at: left_at + 600,
            }),
        )
        .state(|s| s.presence = outside)
        .at(left_at + 599),
        row(
            "re-entry exactly when allowed",
            admitted(AdmissionKind::ReEntry { exited_at: left_at }),
        )
        .state(|s| s.presence = outside)
        .at(left_at + 600),
        row(
            "re-entry without an exit scan where re-entry is allowed",
            admitted(AdmissionKind::ReEntryWithoutExit { entered_at: 14_000 }),
        )
        .state(|s| s.presence = inside)
        .policy(|p| p.reentry = ReentryPolicy::Allowed),
        row(
            "re-entry a second after an exit where re-entry is allowed",
            admitted(AdmissionKind::ReEntry { exited_at: left_at }),
        )
        .state(|s| s.presence = outside)
        .policy(|p| p.reentry = ReentryPolicy::Allowed)
        .at(left_at + 1),
        row(
            "first entry where re-entry is allowed",
            admitted(AdmissionKind::FirstEntry),
        )
        .policy(|p| p.reentry = ReentryPolicy::Allowed),
        row(
            "allowed re-entry still refuses a frozen ticket",
            rejected(R::Frozen),
        )
        .state(|s| {
            s.presence = inside;
            s.status = TicketStatus::Frozen;
        })
        .policy(|p| p.reentry = ReentryPolicy::Allowed),
        // Exits.
        row(
            "exit of someone inside",
            Decision::ExitRecorded {
                tier: 0,
                was_inside: true,
            },
        )
        .state(|s| s.presence = inside)
        .policy(|p| p.direction = Direction::Exit),
        row(
            "exit without an entry on record",
            Decision::ExitRecorded {
                tier: 0,
                was_inside: false,
            },
        )
        .policy(|p| p.direction = Direction::Exit),
        row(
            "exit of a frozen ticket is still let out",
            Decision::ExitRecorded {
                tier: 0,
                was_inside: true,
            },
        )
        .state(|s| {
            s.presence = inside;
            s.status = TicketStatus::Frozen;
        })
        .policy(|p| p.direction = Direction::Exit),
        // The event and the gate.
        row(
            "wrong event",
            rejected(R::WrongEvent {
                ticket_event: 78,
                gate_event: EVENT,
            }),
        )
        .text(with_body(|b| b.event_id = 78).encode()),
        row(
            "wrong event with no key at this gate",
            rejected(R::WrongEvent {
                ticket_event: 99,
                gate_event: EVENT,
            }),
        )
        .text(with_body(|b| b.event_id = 99).encode()),
        row(
            "gate without its event's key",
            rejected(R::IssuerKeyMissing),
        )
        .policy(|p| p.event_id = 99)
        .text(with_body(|b| b.event_id = 99).encode()),
        row("event cancelled", rejected(R::EventCancelled))
            .policy(|p| p.event_status = EventStatus::Cancelled),
        row(
            "tier not allowed at this gate",
            rejected(R::TierNotAllowed { tier: 0 }),
        )
        .policy(|p| p.allowed_tiers = Some(vec![1])),
        row(
            "tier allowed at this gate",
            admitted(AdmissionKind::FirstEntry),
        )
        .policy(|p| p.allowed_tiers = Some(vec![1, 0])),
        row(
            "one second before doors open",
            rejected(R::DoorsNotOpen { opens_at: OPENS }),
        )
        .at(OPENS - 1),
        row("the second doors open", admitted(AdmissionKind::FirstEntry)).at(OPENS),
        row(
            "last second before doors close",
            admitted(AdmissionKind::FirstEntry),
        )
        .at(CLOSES - 1),
        row(
            "the second doors close",
            rejected(R::DoorsClosed { closed_at: CLOSES }),
        )
        .at(CLOSES),
        // The organizer's end time, with its grace for latecomers.
        row(
            "last second of the end-time grace",
            admitted(AdmissionKind::FirstEntry),
        )
        .policy(|p| p.doors.closes_at = 30_000)
        .at(ENDS + i64::from(GRACE) - 1),
        row(
            "the second the end-time grace runs out",
            rejected(R::EventEnded {
                ended_at: ENDS,
                admitted_until: ENDS + i64::from(GRACE),
            }),
        )
        .policy(|p| p.doors.closes_at = 30_000)
        .at(ENDS + i64::from(GRACE)),
        row(
            "the second the event ends without grace",
            rejected(R::EventEnded {
                ended_at: ENDS,
                admitted_until: ENDS,
            }),
        )
        .policy(|p| p.end_grace_secs = 0)
        .at(ENDS),
        row(
            "exit after the event ended",
            Decision::ExitRecorded {
                tier: 0,
                was_inside: true,
            },
        )
        .state(|s| s.presence = inside)
        .policy(|p| p.direction = Direction::Exit)
        .at(ENDS + 10_000),
        // The organizer's tier -> gates rule.
        row(
            "tier kept to other gates by the organizer",
            rejected(R::TierNotAllowed { tier: 0 }),
        )
        .policy(|p| {
            p.tier_gates = vec![TierGates {
                tier: 0,
                gates: vec![5],
            }]
        }),
        row(
            "tier sent to this gate by the organizer",
            admitted(AdmissionKind::FirstEntry),
        )
        .policy(|p| {
            p.tier_gates = vec![TierGates {
                tier: 0,
                gates: vec![5, GATE],
            }]
        }),
        row(
            "another tier's gates do not bind this one",
            admitted(AdmissionKind::FirstEntry),
        )
        .policy(|p| {
            p.tier_gates = vec![TierGates {
                tier: 1,
                gates: vec![5],
            }]
        }),
        // The ticket's standing.
        row("frozen", rejected(R::Frozen)).state(|s| s.status = TicketStatus::Frozen),
        row("revoked", rejected(R::Revoked)).state(|s| s.status = TicketStatus::Revoked),
        row("refunded", rejected(R::Refunded)).state(|s| s.status = TicketStatus::Refunded),
        row(
            "previous owner's code",
            rejected(R::StaleGeneration {
                presented: 1,
                current: 2,
            }),
        )
        .state(|s| {
            s.generation = 2;
            s.owner = PublicKeyBytes::from(&new_owner().verifying_key());
        }),
        row(
            "code newer than the cache (transfer not synced yet)",
            admitted(AdmissionKind::FirstEntry),
        )
        .text(
            with_body(|b| {
                b.generation = 2;
                b.owner = PublicKeyBytes::from(&new_owner().verifying_key());
            })
            .encode(),
        ),
        row("same generation, other owner", rejected(R::OwnerMismatch))
            .text(with_body(|b| b.owner = PublicKeyBytes([9; 32])).encode()),
        // Holder proofs.
        row("holder proof missing", rejected(R::HolderProofMissing)).policy(proof_required),
        row(
            "holder proof at the window's far edge",
            admitted(AdmissionKind::FirstEntry),
        )
        .policy(proof_required)
        .text(proof_at((NOW - 30) as u32)),
        row(
            "holder proof one second stale",
            rejected(R::HolderProofStale {
                signed_at: NOW - 31,
                window_secs: 30,
            }),
        )
        .policy(proof_required)
        .text(proof_at((NOW - 31) as u32)),
        row(
            "holder proof from the future beyond skew",
            rejected(R::HolderProofStale {
                signed_at: NOW + 31,
                window_secs: 30,
            }),
        )
        .policy(proof_required)
        .text(proof_at((NOW + 31) as u32)),
        row(
            "holder proof not needed but present",
            admitted(AdmissionKind::FirstEntry),
        )
        .text(proof_at(1)),
        // Codes that are not good credentials.
        row(
            "forged issuer signature",
            rejected(R::BadSignature(CredentialError::BadIssuerSignature)),
        )
        .text(Credential::issue(code().body, &SigningKey::from_bytes(&[66; 32])).encode()),
        row(
            "holder proof by someone else",
            rejected(R::BadSignature(CredentialError::BadHolderSignature)),
        )
        .text(code().with_holder_proof(&new_owner(), NOW as u32).encode()),
        row(
            "unreadable code",
            rejected(R::UnreadableCode(CredentialError::BadEncoding {
                position: 0,
            })),
        )
        .text("!!garbage!!!!!!!".into()),
        row(
            "empty scan",
            rejected(R::UnreadableCode(CredentialError::Empty)),
        )
        .text("\r\n".into()),
    ]
}

#[test]
fn every_outcome_of_the_admission_rules() {
    let mut failures = Vec::new();
    for row in table() {
        let Evaluation { decision, .. } =
            evaluate(&row.text, &keys(), |_, _| row.state, &row.policy, row.now);
        if decision != row.expected {
            failures.push(format!(
                "{}: expected {:?}, got {:?}",
                row.name, row.expected, decision
            ));
        }
        // Only admissions and exits open the gate.
        assert_eq!(
            decision.opens_gate(),
            !matches!(decision, Decision::Rejected(_))
        );
        assert!(!decision.staff_text(row.now).is_empty());
        // The server checks an uploaded record's `opened` by its code.
        assert_eq!(
            outcome_opens(decision.code()),
            Some(decision.opens_gate()),
            "{}",
            row.name
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_rejection_has_its_own_code() {
    let mut codes: Vec<&str> = table().iter().map(|r| r.expected.code()).collect();
    codes.sort_unstable();
    codes.dedup();
    // 4 admission/exit codes + 20 rejection codes appear in the table.
    assert_eq!(codes.len(), 24, "{codes:?}");
    assert_eq!(outcome_opens("journal_unavailable"), None);
    assert_eq!(outcome_opens("Admitted"), None);
}

#[test]
fn admission_moves_the_holder_inside_and_exit_moves_them_out() {
    let verified = verify_text(&code().encode(), &keys()).unwrap();
    let state = cached();
    let decision = decide(&verified, Some(&state), &policy(), NOW);
    let inside = decision
        .next_state(&verified, Some(&state), GATE, NOW)
        .unwrap();
    assert_eq!(
        inside.presence,
        Presence::Inside {
            since: NOW,
            gate: GATE
        }
    );
    assert_eq!(inside.entries, 1);

    let second = decide(&verified, Some(&inside), &policy(), NOW + 5);
    assert_eq!(
        second,
        rejected(Rejection::AlreadyInside {
            since: NOW,
            gate: GATE
        })
    );
    assert_eq!(
        second.next_state(&verified, Some(&inside), GATE, NOW + 5),
        None
    );

    let mut exit_policy = policy();
    exit_policy.direction = Direction::Exit;
    let exit = decide(&verified, Some(&inside), &exit_policy, NOW + 60);
    let outside = exit
        .next_state(&verified, Some(&inside), GATE, NOW + 60)
        .unwrap();
    assert_eq!(
        outside.presence,
        Presence::Outside {
            since: NOW + 60,
            gate: GATE
        }
    );
    assert_eq!(outside.entries, 1);
}

#[test]
fn newer_code_than_the_cache_updates_owner_and_generation() {
    let newer = with_body(|b| {
        b.generation = 2;
        b.owner = PublicKeyBytes::from(&new_owner().verifying_key());
    });
    let verified = newer.verify(&keys()).unwrap();
    let decision = decide(&verified, Some(&cached()), &policy(), NOW);
    let next = decision
        .next_state(&verified, Some(&cached()), GATE, NOW)
        .unwrap();
    assert_eq!(next.generation, 2);
    assert_eq!(
        next.owner,
        PublicKeyBytes::from(&new_owner().verifying_key())
    );
}
