//! The replay round's plan as a table: one row per rule of judging and
//! packing, each with the scans waiting, what the chain holds, and the plan
//! expected.

use std::collections::HashMap;

use super::plan_round;
use crate::store::{PendingScan, ReplayState};

/// The latest scan time the chain accepts in every row but the clock one.
const FAR: i64 = 1_000_000;

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

struct Case {
    name: &'static str,
    /// Per ticket in scan-time order, as the store returns them.
    waiting: Vec<PendingScan>,
    /// Last scan time per ticket on chain; a ticket absent here or `None`
    /// does not exist on chain.
    chain: &'static [(u32, Option<i64>)],
    latest_allowed: i64,
    batch_max: usize,
    superseded: &'static [&'static str],
    missing: &'static [&'static str],
    held_back: &'static [&'static str],
    batches: &'static [&'static [&'static str]],
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "scans not newer than the chain's last are superseded",
            waiting: vec![scan("a", 1, 90), scan("b", 1, 100), scan("c", 1, 110)],
            chain: &[(1, Some(100))],
            latest_allowed: FAR,
            batch_max: 10,
            superseded: &["a", "b"],
            missing: &[],
            held_back: &[],
            batches: &[&["c"]],
        },
        Case {
            name: "scans of a ticket the chain does not have are missing",
            waiting: vec![
                scan("a", 1, 110),
                scan("b", 2, 110),
                scan("b2", 2, 120),
                scan("c", 3, 110),
            ],
            chain: &[(1, Some(100)), (2, None)],
            latest_allowed: FAR,
            batch_max: 10,
            superseded: &[],
            missing: &["b", "b2", "c"],
            held_back: &[],
            batches: &[&["a"]],
        },
        Case {
            name: "a scan ahead of the chain clock holds back its ticket's later scans",
            waiting: vec![
                scan("a", 1, 150),
                scan("b", 1, 250),
                scan("c", 1, 260),
                scan("d", 2, 150),
            ],
            chain: &[(1, Some(100)), (2, Some(100))],
            latest_allowed: 200,
            batch_max: 10,
            superseded: &[],
            missing: &[],
            held_back: &["b", "c"],
            batches: &[&["a", "d"]],
        },
        Case {
            name: "a previously failed scan goes alone and first",
            waiting: vec![failed("a", 1, 110), scan("b", 1, 120), scan("c", 2, 110)],
            chain: &[(1, Some(100)), (2, Some(100))],
            latest_allowed: FAR,
            batch_max: 10,
            superseded: &[],
            missing: &[],
            held_back: &["b"],
            batches: &[&["a"], &["c"]],
        },
        Case {
            name: "a previously failed scan behind others waits for a later round",
            waiting: vec![scan("a", 1, 110), failed("b", 1, 120), scan("c", 1, 130)],
            chain: &[(1, Some(100))],
            latest_allowed: FAR,
            batch_max: 10,
            superseded: &[],
            missing: &[],
            held_back: &["b", "c"],
            batches: &[&["a"]],
        },
        Case {
            name: "whole tickets are packed together up to batch_max",
            waiting: vec![
                scan("a1", 1, 110),
                scan("a2", 1, 120),
                scan("b1", 2, 110),
                scan("b2", 2, 120),
            ],
            chain: &[(1, Some(100)), (2, Some(100))],
            latest_allowed: FAR,
            batch_max: 4,
            superseded: &[],
            missing: &[],
            held_back: &[],
            batches: &[&["a1", "a2", "b1", "b2"]],
        },
        Case {
            name: "a ticket that does not fit starts a new batch",
            waiting: vec![
                scan("a1", 1, 110),
                scan("a2", 1, 120),
                scan("b1", 2, 110),
                scan("b2", 2, 120),
                scan("b3", 2, 130),
                scan("c1", 3, 110),
            ],
            chain: &[(1, Some(100)), (2, Some(100)), (3, Some(100))],
            latest_allowed: FAR,
            batch_max: 4,
            superseded: &[],
            missing: &[],
            held_back: &[],
            batches: &[&["a1", "a2"], &["b1", "b2", "b3", "c1"]],
        },
        Case {
            name: "a ticket longer than batch_max sends its first scans only",
            waiting: vec![
                scan("a", 1, 110),
                scan("b", 1, 120),
                scan("c", 1, 130),
                scan("d", 1, 140),
            ],
            chain: &[(1, Some(100))],
            latest_allowed: FAR,
            batch_max: 3,
            superseded: &[],
            missing: &[],
            held_back: &["d"],
            batches: &[&["a", "b", "c"]],
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
        let chain: HashMap<u32, Option<i64>> = case.chain.iter().copied().collect();
        let plan = plan_round(&waiting, &chain, case.latest_allowed, case.batch_max);
        let batches: Vec<Vec<String>> = plan.batches.iter().map(|b| b.scan_ids()).collect();
        let expected: Vec<Vec<String>> = case.batches.iter().map(|b| owned(b)).collect();
        assert_eq!(
            plan.superseded,
            owned(case.superseded),
            "{}: superseded",
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
    }
}

#[test]
fn records_carry_the_scan_second_gate_and_direction() {
    let exit = PendingScan {
        gate: 7,
        exit: true,
        scanned_at_ms: 120_999,
        ..scan("a", 1, 0)
    };
    let waiting = [&exit];
    let chain = HashMap::from([(1, Some(100))]);
    let plan = plan_round(&waiting, &chain, FAR, 10);
    let records = plan.batches[0].records();
    assert_eq!(records.len(), 1);
    let (ticket, record) = records[0];
    assert_eq!(ticket, 1);
    assert_eq!(record.at, 120);
    assert_eq!(record.gate, 7);
    assert_eq!(record.kind, ticketing::client::EntryKind::Exit);
}
