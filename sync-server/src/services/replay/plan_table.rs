//! The replay round's plan as a table: one row per rule of judging and
//! packing, each with the scans waiting, what the chain holds, and the plan
//! expected.

use std::collections::HashMap;

use shared::Direction;
use shared::presence::{OpeningScan, PresenceFold, fold};
use uuid::Uuid;

use super::{plan_round, record_of};
use crate::store::{PendingScan, ReplayState};

/// The latest scan time the chain accepts in every row but the clock one.
const FAR: i64 = 1_000_000_000;

fn scan(id: &str, ticket: u32, at: i64) -> PendingScan {
    PendingScan {
        scan_id: id.to_owned(),
        ticket_id: ticket,
        gate: 1,
        exit: false,
        scanned_at_ms: at * 1000,
        state: ReplayState::Ingested,
        signature: None,
        blockhash: None,
        attempts: 0,
        error: None,
    }
}

/// A scan whose earlier transaction the chain refused.
fn failed(id: &str, ticket: u32, at: i64) -> PendingScan {
    PendingScan {
        attempts: 1,
        error: Some("refused".into()),
        ..scan(id, ticket, at)
    }
}

/// A fold of `count` entries, the last at `last_at` seconds.
fn folded(count: u32, last_at: i64) -> PresenceFold {
    let scans: Vec<OpeningScan> = (0..count)
        .map(|n| OpeningScan {
            scan_id: Uuid::from_u128(u128::from(n) + 1),
            gate: 1,
            direction: Direction::Entry,
            at_ms: (last_at - i64::from(count - 1 - n)) * 1000,
            voided: false,
        })
        .collect();
    fold(&scans)
}

struct Case {
    name: &'static str,
    /// Grouped by ticket, as the store returns them.
    waiting: Vec<PendingScan>,
    /// Per ticket: scans folded and its last scan's time (seconds).
    folds: &'static [(u32, u32, i64)],
    /// Scans the chain's record folded per ticket; a ticket absent here or
    /// `None` does not exist on chain.
    chain: &'static [(u32, Option<u16>)],
    latest_allowed: i64,
    batch_max: usize,
    on_chain: &'static [&'static str],
    missing: &'static [&'static str],
    held_back: &'static [&'static str],
    /// The tickets of each transaction.
    batches: &'static [&'static [u32]],
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "a ticket whose fold holds more scans than the chain's record goes out",
            waiting: vec![scan("a", 1, 110), scan("b", 1, 120)],
            folds: &[(1, 3, 120)],
            chain: &[(1, Some(1))],
            latest_allowed: FAR,
            batch_max: 10,
            on_chain: &[],
            missing: &[],
            held_back: &[],
            batches: &[&[1]],
        },
        Case {
            name: "a fold the chain already holds is recorded as on chain, not sent",
            waiting: vec![scan("a", 1, 90), scan("b", 2, 90)],
            folds: &[(1, 2, 100), (2, 1, 90)],
            chain: &[(1, Some(2)), (2, Some(5))],
            latest_allowed: FAR,
            batch_max: 10,
            on_chain: &["a", "b"],
            missing: &[],
            held_back: &[],
            batches: &[],
        },
        Case {
            name: "an older scan arriving late still goes out: it grows the fold",
            waiting: vec![scan("late", 1, 50)],
            folds: &[(1, 2, 100)],
            chain: &[(1, Some(1))],
            latest_allowed: FAR,
            batch_max: 10,
            on_chain: &[],
            missing: &[],
            held_back: &[],
            batches: &[&[1]],
        },
        Case {
            name: "scans of a ticket the chain does not have are missing",
            waiting: vec![
                scan("a", 1, 110),
                scan("b", 2, 110),
                scan("b2", 2, 120),
                scan("c", 3, 110),
            ],
            folds: &[(1, 1, 110), (2, 2, 120), (3, 1, 110)],
            chain: &[(1, Some(0)), (2, None)],
            latest_allowed: FAR,
            batch_max: 10,
            on_chain: &[],
            missing: &["b", "b2", "c"],
            held_back: &[],
            batches: &[&[1]],
        },
        Case {
            name: "a ticket whose last scan is ahead of the chain clock waits",
            waiting: vec![scan("a", 1, 150), scan("b", 1, 250), scan("d", 2, 150)],
            folds: &[(1, 2, 250), (2, 1, 150)],
            chain: &[(1, Some(0)), (2, Some(0))],
            latest_allowed: 200,
            batch_max: 10,
            on_chain: &[],
            missing: &[],
            held_back: &["a", "b"],
            batches: &[&[2]],
        },
        Case {
            name: "a ticket whose transaction failed before goes alone",
            waiting: vec![scan("a", 1, 110), failed("b", 2, 110), scan("c", 3, 110)],
            folds: &[(1, 1, 110), (2, 1, 110), (3, 1, 110)],
            chain: &[(1, Some(0)), (2, Some(0)), (3, Some(0))],
            latest_allowed: FAR,
            batch_max: 10,
            on_chain: &[],
            missing: &[],
            held_back: &[],
            batches: &[&[2], &[1, 3]],
        },
        Case {
            name: "one record per ticket, batch_max tickets per transaction",
            waiting: vec![
                scan("a1", 1, 110),
                scan("a2", 1, 120),
                scan("b1", 2, 110),
                scan("c1", 3, 110),
                scan("c2", 3, 120),
                scan("c3", 3, 130),
            ],
            folds: &[(1, 2, 120), (2, 1, 110), (3, 3, 130)],
            chain: &[(1, Some(0)), (2, Some(0)), (3, Some(0))],
            latest_allowed: FAR,
            batch_max: 2,
            on_chain: &[],
            missing: &[],
            held_back: &[],
            batches: &[&[1, 2], &[3]],
        },
    ]
}

