//! The on-chain entry record is the fold of a ticket's scans, whatever order
//! the gates' journals reach the server in: a property test against the real
//! server, the real program in the embedded chain and the real replay
//! worker, on SQLite and PostgreSQL.
//!
//! Each case makes random scans of a few tickets at three gates (two entry
//! gates and an exit, often in the same second or millisecond), cuts each
//! gate's journal into random uploads, sends them in a random order with
//! repeats, runs replay rounds at random points between them, and then
//! checks that every ticket on chain equals `shared::presence::fold` over
//! all its scans, and that another round sends nothing.
//!
//! `FOLD_CASES` sets the number of cases (default 4 per backend) and
//! `FOLD_SEED` replays one seed; every run prints its seed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use shared::presence::{OpeningScan, fold};
use shared::wire::ScanRecord;
use sync_server::services::replay;

on_both_backends!(
    chain_equals_the_fold_whatever_order_the_journals_arrive_in,
    an_exit_without_an_entry_is_an_incident_and_locks_nobody_out,
);

const DRAIN: Duration = Duration::from_secs(120);
/// Tickets per case; each case has its own.
const TICKETS: u32 = 5;

/// One case: scans as (ticket, gate index, at in quarter seconds from the
/// start), and the random choices that decide how they arrive.
#[derive(Debug, Clone)]
struct Case {
    scans: Vec<(u32, usize, i64)>,
    choices: Vec<u32>,
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec((0..TICKETS, 0..3usize, 0..48i64), 1..40),
        prop::collection::vec(any::<u32>(), 256),
    )
        .prop_map(|(scans, choices)| Case { scans, choices })
}

/// Takes the next random choice below `bound`.
struct Choices<'a>(std::slice::Iter<'a, u32>);

impl Choices<'_> {
    fn below(&mut self, bound: u32) -> u32 {
        self.0.next().copied().unwrap_or(0) % bound.max(1)
    }
}

