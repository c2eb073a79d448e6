//! Turnstile undos uploaded with a gate's journal: the voided admission is
//! kept but never goes on chain and counts nowhere, and the ticket's next
//! admission does; an undo that comes after its admission reached the
//! chain is an incident rather than a pretence. On SQLite and PostgreSQL,
//! against the real program in the embedded chain.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use shared::Presence;
use shared::wire::{
    CacheChange, CacheDelta, PresenceUpdate, ScanRecord, SignedPayload, UndoneAdmission,
};
use sync_server::services::replay;
use uuid::Uuid;

on_both_backends!(
    a_voided_admission_never_goes_on_chain_and_counts_nowhere,
    an_undo_after_the_admission_reached_the_chain_is_an_incident,
    every_gate_hears_of_an_undone_admission,
);

const DRAIN: Duration = Duration::from_secs(120);

/// The undo record a gate journals for `admission`, `after_ms` later.
fn undo_of(admission: &ScanRecord, after_ms: i64) -> ScanRecord {
    ScanRecord {
        scan_id: Uuid::now_v7(),
        scanned_at_ms: admission.scanned_at_ms + after_ms,
        source: "status-page".into(),
        outcome: "admission_undone".into(),
        opened: false,
        voids: Some(admission.scan_id),
        ..admission.clone()
    }
}