fn owned(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|id| (*id).to_owned()).collect()
}

#[test]
fn plan_round_table() {
    for case in cases() {
        let waiting: Vec<&PendingScan> = case.waiting.iter().collect();
        let folds: HashMap<u32, PresenceFold> = case
            .folds
            .iter()
            .map(|&(ticket, count, last)| (ticket, folded(count, last)))
            .collect();
        let chain: HashMap<u32, Option<u16>> = case.chain.iter().copied().collect();
        let plan = plan_round(
            &waiting,
            &folds,
            &chain,
            case.latest_allowed * 1000,
            case.batch_max,
        );
        let batches: Vec<Vec<u32>> = plan
            .batches
            .iter()
            .map(|b| b.records().iter().map(|(t, _)| *t).collect())
            .collect();
        let expected: Vec<Vec<u32>> = case.batches.iter().map(|b| b.to_vec()).collect();
        assert_eq!(
            plan.on_chain,
            owned(case.on_chain),
            "{}: on chain",
            case.name
        );
        assert_eq!(plan.missing, owned(case.missing), "{}: missing", case.name);
        assert_eq!(
            plan.held_back,
            owned(case.held_back),
            "{}: held back",
            case.name
        );
        assert_eq!(batches, expected, "{}: batches", case.name);
        // Every waiting scan a transaction carries is its ticket's.
        for batch in &plan.batches {
            for ticket in &batch.tickets {
                assert!(ticket.scans.iter().all(|s| s.ticket_id == ticket.ticket_id));
            }
        }
    }
}

#[test]
fn a_record_is_the_fold_of_the_tickets_scans() {
    let scans = [
        (Direction::Exit, 7, 100_500),
        (Direction::Entry, 2, 90_000),
        (Direction::Entry, 3, 95_250),
    ]
    .into_iter()
    .enumerate()
    .map(|(n, (direction, gate, at_ms))| OpeningScan {
        scan_id: Uuid::from_u128(n as u128 + 1),
        gate,
        direction,
        at_ms,
        voided: false,
    })
    .collect::<Vec<_>>();
    let record = record_of(&fold(&scans)).unwrap();
    // Two entries (the second a conflict), then the exit at gate 7 with its milliseconds.
    assert_eq!(
        (
            record.scans,
            record.entries,
            record.inside,
            record.gate,
            record.at_ms
        ),
        (3, 2, false, 7, 100_500)
    );
    assert!(record_of(&fold(&[])).is_none());
}
