//! Admissions reviewed after the fact (`review_admission`): what the server,
//! with fresher data than an offline gate, would have refused. One row per
//! kind of incident, and the cases that are not incidents.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use shared::{
    Direction, DoorsWindow, EventStatus, GatePolicy, HolderProofPolicy, Presence, Presented,
    PublicKeyBytes, ReentryPolicy, Rejection, TicketState, TicketStatus, TierGates, UnixSeconds,
    UnknownTicketPolicy, review_admission,
};

const EVENT: u64 = 77;
const GATE: u32 = 2;
const AT: UnixSeconds = 15_000;

fn policy() -> GatePolicy {
    GatePolicy {
        event_id: EVENT,
        gate: GATE,
        direction: Direction::Entry,
        event_status: EventStatus::Active,
        doors: DoorsWindow {
            opens_at: 10_000,
            closes_at: 20_000,
        },
        allowed_tiers: None,
        tier_gates: vec![],
        ends_at: 18_000,
        end_grace_secs: 600,
        reentry: ReentryPolicy::Forbidden,
        unknown_tickets: UnknownTicketPolicy::Reject,
        holder_proof: HolderProofPolicy::NotRequired,
        undo_window_secs: 0,
    }
}

fn owner() -> PublicKeyBytes {
    PublicKeyBytes([2; 32])
}

fn state() -> TicketState {
    TicketState {
        event_id: EVENT,
        ticket_id: 5,
        tier: 0,
        owner: owner(),
        generation: 1,
        status: TicketStatus::Active,
        presence: Presence::NeverEntered,
        entries: 0,
    }
}

/// What a gate's journal record says it admitted: no owner, no proof.
fn record() -> Presented {
    Presented {
        event_id: EVENT,
        ticket_id: 5,
        tier: 0,
        generation: 1,
        owner: None,
        holder_proof: None,
    }
}

struct Case {
    name: &'static str,
    presented: Presented,
    state: Option<TicketState>,
    policy: GatePolicy,
    at: UnixSeconds,
    expected: Option<Rejection>,
}

fn case(name: &'static str, expected: Option<Rejection>) -> Case {
    Case {
        name,
        presented: record(),
        state: Some(state()),
        policy: policy(),
        at: AT,
        expected,
    }
}

impl Case {
    fn state(mut self, f: impl FnOnce(&mut TicketState)) -> Self {
        let mut s = self.state.unwrap_or_else(state);
        f(&mut s);
        self.state = Some(s);
        self
    }
    fn policy(mut self, f: impl FnOnce(&mut GatePolicy)) -> Self {
        f(&mut self.policy);
        self
    }
    fn presented(mut self, f: impl FnOnce(&mut Presented)) -> Self {
        f(&mut self.presented);
        self
    }
    fn at(mut self, at: UnixSeconds) -> Self {
        self.at = at;
        self
    }
}

fn table() -> Vec<Case> {
    use Rejection as R;
    vec![
        case("a good admission is no incident", None),
        // What the server knows better than an offline gate.
        case("revoked since the gate's last sync", Some(R::Revoked))
            .state(|s| s.status = TicketStatus::Revoked),
        case("frozen since", Some(R::Frozen)).state(|s| s.status = TicketStatus::Frozen),
        case("refunded since", Some(R::Refunded)).state(|s| s.status = TicketStatus::Refunded),
        case(
            "transferred since: the old owner's code",
            Some(R::StaleGeneration {
                presented: 1,
                current: 2,
            }),
        )
        .state(|s| s.generation = 2),
        case("a ticket the server does not know", Some(R::UnknownTicket))
            .presented(|p| p.ticket_id = 6),
        case("cancelled since", Some(R::EventCancelled))
            .policy(|p| p.event_status = EventStatus::Cancelled),
        // Outside the event's time, by the scan's own clock.
        case(
            "before the doors opened",
            Some(R::DoorsNotOpen { opens_at: 10_000 }),
        )
        .at(9_000),
        case(
            "after the end-time grace",
            Some(R::EventEnded {
                ended_at: 18_000,
                admitted_until: 18_600,
            }),
        )
        .at(18_600),
        case("inside the end-time grace", None).at(18_599),
        // Where the tier may go.
        case(
            "a tier the organizer keeps to other gates",
            Some(R::TierNotAllowed { tier: 0 }),
        )
        .policy(|p| {
            p.tier_gates = vec![TierGates {
                tier: 0,
                gates: vec![1],
            }]
        }),
        case(
            "a tier this gate does not take",
            Some(R::TierNotAllowed { tier: 1 }),
        )
        .state(|s| s.tier = 1)
        .policy(|p| p.allowed_tiers = Some(vec![0])),
        // Not incidents: the presence fold and the gate's own checks cover them.
        case("already inside is a conflict, not an incident", None).state(|s| {
            s.presence = Presence::Inside {
                since: 14_000,
                gate: 1,
            }
        }),
        case("left with re-entry forbidden: the fold's business", None).state(|s| {
            s.presence = Presence::Outside {
                since: 14_000,
                gate: 1,
            }
        }),
        case("a holder proof a record cannot show", None)
            .policy(|p| p.holder_proof = HolderProofPolicy::Required { window_secs: 30 }),
        case("a record of an exit gate still reviews the entry", None)
            .policy(|p| p.direction = Direction::Exit),
        case("the right owner", None).presented(|p| p.owner = Some(owner())),
        case("another owner, same generation", Some(R::OwnerMismatch))
            .presented(|p| p.owner = Some(PublicKeyBytes([9; 32]))),
    ]
}

#[test]
fn admissions_the_server_would_refuse_are_incidents() {
    let mut failures = Vec::new();
    for case in table() {
        // The server looks the ticket up by the record's id.
        let state = case
            .state
            .filter(|s| s.ticket_id == case.presented.ticket_id);
        let got = review_admission(&case.presented, state.as_ref(), &case.policy, case.at);
        if got != case.expected {
            failures.push(format!(
                "{}: expected {:?}, got {:?}",
                case.name, case.expected, got
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn an_unknown_ticket_is_no_incident_where_the_organizer_admits_signed_ones() {
    let mut admit = policy();
    admit.unknown_tickets = UnknownTicketPolicy::AdmitIfSigned;
    assert_eq!(review_admission(&record(), None, &admit, AT), None);
    assert_eq!(
        review_admission(&record(), None, &policy(), AT),
        Some(Rejection::UnknownTicket)
    );
}
