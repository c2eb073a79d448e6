//! Event and gate policies applied by the running agent on an injected clock:
//! rotating holder proofs, exit gates, doors not yet open.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::*;
use gate_agent::config::{Config, Direction};
use gate_agent::{ManualClock, RecordingOutputs};
use shared::{Credential, CredentialBody, HolderProofPolicy, Presence};

fn run_scans(config: Config, clock: Arc<ManualClock>, steps: &[(i64, String)]) -> Vec<String> {
    let db = config.store.path.clone();
    let outputs = RecordingOutputs::new();
    let (scans, input) = channel_input("lane");
    let agent = Running::start(
        config,
        vec![input],
        outputs.clone(),
        Arc::clone(&clock) as _,
    );
    for (i, (now_ms, code)) in steps.iter().enumerate() {
        clock.set(*now_ms);
        scans.send(code.clone()).unwrap();
        wait_for(|| outputs.actuations().len() == i + 1, "verdict");
    }
    agent.stop();
    journal(&db).into_iter().map(|e| e.record.outcome).collect()
}

fn config(dir: &std::path::Path) -> Config {
    let mut c = Config::default();
    c.store.path = dir.join("gate.db");
    c.status.enabled = false;
    c
}

#[test]
fn holder_proof_events_admit_a_live_code_and_refuse_an_old_screenshot() {
    let dir = tempfile::tempdir().unwrap();
    let venue = Venue::new();
    let mut snapshot = venue.snapshot(5);
    snapshot.events[0].holder_proof = HolderProofPolicy::Required { window_secs: 30 };
    import(&dir.path().join("gate.db"), &venue, &snapshot);

    let now = DURING_DOORS_MS / 1000;
    let with_proof = |ticket: u32, signed_at: i64| {
        let body = CredentialBody {
            event_id: EVENT,
            ticket_id: ticket,
            tier: (ticket % 2) as u8,
            owner: public(&owner(ticket)),
            generation: 1,
        };
        Credential::issue(body, &venue.issuer)
            .with_holder_proof(&owner(ticket), signed_at as u32)
            .encode()
    };
    let outcomes = run_scans(
        config(dir.path()),
        Arc::new(ManualClock::new(DURING_DOORS_MS)),
        &[
            (DURING_DOORS_MS, with_proof(1, now - 5)),
            (DURING_DOORS_MS, with_proof(3, now - 600)),
            (DURING_DOORS_MS, venue.code(4)),
        ],
    );
    assert_eq!(
        outcomes,
        ["admitted", "holder_proof_stale", "holder_proof_missing"]
    );
}

#[test]
fn exit_gate_records_exits_and_an_exit_without_entry_moves_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let venue = Venue::new();
    let db = dir.path().join("gate.db");
    import(&db, &venue, &venue.snapshot(5));
    let mut c = config(dir.path());
    c.gate.direction = Direction::Exit;
    c.gate.number = 9;
    let outcomes = run_scans(
        c,
        Arc::new(ManualClock::new(DURING_DOORS_MS)),
        &[
            (DURING_DOORS_MS, venue.code(1)),
            (DURING_DOORS_MS, venue.forged_code(3)),
        ],
    );
    assert_eq!(outcomes, ["exit_recorded", "bad_signature"]);
    let state = gate_agent::store::Store::open(&db)
        .unwrap()
        .ticket_state(EVENT, 1)
        .unwrap()
        .unwrap();
    // The holder was never let in: the exit is journalled (the server flags
    // it) but does not make them "outside", which would refuse their first
    // entry as a re-entry where re-entry is forbidden.
    assert_eq!(state.presence, Presence::NeverEntered);
}

#[test]
fn doors_not_open_refuses_until_the_clock_reaches_opening_time() {
    let dir = tempfile::tempdir().unwrap();
    let venue = Venue::new();
    import(&dir.path().join("gate.db"), &venue, &venue.snapshot(5));
    let before = (DOORS_OPEN - 60) * 1000;
    let outcomes = run_scans(
        config(dir.path()),
        Arc::new(ManualClock::new(before)),
        &[(before, venue.code(1)), (DOORS_OPEN * 1000, venue.code(1))],
    );
    assert_eq!(outcomes, ["doors_not_open", "admitted"]);
}
