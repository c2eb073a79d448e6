//! The presence fold and merge as tables: one row per way a ticket's scans
//! can run, and one per way the server's view meets a gate's own.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use shared::presence::{LastScan, OpeningScan, fold, forget_undone, merge};
use shared::wire::{PresenceUpdate, UndoneAdmission};
use shared::{
    Credential, CredentialBody, Direction, DoorsWindow, EventStatus, GatePolicy, HolderProofPolicy,
    Presence, PublicKeyBytes, ReentryPolicy, TicketState, TicketStatus, UnknownTicketPolicy,
    decide,
};
use uuid::Uuid;

const IN: Direction = Direction::Entry;
const OUT: Direction = Direction::Exit;

/// The n-th scan of a row; ids are distinct and readable in failures.
fn id(n: usize) -> Uuid {
    Uuid::from_u128(0x5ca0_0000 + n as u128)
}

struct FoldRow {
    name: &'static str,
    /// (direction, gate, at_ms), already in scan-time order.
    scans: Vec<(Direction, u32, i64)>,
    presence: Presence,
    entries: u32,
    /// Per scan: the index of the scan it conflicts with.
    conflict_of: Vec<Option<usize>>,
    /// The scans that are exits of someone not inside.
    unmatched: Vec<usize>,
}

fn fold_table() -> Vec<FoldRow> {
    vec![
        FoldRow {
            name: "no scans: never entered",
            scans: vec![],
            presence: Presence::NeverEntered,
            entries: 0,
            conflict_of: vec![],
            unmatched: vec![],
        },
        FoldRow {
            name: "single entry: inside since it, at its gate",
            scans: vec![(IN, 3, 10_000)],
            presence: Presence::Inside { since: 10, gate: 3 },
            entries: 1,
            conflict_of: vec![None],
            unmatched: vec![],
        },
        FoldRow {
            name: "entry while inside conflicts with the first entry",
            scans: vec![(IN, 1, 10_000), (IN, 2, 11_000)],
            // The later admission still says where and since when.
            presence: Presence::Inside { since: 11, gate: 2 },
            entries: 2,
            conflict_of: vec![None, Some(0)],
            unmatched: vec![],
        },
        FoldRow {
            name: "entry, exit, entry: a re-entry, no conflict",
            scans: vec![(IN, 1, 10_000), (OUT, 5, 20_000), (IN, 2, 30_000)],
            presence: Presence::Inside { since: 30, gate: 2 },
            entries: 2,
            conflict_of: vec![None, None, None],
            unmatched: vec![],
        },
        FoldRow {
            name: "exit first: an incident that moves nobody",
            scans: vec![(OUT, 5, 20_000)],
            presence: Presence::NeverEntered,
            entries: 0,
            conflict_of: vec![None],
            unmatched: vec![0],
        },
        FoldRow {
            name: "exit first, then entry: no conflict",
            scans: vec![(OUT, 5, 20_000), (IN, 1, 21_000)],
            presence: Presence::Inside { since: 21, gate: 1 },
            entries: 1,
            conflict_of: vec![None, None],
            unmatched: vec![0],
        },
        FoldRow {
            name: "a second exit while outside: flagged, outside since the first",
            scans: vec![(IN, 1, 10_000), (OUT, 5, 20_000), (OUT, 6, 25_000)],
            presence: Presence::Outside { since: 20, gate: 5 },
            entries: 1,
            conflict_of: vec![None, None, None],
            unmatched: vec![2],
        },
        FoldRow {
            name: "two scans in one second keep their millisecond order",
            scans: vec![(IN, 1, 10_100), (OUT, 1, 10_900)],
            presence: Presence::Outside { since: 10, gate: 1 },
            entries: 1,
            conflict_of: vec![None, None],
            unmatched: vec![],
        },
        FoldRow {
            name: "the same millisecond at two gates: the lower gate first",
            scans: vec![(IN, 2, 10_000), (IN, 7, 10_000)],
            presence: Presence::Inside { since: 10, gate: 7 },
            entries: 2,
            conflict_of: vec![None, Some(0)],
            unmatched: vec![],
        },
        FoldRow {
            name: "two conflicts both point at the first admission",
            scans: vec![(IN, 1, 10_000), (IN, 2, 11_000), (IN, 3, 12_000)],
            presence: Presence::Inside { since: 12, gate: 3 },
            entries: 3,
            conflict_of: vec![None, Some(0), Some(0)],
            unmatched: vec![],
        },
        FoldRow {
            name: "after an exit the next admission is the one conflicts point at",
            scans: vec![
                (IN, 1, 10_000),
                (IN, 2, 11_000),
                (OUT, 5, 12_000),
                (IN, 3, 13_000),
                (IN, 4, 14_000),
            ],
            presence: Presence::Inside { since: 14, gate: 4 },
            entries: 4,
            conflict_of: vec![None, Some(0), None, None, Some(3)],
            unmatched: vec![],
        },
        FoldRow {
            name: "exit after a conflict: outside, conflict kept",
            scans: vec![(IN, 1, 10_000), (IN, 2, 11_000), (OUT, 5, 12_500)],
            presence: Presence::Outside { since: 12, gate: 5 },
            entries: 2,
            conflict_of: vec![None, Some(0), None],
            unmatched: vec![],
        },
        FoldRow {
            name: "times round down to whole seconds, before 1970 too",
            scans: vec![(IN, 1, -1)],
            presence: Presence::Inside { since: -1, gate: 1 },
            entries: 1,
            conflict_of: vec![None],
            unmatched: vec![],
        },
    ]
}