fn seed() -> u64 {
    std::env::var("FOLD_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

async fn chain_equals_the_fold_whatever_order_the_journals_arrive_in(db: Db) {
    let cases: u32 = std::env::var("FOLD_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let seed = seed();
    println!("FOLD_SEED={seed} FOLD_CASES={cases}");
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );

    let server = start_on_chain(db, ChainMode::Embedded).await;
    server.seed_on_chain(TICKETS * cases).await;
    let gates = [
        server.enrol("north", 11).await,
        server.enrol("south", 12).await,
        server.enrol("exit", 13).await,
    ];
    // Scans lie in the ten minutes before the server's clock: in the chain's past.
    let start_ms = (T0 - 600) * 1000;

    for case_number in 0..cases {
        let case = case_strategy().new_tree(&mut runner).unwrap().current();
        let first_ticket = case_number * TICKETS;
        let mut choices = Choices(case.choices.iter());

        // Each gate's journal, in the gate's own order.
        let mut journals: [Vec<ScanRecord>; 3] = Default::default();
        for &(ticket, gate, quarter) in &case.scans {
            // Quarter seconds, sometimes nudged by a millisecond: many scans
            // share a second, some share a millisecond.
            let at_ms = start_ms + quarter * 250 + i64::from(choices.below(2));
            journals[gate].push(gates[gate].scan(first_ticket + ticket, at_ms));
        }
        // Cut each journal into uploads of 1 to 4 records; repeat some.
        let mut uploads: Vec<(usize, Vec<ScanRecord>)> = Vec::new();
        for (gate, journal) in journals.iter().enumerate() {
            let mut rest = journal.as_slice();
            while !rest.is_empty() {
                let take = (1 + choices.below(4) as usize).min(rest.len());
                uploads.push((gate, rest[..take].to_vec()));
                rest = &rest[take..];
            }
        }
        for _ in 0..choices.below(3) {
            if !uploads.is_empty() {
                let again = uploads[choices.below(uploads.len() as u32) as usize].clone();
                uploads.push(again);
            }
        }
        // Any arrival order, with replay rounds in between at random.
        for i in (1..uploads.len()).rev() {
            uploads.swap(i, choices.below(i as u32 + 1) as usize);
        }
        for (gate, batch) in uploads {
            let response = gates[gate].upload(batch).await;
            assert_eq!(response.status(), 200, "case {case_number} (seed {seed})");
            if choices.below(2) == 0 {
                replay::round(&server.state, "fold-test").await.unwrap();
            }
        }
        let summary = replay::drain(&server.state, EVENT, DRAIN).await.unwrap();
        assert_eq!(
            summary.waiting + summary.submitted + summary.failed,
            0,
            "case {case_number} (seed {seed}): {summary:?}"
        );

        // Every ticket on chain is the fold of all its scans.
        let ids: Vec<u32> = (first_ticket..first_ticket + TICKETS).collect();
        let on_chain = server.chain_tickets(&ids).await;
        let all: Vec<&ScanRecord> = journals.iter().flatten().collect();
        for (id, ticket) in ids.iter().zip(on_chain) {
            let ticket = ticket.unwrap();
            let scans: Vec<OpeningScan> = all
                .iter()
                .filter(|s| s.ticket_id == Some(*id))
                .map(|s| OpeningScan {
                    scan_id: s.scan_id,
                    gate: s.gate,
                    direction: s.direction,
                    at_ms: s.scanned_at_ms,
                    voided: false,
                })
                .collect();
            let folded = fold(&scans);
            let (last_gate, last_at_ms) = folded
                .last
                .map(|l| (l.gate as u16, l.at_ms))
                .unwrap_or((0, 0));
            let got = (
                ticket.scans_applied,
                ticket.entry_count,
                ticket.entered,
                ticket.inside,
                ticket.last_gate,
                ticket.last_scan_at_ms,
            );
            let expected = (
                folded.scans as u16,
                folded.entries as u16,
                folded.entries > 0,
                folded.inside(),
                last_gate,
                last_at_ms,
            );
            assert_eq!(
                got, expected,
                "ticket {id}, case {case_number} (seed {seed}): chain != fold of {scans:?}"
            );
        }
        // Idempotent: nothing is left to send.
        let again = replay::round(&server.state, "fold-test").await.unwrap();
        assert_eq!(again.transactions, 0, "case {case_number} (seed {seed})");
    }
}

async fn an_exit_without_an_entry_is_an_incident_and_locks_nobody_out(db: Db) {
    // The test event forbids re-entry: an exit recorded as "outside" would
    // make the holder's first entry look like a re-entry.
    let server = start_on_chain(db, ChainMode::Embedded).await;
    server.seed_on_chain(1).await;
    let north = server.enrol("north", 11).await;
    let exit = server.enrol("exit", 13).await;
    let t = (T0 - 300) * 1000;
    let stray = exit.scan(0, t);
    assert_eq!(exit.upload(vec![stray.clone()]).await.status(), 200);

    // The gates hear the holder never entered.
    let snapshot = north.snapshot().await;
    let state = snapshot
        .presence
        .iter()
        .find(|p| p.ticket_id == 0)
        .map(|p| p.presence);
    assert!(
        matches!(state, None | Some(shared::Presence::NeverEntered)),
        "{state:?}"
    );
    // The exit is flagged for the organizer, listed with the incidents.
    let report = server
        .admin_get(&format!("/api/events/{EVENT}/incidents"))
        .await;
    let listed: Vec<(String, String)> = report["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["scan_id"].as_str().unwrap().to_owned(),
                i["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![(stray.scan_id.to_string(), "exit_without_entry".to_owned())],
        "{report}"
    );

    // The holder's first entry is admitted (decided by the gate, recorded
    // as an admission, not a conflict) and goes on chain as the fold.
    let entry = north.scan(0, t + 60_000);
    let ack: shared::wire::JournalAck = north.upload(vec![entry]).await.json().await.unwrap();
    assert!(ack.conflicts.is_empty(), "{ack:?}");
    replay::drain(&server.state, EVENT, DRAIN).await.unwrap();
    let ticket = server.chain_tickets(&[0]).await.pop().flatten().unwrap();
    assert_eq!(
        (
            ticket.entered,
            ticket.inside,
            ticket.entry_count,
            ticket.scans_applied
        ),
        (true, true, 1, 2)
    );
}
