//! The journal record of an evaluated scan, as a table: what each kind of
//! verdict writes, whoever decided it (a gate offline, the server online).

use ed25519_dalek::SigningKey;
use shared::wire::{ScanContext, ScanRecord};
use shared::{
    Credential, CredentialBody, Direction, DoorsWindow, EventStatus, GatePolicy, HolderProofPolicy,
    Presence, PublicKeyBytes, ReentryPolicy, TicketState, TicketStatus, UnixSeconds,
    UnknownTicketPolicy, evaluate,
};
use uuid::Uuid;

const EVENT: u64 = 77;
const NOW: UnixSeconds = 15_000;

fn issuer() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
}

fn owner() -> PublicKeyBytes {
    PublicKeyBytes::from(&SigningKey::from_bytes(&[2; 32]).verifying_key())
}

fn policy(direction: Direction) -> GatePolicy {
    GatePolicy {
        event_id: EVENT,
        gate: 3,
        direction,
        event_status: EventStatus::Active,
        doors: DoorsWindow {
            opens_at: 10_000,
            closes_at: 20_000,
        },
        allowed_tiers: None,
        reentry: ReentryPolicy::Forbidden,
        unknown_tickets: UnknownTicketPolicy::AdmitIfSigned,
        holder_proof: HolderProofPolicy::NotRequired,
        tier_gates: vec![],
        ends_at: 20_000,
        end_grace_secs: 0,
        undo_window_secs: 0,
    }
}

/// A ticket of `tier` as the cache knows it.
fn cached(tier: u8) -> TicketState {
    TicketState {
        event_id: EVENT,
        ticket_id: 5,
        tier,
        owner: owner(),
        generation: 1,
        status: TicketStatus::Active,
        presence: Presence::NeverEntered,
        entries: 0,
    }
}

/// The holder's code, saying `tier`.
fn code(tier: u8) -> String {
    Credential::issue(
        CredentialBody {
            event_id: EVENT,
            ticket_id: 5,
            tier,
            owner: owner(),
            generation: 1,
        },
        &issuer(),
    )
    .encode()
}

fn context() -> ScanContext {
    ScanContext {
        scan_id: Uuid::from_u128(42),
        gate: 3,
        direction: Direction::Entry,
        scanned_at_ms: NOW * 1000 + 250,
        source: "serial:/dev/ttyACM0".to_owned(),
    }
}

/// The fields that depend on the verdict:
/// (event_id, ticket_id, generation, tier, outcome, opened).
type Said<'a> = (
    Option<u64>,
    Option<u32>,
    Option<u32>,
    Option<u8>,
    &'a str,
    bool,
);

struct Row {
    name: &'static str,
    text: String,
    state: Option<TicketState>,
    policy: GatePolicy,
    expected: Said<'static>,
}

fn table() -> Vec<Row> {
    let ids = (Some(EVENT), Some(5), Some(1));
    vec![
        Row {
            name: "readable code admitted: ids and tier",
            text: code(2),
            state: Some(cached(2)),
            policy: policy(Direction::Entry),
            expected: (ids.0, ids.1, ids.2, Some(2), "admitted", true),
        },
        Row {
            name: "tier is the one the decision went by (the cache's), not the code's",
            text: code(0),
            state: Some(cached(1)),
            policy: policy(Direction::Entry),
            expected: (ids.0, ids.1, ids.2, Some(1), "admitted", true),
        },
        Row {
            name: "unreadable code: no ids, no tier",
            text: "!!garbage!!!!!!!".to_owned(),
            state: None,
            policy: policy(Direction::Entry),
            expected: (None, None, None, None, "unreadable_code", false),
        },
        Row {
            name: "refused with a tier: the tier refused",
            text: code(2),
            state: Some(cached(2)),
            policy: GatePolicy {
                allowed_tiers: Some(vec![0]),
                ..policy(Direction::Entry)
            },
            expected: (ids.0, ids.1, ids.2, Some(2), "tier_not_allowed", false),
        },
        Row {
            name: "refused without a tier in the verdict: the code's tier",
            text: code(2),
            state: Some(TicketState {
                status: TicketStatus::Frozen,
                ..cached(2)
            }),
            policy: policy(Direction::Entry),
            expected: (ids.0, ids.1, ids.2, Some(2), "frozen", false),
        },
        Row {
            name: "exit recorded: opens, with the tier",
            text: code(1),
            state: Some(cached(1)),
            policy: policy(Direction::Exit),
            expected: (ids.0, ids.1, ids.2, Some(1), "exit_recorded", true),
        },
    ]
}

#[test]
fn every_kind_of_verdict_makes_its_scan_record() {
    let keys = |event: u64| {
        if event == EVENT {
            vec![PublicKeyBytes::from(&issuer().verifying_key())]
        } else {
            vec![]
        }
    };
    let mut failures = Vec::new();
    for row in table() {
        let evaluation = evaluate(&row.text, &keys, |_, _| row.state, &row.policy, NOW);
        let r = ScanRecord::from_evaluation(&evaluation, context());
        let said: Said<'_> = (
            r.event_id,
            r.ticket_id,
            r.generation,
            r.tier,
            r.outcome.as_str(),
            r.opened,
        );
        if said != row.expected {
            failures.push(format!(
                "{}: expected {:?}, got {said:?}",
                row.name, row.expected
            ));
        }
        // Where and when come from the context, untouched.
        let c = context();
        let placed = (r.scan_id, r.gate, r.direction, r.scanned_at_ms, r.source);
        if placed != (c.scan_id, c.gate, c.direction, c.scanned_at_ms, c.source) {
            failures.push(format!("{}: context not copied: {placed:?}", row.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