#[test]
fn every_way_a_tickets_scans_fold() {
    let mut failures = Vec::new();
    for row in fold_table() {
        let scans: Vec<OpeningScan> = row
            .scans
            .iter()
            .enumerate()
            .map(|(n, &(direction, gate, at_ms))| OpeningScan {
                scan_id: id(n),
                gate,
                direction,
                at_ms,
                voided: false,
            })
            .collect();
        let folded = fold(&scans);
        let marks: Vec<(Uuid, Option<Uuid>)> = folded
            .marks
            .iter()
            .map(|m| (m.scan_id, m.conflict_of))
            .collect();
        let expected_marks: Vec<(Uuid, Option<Uuid>)> = row
            .conflict_of
            .iter()
            .enumerate()
            .map(|(n, of)| (id(n), of.map(id)))
            .collect();
        let got = (folded.presence, folded.entries, marks);
        let expected = (row.presence, row.entries, expected_marks);
        if got != expected {
            failures.push(format!("{}: expected {expected:?}, got {got:?}", row.name));
        }
        let conflicts: Vec<Uuid> = folded.conflicts().collect();
        let expected_conflicts: Vec<Uuid> = row
            .conflict_of
            .iter()
            .enumerate()
            .filter(|(_, of)| of.is_some())
            .map(|(n, _)| id(n))
            .collect();
        if conflicts != expected_conflicts {
            failures.push(format!(
                "{}: conflicts {conflicts:?}, expected {expected_conflicts:?}",
                row.name
            ));
        }
        let unmatched: Vec<Uuid> = folded.unmatched_exits().collect();
        let expected_unmatched: Vec<Uuid> = row.unmatched.iter().map(|&n| id(n)).collect();
        if unmatched != expected_unmatched {
            failures.push(format!(
                "{}: unmatched exits {unmatched:?}, expected {expected_unmatched:?}",
                row.name
            ));
        }
        let last = row
            .scans
            .last()
            .map(|&(_, gate, at_ms)| LastScan { gate, at_ms });
        if (folded.scans as usize, folded.last) != (row.scans.len(), last) {
            failures.push(format!(
                "{}: {} scans, last {:?}; expected {}, {last:?}",
                row.name,
                folded.scans,
                folded.last,
                row.scans.len()
            ));
        }
        // The rows list scans in scan-time order; any arrival order and
        // repeated uploads must fold the same.
        let mut arrived: Vec<OpeningScan> = scans.iter().rev().copied().collect();
        arrived.extend(scans.iter().copied());
        if fold(&arrived) != folded {
            failures.push(format!("{}: arrival order changed the fold", row.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Ticket 5 of event 7, its holder's key and the verified code gates read.
fn holders_code() -> (PublicKeyBytes, shared::VerifiedCredential) {
    let issuer = SigningKey::from_bytes(&[1; 32]);
    let holder = PublicKeyBytes::from(&SigningKey::from_bytes(&[2; 32]).verifying_key());
    let code = Credential::issue(
        CredentialBody {
            event_id: 7,
            ticket_id: 5,
            tier: 0,
            owner: holder,
            generation: 1,
        },
        &issuer,
    );
    let keys = vec![PublicKeyBytes::from(&issuer.verifying_key())];
    (holder, code.verify(&|_: u64| keys.clone()).unwrap())
}

/// Gate 4 of event 7, doors open all along, with the given rules.
fn gate_policy(
    direction: Direction,
    reentry: ReentryPolicy,
    unknown_tickets: UnknownTicketPolicy,
) -> GatePolicy {
    GatePolicy {
        event_id: 7,
        gate: 4,
        direction,
        event_status: EventStatus::Active,
        doors: DoorsWindow {
            opens_at: 0,
            closes_at: 1_000_000,
        },
        allowed_tiers: None,
        tier_gates: vec![],
        ends_at: 1_000_000,
        end_grace_secs: 0,
        reentry,
        unknown_tickets,
        holder_proof: HolderProofPolicy::NotRequired,
        undo_window_secs: 0,
    }
}

#[test]
fn the_servers_fold_agrees_with_the_gates_own_state_on_the_same_scans() {
    // A gate that saw every scan itself and the server folding them must end
    // with the same presence and count, or gates would take wrong views.
    let (holder, verified) = holders_code();
    let policy = |direction| {
        gate_policy(
            direction,
            ReentryPolicy::AllowedAfter {
                min_outside_secs: 60,
            },
            UnknownTicketPolicy::AdmitIfSigned,
        )
    };
    let mut gate_state = state(Presence::NeverEntered, 0);
    gate_state.owner = holder;
    let mut opened = Vec::new();
    // In, in again (refused), out, in too soon (refused), in, out.
    for (n, (direction, at)) in [
        (IN, 100),
        (IN, 110),
        (OUT, 200),
        (IN, 230),
        (IN, 300),
        (OUT, 400),
    ]
    .into_iter()
    .enumerate()
    {
        let policy = policy(direction);
        let decision = decide(&verified, Some(&gate_state), &policy, at);
        if let Some(next) = decision.next_state(&verified, Some(&gate_state), policy.gate, at) {
            gate_state = next;
            opened.push(OpeningScan {
                scan_id: id(n),
                gate: policy.gate,
                direction,
                at_ms: at * 1000,
                voided: false,
            });
        }
    }
    assert_eq!(opened.len(), 4, "two scans were refused");
    let folded = fold(&opened);
    assert_eq!(
        (folded.presence, folded.entries),
        (gate_state.presence, gate_state.entries)
    );
    assert_eq!(folded.conflicts().count(), 0);
}

#[test]
fn an_exit_first_never_locks_out_a_holder_where_reentry_is_forbidden() {
    let (holder, verified) = holders_code();
    let policy = |direction| {
        gate_policy(
            direction,
            ReentryPolicy::Forbidden,
            UnknownTicketPolicy::Reject,
        )
    };
    let mut gate_state = state(Presence::NeverEntered, 0);
    gate_state.owner = holder;
    // Someone walks out through the exit gate with the code first.
    let exit = decide(&verified, Some(&gate_state), &policy(OUT), 100);
    let after_exit = exit
        .next_state(&verified, Some(&gate_state), 4, 100)
        .unwrap();
    assert_eq!(after_exit.presence, Presence::NeverEntered);
    // The holder's first entry is still a first entry.
    let entry = decide(&verified, Some(&after_exit), &policy(IN), 200);
    assert_eq!(entry.code(), "admitted", "{entry:?}");
    // The server's fold agrees and flags the exit.
    let scans = [
        OpeningScan {
            scan_id: id(0),
            gate: 4,
            direction: OUT,
            at_ms: 100_000,
            voided: false,
        },
        OpeningScan {
            scan_id: id(1),
            gate: 4,
            direction: IN,
            at_ms: 200_000,
            voided: false,
        },
    ];
    let folded = fold(&scans);
    assert_eq!(folded.unmatched_exits().collect::<Vec<_>>(), vec![id(0)]);
    assert_eq!(
        folded.presence,
        Presence::Inside {
            since: 200,
            gate: 4
        }
    );
}

fn state(presence: Presence, entries: u32) -> TicketState {
    TicketState {
        event_id: 7,
        ticket_id: 5,
        tier: 0,
        owner: PublicKeyBytes([2; 32]),
        generation: 1,
        status: TicketStatus::Active,
        presence,
        entries,
    }
}

fn update(presence: Presence, entries: u32) -> PresenceUpdate {
    PresenceUpdate {
        event_id: 7,
        ticket_id: 5,
        presence,
        entries,
    }
}

struct MergeRow {
    name: &'static str,
    /// (presence, entries) this gate recorded.
    local: (Presence, u32),
    /// (presence, entries) the server sent.
    server: (Presence, u32),
    /// (presence, entries) after the merge, and whether it changed anything.
    expected: (Presence, u32, bool),
}

fn merge_table() -> Vec<MergeRow> {
    let inside = |since, gate| Presence::Inside { since, gate };
    let outside = |since, gate| Presence::Outside { since, gate };
    vec![
        MergeRow {
            name: "server newer: taken",
            local: (inside(100, 1), 1),
            server: (outside(200, 5), 1),
            expected: (outside(200, 5), 1, true),
        },
        MergeRow {
            name: "server older: local kept",
            local: (outside(200, 5), 1),
            server: (inside(100, 1), 1),
            expected: (outside(200, 5), 1, false),
        },
        MergeRow {
            name: "same time: local kept",
            local: (inside(100, 1), 1),
            server: (outside(100, 5), 1),
            expected: (inside(100, 1), 1, false),
        },
        MergeRow {
            name: "never entered here: any server view is newer",
            local: (Presence::NeverEntered, 0),
            server: (inside(100, 2), 1),
            expected: (inside(100, 2), 1, true),
        },
        MergeRow {
            name: "server has more entries: count grows",
            local: (inside(300, 1), 1),
            server: (inside(100, 2), 3),
            expected: (inside(300, 1), 3, true),
        },
        MergeRow {
            name: "server has fewer entries: count never shrinks",
            local: (inside(100, 1), 4),
            server: (outside(200, 5), 2),
            expected: (outside(200, 5), 4, true),
        },
        MergeRow {
            name: "nothing new: unchanged",
            local: (inside(100, 1), 2),
            server: (inside(100, 1), 2),
            expected: (inside(100, 1), 2, false),
        },
    ]
}

#[test]
fn every_way_the_servers_view_meets_the_gates() {
    let mut failures = Vec::new();
    for row in merge_table() {
        let mut s = state(row.local.0, row.local.1);
        let changed = merge(&mut s, &update(row.server.0, row.server.1));
        let got = (s.presence, s.entries, changed);
        if got != row.expected {
            failures.push(format!(
                "{}: expected {:?}, got {got:?}",
                row.name, row.expected
            ));
        }
        // Only presence and the count are the server's to change.
        let untouched = state(s.presence, s.entries);
        if s != untouched {
            failures.push(format!("{}: changed other fields: {s:?}", row.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

struct UndoneRow {
    name: &'static str,
    /// (presence, entries) this gate holds.
    local: (Presence, u32),
    /// The undone admission: (gate, since).
    undone: (u32, i64),
    /// (presence, entries) the server holds without it.
    server: (Presence, u32),
    /// (presence, entries) after, and whether it changed anything.
    expected: (Presence, u32, bool),
}

fn undone_table() -> Vec<UndoneRow> {
    let inside = |since, gate| Presence::Inside { since, gate };
    let outside = |since, gate| Presence::Outside { since, gate };
    vec![
        UndoneRow {
            name: "heard the admission from the server: forgotten",
            local: (inside(100, 2), 1),
            undone: (2, 100),
            server: (Presence::NeverEntered, 0),
            expected: (Presence::NeverEntered, 0, true),
        },
        UndoneRow {
            name: "undone second entry: back inside by the first",
            local: (inside(100, 2), 2),
            undone: (2, 100),
            server: (inside(50, 3), 1),
            expected: (inside(50, 3), 1, true),
        },
        UndoneRow {
            name: "undone re-entry: back outside",
            local: (inside(100, 2), 2),
            undone: (2, 100),
            server: (outside(80, 3), 1),
            expected: (outside(80, 3), 1, true),
        },
        UndoneRow {
            name: "this gate's own later entry counts: the server's view is merged",
            local: (inside(200, 1), 2),
            undone: (2, 100),
            server: (Presence::NeverEntered, 0),
            expected: (inside(200, 1), 2, false),
        },
        UndoneRow {
            name: "a later move heard since: merged as usual",
            local: (outside(150, 2), 1),
            undone: (2, 100),
            server: (inside(300, 4), 2),
            expected: (inside(300, 4), 2, true),
        },
        UndoneRow {
            name: "same second at another gate: not this admission",
            local: (inside(100, 3), 1),
            undone: (2, 100),
            server: (Presence::NeverEntered, 0),
            expected: (inside(100, 3), 1, false),
        },
        UndoneRow {
            name: "never heard of it: nothing to forget",
            local: (Presence::NeverEntered, 0),
            undone: (2, 100),
            server: (Presence::NeverEntered, 0),
            expected: (Presence::NeverEntered, 0, false),
        },
        UndoneRow {
            name: "a gate that admitted more since keeps its count",
            local: (inside(100, 2), 3),
            undone: (2, 100),
            server: (Presence::NeverEntered, 0),
            expected: (Presence::NeverEntered, 2, true),
        },
    ]
}

#[test]
fn every_way_an_undone_admission_meets_the_gates_view() {
    let mut failures = Vec::new();
    for row in undone_table() {
        let mut s = state(row.local.0, row.local.1);
        let notice = UndoneAdmission {
            gate: row.undone.0,
            since: row.undone.1,
            now: update(row.server.0, row.server.1),
        };
        let changed = forget_undone(&mut s, &notice);
        let got = (s.presence, s.entries, changed);
        if got != row.expected {
            failures.push(format!(
                "{}: expected {:?}, got {got:?}",
                row.name, row.expected
            ));
        }
        // Twice is once.
        let again = forget_undone(&mut s, &notice);
        if again || (s.presence, s.entries) != (row.expected.0, row.expected.1) {
            failures.push(format!("{}: the second notice changed {s:?}", row.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A ticket's scans from a proptest seed: up to 12, at a few gates, often
/// in the same second or millisecond.
fn scans_strategy() -> impl Strategy<Value = Vec<OpeningScan>> {
    prop::collection::vec((any::<bool>(), 1u32..4, 0i64..3_000), 0..12).prop_map(|rows| {
        rows.into_iter()
            .enumerate()
            .map(|(n, (entry, gate, at_ms))| OpeningScan {
                scan_id: id(n),
                gate,
                direction: if entry { IN } else { OUT },
                at_ms,
                voided: false,
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn the_fold_ignores_arrival_order_and_repeats(
        scans in scans_strategy(),
        order in any::<prop::sample::Index>(),
        repeats in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let folded = fold(&scans);
        let mut arrived = scans.clone();
        if !arrived.is_empty() {
            let len = arrived.len();
            arrived.rotate_left(order.index(len));
            for r in &repeats {
                arrived.push(scans[r.index(len)]);
            }
            arrived.swap(0, order.index(len));
        }
        prop_assert_eq!(fold(&arrived), folded.clone());
        // What the fold counts, checked against the scans themselves.
        let entries = scans.iter().filter(|s| s.direction == IN).count();
        prop_assert_eq!(folded.entries as usize, entries);
        prop_assert_eq!(folded.scans as usize, scans.len());
        prop_assert_eq!(folded.marks.len(), scans.len());
        // An exit is either matched (takes someone out) or flagged; nobody
        // is ever outside without having entered.
        if entries == 0 {
            prop_assert_eq!(folded.presence, Presence::NeverEntered);
        }
        let exits = scans.iter().filter(|s| s.direction == OUT).count();
        prop_assert!(folded.unmatched_exits().count() <= exits);
    }
}