async fn a_voided_admission_never_goes_on_chain_and_counts_nowhere(db: Db) {
    let server = start_on_chain(db, ChainMode::Embedded).await;
    server.seed_on_chain(2).await;
    let north = server.enrol("north", 11).await;
    let t = T0 * 1000;
    let voided = north.scan(0, t);
    let other = north.scan(1, t + 1_000);
    let undo = undo_of(&voided, 3_000);
    let batch = vec![voided.clone(), other, undo.clone()];
    let r = north.upload(batch.clone()).await;
    assert_eq!(r.status(), 200);
    let ack: serde_json::Value = r.json().await.unwrap();
    assert_eq!(ack["stored"], 3, "{ack}");
    assert_eq!(ack["refused"], serde_json::json!([]), "{ack}");
    // A retried upload changes nothing.
    assert_eq!(north.upload(batch).await.status(), 200);

    let summary = replay::drain(&server.state, EVENT, DRAIN).await.unwrap();
    assert_eq!(summary.confirmed, 1, "only the other ticket: {summary:?}");
    assert_eq!(summary.voided, 1, "{summary:?}");
    let tickets = server.chain_tickets(&[0, 1]).await;
    let t0 = tickets[0].as_ref().unwrap();
    assert!(!t0.entered, "the voided admission is not on chain");
    assert_eq!(t0.scans_applied, 0);
    assert_eq!(tickets[1].as_ref().unwrap().entry_count, 1);
    let replays = server.state.store.scan_replays(EVENT).await.unwrap();
    let state_of = |id: Uuid| {
        replays
            .iter()
            .find(|r| r.scan_id == id.to_string())
            .map(|r| r.state.as_str())
    };
    assert_eq!(state_of(voided.scan_id), Some("voided"));

    let counts = server.state.store.gate_counts(EVENT).await.unwrap();
    let gate = counts.iter().find(|g| g.name == "north").unwrap();
    assert_eq!(
        (gate.admitted, gate.undone, gate.inside, gate.rejected),
        (1, 1, 1, 0),
        "{gate:?}"
    );
    let standing = server
        .state
        .store
        .ticket_state(EVENT, 0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(standing.presence, shared::Presence::NeverEntered);
    assert_eq!(standing.entries, 0);

    // The holder is scanned again and passes: that admission goes on chain.
    let again = north.scan(0, t + 6_000);
    assert_eq!(north.upload(vec![again]).await.status(), 200);
    let summary = replay::drain(&server.state, EVENT, DRAIN).await.unwrap();
    assert_eq!(summary.confirmed, 2, "{summary:?}");
    let t0 = server.chain_tickets(&[0]).await.remove(0).unwrap();
    assert_eq!(t0.entry_count, 1);
    assert!(t0.inside);
    assert_eq!(t0.last_scan_at_ms, t + 6_000);
    assert!(
        server
            .state
            .store
            .incidents(EVENT)
            .await
            .unwrap()
            .is_empty(),
        "nothing to report when the undo came in time"
    );
}

async fn an_undo_after_the_admission_reached_the_chain_is_an_incident(db: Db) {
    let server = start_on_chain(db, ChainMode::Embedded).await;
    server.seed_on_chain(1).await;
    let north = server.enrol("north", 11).await;
    let t = T0 * 1000;
    let admission = north.scan(0, t);
    assert_eq!(north.upload(vec![admission.clone()]).await.status(), 200);
    let summary = replay::drain(&server.state, EVENT, DRAIN).await.unwrap();
    assert_eq!(summary.confirmed, 1, "{summary:?}");

    // The gate was offline: its undo arrives after the replay.
    let undo = undo_of(&admission, 2_000);
    assert_eq!(north.upload(vec![undo.clone()]).await.status(), 200);
    let incidents = server.state.store.incidents(EVENT).await.unwrap();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(incidents[0].reason, "undone_after_chain");
    assert_eq!(incidents[0].scan_id, undo.scan_id);
    assert_eq!(incidents[0].ticket_id, Some(0));
    // The chain still says what it says; the server does not pretend.
    let t0 = server.chain_tickets(&[0]).await.remove(0).unwrap();
    assert_eq!(t0.entry_count, 1);
    let counts = server.state.store.gate_counts(EVENT).await.unwrap();
    let gate = counts.iter().find(|g| g.name == "north").unwrap();
    assert_eq!(
        (gate.admitted, gate.undone, gate.inside),
        (0, 1, 0),
        "{gate:?}"
    );
    let replays = server.state.store.scan_replays(EVENT).await.unwrap();
    assert!(
        replays
            .iter()
            .any(|r| r.scan_id == admission.scan_id.to_string() && r.state.as_str() == "confirmed")
    );

    // The holder's next admission brings the chain back to the server's fold.
    assert_eq!(
        north.upload(vec![north.scan(0, t + 9_000)]).await.status(),
        200
    );
    replay::drain(&server.state, EVENT, DRAIN).await.unwrap();
    let t0 = server.chain_tickets(&[0]).await.remove(0).unwrap();
    assert_eq!((t0.entry_count, t0.scans_applied), (1, 2));
    assert_eq!(t0.last_scan_at_ms, t + 9_000);
}

/// The delta after `cursor` as a gate reading cache `protocol` gets it
/// (`None`: an agent from before the version header).
async fn delta_as(gate: &Gate, cursor: u64, protocol: Option<&str>) -> CacheDelta {
    let path = format!("/gate/v1/delta?cursor={cursor}&wait=0");
    let signed = gate.sign("GET", &path, &[]);
    let r = gate
        .send_signed_as("GET", &path, vec![], &signed, protocol)
        .await;
    assert_eq!(r.status(), 200);
    SignedPayload::from_file_bytes(&r.bytes().await.unwrap())
        .unwrap()
        .open(Some(&gate.response.server_key))
        .unwrap()
}

/// South heard from the server that north let ticket 0 in; north then
/// undoes it. South's next delta says so, so south forgets the admission
/// (the holder may come in at south); so does a snapshot.
async fn every_gate_hears_of_an_undone_admission(db: Db) {
    let server = start(db).await;
    server.seed(2).await;
    let north = server.enrol("north", 11).await;
    let south = server.enrol("south", 12).await;
    let cursor = south.snapshot().await.cursor;
    let t = T0 * 1000 + 250;
    let admission = north.scan(0, t);
    assert_eq!(north.upload(vec![admission.clone()]).await.status(), 200);
    let heard = south.delta(cursor, 0).await;
    let inside = PresenceUpdate {
        event_id: EVENT,
        ticket_id: 0,
        presence: Presence::Inside {
            since: T0,
            gate: north.response.gate.number,
        },
        entries: 1,
    };
    assert_eq!(heard.changes, vec![CacheChange::Presence(inside)]);

    assert_eq!(
        north
            .upload(vec![undo_of(&admission, 2_000)])
            .await
            .status(),
        200
    );
    let never = PresenceUpdate {
        presence: Presence::NeverEntered,
        entries: 0,
        ..inside
    };
    let undone = UndoneAdmission {
        gate: north.response.gate.number,
        since: T0,
        now: never,
    };
    let delta = south.delta(heard.to_cursor, 0).await;
    assert_eq!(
        delta.changes,
        vec![CacheChange::Presence(never), CacheChange::Undone(undone)]
    );
    assert_eq!(delta.v, shared::wire::PROTOCOL_VERSION);
    // An agent from before version 5 gets the presence alone, in version 4.
    let old = delta_as(&south, heard.to_cursor, None).await;
    assert_eq!(old.v, 4);
    assert_eq!(old.changes, vec![CacheChange::Presence(never)]);
    let old = delta_as(&south, heard.to_cursor, Some("4")).await;
    assert_eq!(old.changes, vec![CacheChange::Presence(never)]);
    // A version this server does not know yet gets the newest it writes.
    let newer = delta_as(&south, heard.to_cursor, Some("999")).await;
    assert_eq!(newer.changes, delta.changes);

    // A gate syncing from scratch gets the undone admissions whole.
    let snapshot = south.snapshot().await;
    assert_eq!(snapshot.undone, vec![undone]);
    assert_eq!(snapshot.presence, vec![never]);
    // So does a cache file, unless it is written for older gates.
    let file = |protocol: &str| {
        server
            .http
            .get(format!(
                "{}/api/admin/events/{EVENT}/cache-file{protocol}",
                server.url
            ))
            .bearer_auth(ADMIN)
            .send()
    };
    for (query, version, undone_in_file) in [("", 5, vec![undone]), ("?protocol=4", 4, vec![])] {
        let r = file(query).await.unwrap();
        assert_eq!(r.status(), 200, "{query}");
        let signed = SignedPayload::from_file_bytes(&r.bytes().await.unwrap()).unwrap();
        assert_eq!(signed.v, version, "{query}");
        let cached: shared::wire::CacheSnapshot = signed.open(None).unwrap();
        assert_eq!(cached.undone, undone_in_file, "{query}");
    }
    let r = file("?protocol=3").await.unwrap();
    assert_eq!(r.status(), 426);

    // Nonsense and too-old versions are refused in words.
    for (header, status, code) in [
        ("five", 400, "bad_request"),
        ("3", 426, "unsupported_version"),
    ] {
        let path = "/gate/v1/snapshot";
        let signed = south.sign("GET", path, &[]);
        let r = south
            .send_signed_as("GET", path, vec![], &signed, Some(header))
            .await;
        assert_eq!(r.status().as_u16(), status, "{header}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], code, "{header}: {body}");
    }
}
