//! Every wire message, encoded once and checked in under `tests/fixtures/`.
//!
//! A fixture must still decode to the same value, and today's encoder must
//! still produce it, so a format change is never an accident. To make one on
//! purpose, bump the protocol version where needed and regenerate with
//! `UPDATE_FIXTURES=1 cargo test -p shared --test wire_fixtures`.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::path::PathBuf;

use ed25519_dalek::SigningKey;
use serde::Serialize;
use serde::de::DeserializeOwned;
use shared::wire::*;
use shared::{
    Direction, DoorsWindow, EventStatus, HolderProofPolicy, Presence, PublicKeyBytes,
    ReentryPolicy, TicketStatus, TierGates, UnknownTicketPolicy,
};
use uuid::Uuid;

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn check_bytes(name: &str, encoded: &[u8]) -> Vec<u8> {
    let path = fixture_path(name);
    if std::env::var_os("UPDATE_FIXTURES").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, encoded).unwrap();
    }
    let stored = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (regenerate with UPDATE_FIXTURES=1)",
            path.display()
        )
    });
    assert_eq!(
        stored, encoded,
        "{name}: today's encoding differs from the checked-in fixture"
    );
    stored
}

fn check_json<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(name: &str, value: T) {
    let encoded = serde_json::to_vec_pretty(&value).unwrap();
    let stored = check_bytes(name, &encoded);
    let decoded: T = serde_json::from_slice(&stored).unwrap();
    assert_eq!(decoded, value, "{name} decodes to a different value");
}

fn key(seed: u8) -> PublicKeyBytes {
    PublicKeyBytes::from(&SigningKey::from_bytes(&[seed; 32]).verifying_key())
}

fn event() -> CachedEvent {
    CachedEvent {
        event_id: 1_764_072_000_001,
        name: "Harbour Lights Festival".into(),
        status: EventStatus::Active,
        doors: DoorsWindow {
            opens_at: 1_764_072_000,
            closes_at: 1_764_100_800,
        },
        issuer_keys: vec![key(1)],
        tiers: vec![
            TierInfo {
                index: 0,
                name: "general".into(),
            },
            TierInfo {
                index: 1,
                name: "vip".into(),
            },
        ],
        reentry: ReentryPolicy::AllowedAfter {
            min_outside_secs: 900,
        },
        unknown_tickets: UnknownTicketPolicy::AdmitIfSigned,
        holder_proof: HolderProofPolicy::Required { window_secs: 30 },
        tier_gates: vec![TierGates {
            tier: 1,
            gates: vec![3, 4],
        }],
        ends_at: 1_764_100_800,
        end_grace_secs: 1800,
        undo_window_secs: 8,
    }
}

fn ticket(id: u32) -> CachedTicket {
    CachedTicket {
        event_id: 1_764_072_000_001,
        ticket_id: id,
        tier: (id % 2) as u8,
        owner: key(id as u8),
        generation: id % 3,
        status: TicketStatus::Active,
    }
}

fn scan() -> ScanRecord {
    ScanRecord {
        scan_id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001),
        gate: 3,
        direction: Direction::Entry,
        scanned_at_ms: 1_764_075_600_123,
        source: "serial:/dev/ttyACM0".into(),
        event_id: Some(1_764_072_000_001),
        ticket_id: Some(17),
        generation: Some(1),
        tier: Some(1),
        outcome: "admitted".into(),
        opened: true,
        voids: None,
    }
}

#[test]
fn enrolment_messages() {
    check_json(
        "enrol_request.json",
        EnrolRequest {
            v: 1,
            token: "enr_4f9d2c1a7b".into(),
            device_key: key(7),
            agent_version: "0.1.0".into(),
            hostname: Some("gate-north-1".into()),
        },
    );
    check_json(
        "enrol_response.json",
        EnrolResponse {
            v: 1,
            device_id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_00aa),
            event_id: 1_764_072_000_001,
            gate: GateInfo {
                number: 3,
                name: "north-1".into(),
                direction: Direction::Entry,
                allowed_tiers: None,
            },
            server_key: key(8),
        },
    );
}

#[test]
fn journal_messages() {
    let mut rejected = scan();
    rejected.scan_id = Uuid::from_u128(2);
    rejected.outcome = "already_inside".into();
    rejected.opened = false;
    let mut unreadable = scan();
    unreadable.scan_id = Uuid::from_u128(3);
    unreadable.event_id = None;
    unreadable.ticket_id = None;
    unreadable.generation = None;
    unreadable.tier = None;
    unreadable.outcome = "unreadable_code".into();
    unreadable.opened = false;
    check_json(
        "journal_batch.json",
        JournalBatch {
            v: 1,
            device_id: Uuid::from_u128(0xaa),
            scans: vec![scan(), rejected, unreadable],
        },
    );
    check_json(
        "journal_ack.json",
        JournalAck {
            v: 1,
            acked: vec![scan().scan_id, Uuid::from_u128(2), Uuid::from_u128(4)],
            stored: 1,
            duplicates: 1,
            refused: vec![RefusedScan {
                scan_id: Uuid::from_u128(4),
                reason: "wrong_event".into(),
            }],
            conflicts: vec![],
            server_time: 1_764_075_601,
        },
    );
}

/// The snapshot and delta of the fixtures, as today's server writes them.
fn cache_snapshot() -> CacheSnapshot {
    CacheSnapshot {
        v: PROTOCOL_VERSION,
        cursor: 41,
        generated_at: 1_764_070_000,
        events: vec![event()],
        tickets: (1..=5).map(ticket).collect(),
        presence: vec![PresenceUpdate {
            event_id: 1_764_072_000_001,
            ticket_id: 2,
            presence: Presence::Inside {
                since: 1_764_070_100,
                gate: 3,
            },
            entries: 1,
        }],
        undone: vec![undone()],
    }
}

/// Ticket 4 was admitted at gate 2 and the gate undid it.
fn undone() -> UndoneAdmission {
    UndoneAdmission {
        gate: 2,
        since: 1_764_070_050,
        now: PresenceUpdate {
            event_id: 1_764_072_000_001,
            ticket_id: 4,
            presence: Presence::NeverEntered,
            entries: 0,
        },
    }
}

fn cache_delta() -> CacheDelta {
    let mut frozen = ticket(2);
    frozen.status = TicketStatus::Frozen;
    CacheDelta {
        v: PROTOCOL_VERSION,
        from_cursor: 41,
        to_cursor: 44,
        generated_at: 1_764_070_100,
        changes: vec![
            CacheChange::Ticket(ticket(6)),
            CacheChange::Ticket(frozen),
            CacheChange::Event(event()),
            CacheChange::Presence(PresenceUpdate {
                event_id: 1_764_072_000_001,
                ticket_id: 6,
                presence: Presence::Outside {
                    since: 1_764_070_200,
                    gate: 4,
                },
                entries: 2,
            }),
            CacheChange::Undone(undone()),
        ],
        has_more: false,
    }
}

#[test]
fn signed_cache_snapshot_and_delta() {
    let server = SigningKey::from_bytes(&[8; 32]);
    let snapshot = cache_snapshot();
    // ed25519 signatures are deterministic, so the signed file is too.
    let stored = check_bytes(
        "cache_snapshot.bin",
        &SignedPayload::sign(&snapshot, &server).to_file_bytes(),
    );
    let opened: CacheSnapshot = SignedPayload::from_file_bytes(&stored)
        .unwrap()
        .open(Some(&PublicKeyBytes::from(&server.verifying_key())))
        .unwrap();
    assert_eq!(opened, snapshot);

    let delta = cache_delta();
    let stored = check_bytes(
        "cache_delta.bin",
        &SignedPayload::sign(&delta, &server).to_file_bytes(),
    );
    let opened: CacheDelta = SignedPayload::from_file_bytes(&stored)
        .unwrap()
        .open(None)
        .unwrap();
    assert_eq!(opened, delta);
}

/// Files written by a version 4 server (checked in before version 5) still
/// open, without undone admissions; and what today's server writes for a
/// version 4 gate is byte for byte what a version 4 server wrote.
#[test]
fn version_4_cache_files_open_and_version_4_gates_get_the_same_bytes() {
    let server = SigningKey::from_bytes(&[8; 32]);
    let key = PublicKeyBytes::from(&server.verifying_key());
    let v4_snapshot = CacheSnapshot {
        v: 4,
        undone: vec![],
        ..cache_snapshot()
    };
    let stored = std::fs::read(fixture_path("cache_snapshot_v4.bin")).unwrap();
    let opened: CacheSnapshot = SignedPayload::from_file_bytes(&stored)
        .unwrap()
        .open(Some(&key))
        .unwrap();
    assert_eq!(opened, v4_snapshot);
    assert_eq!(
        SignedPayload::sign_for(&cache_snapshot(), &server, 4).to_file_bytes(),
        stored
    );

    let mut v4_delta = CacheDelta {
        v: 4,
        ..cache_delta()
    };
    v4_delta
        .changes
        .retain(|c| !matches!(c, CacheChange::Undone(_)));
    let stored = std::fs::read(fixture_path("cache_delta_v4.bin")).unwrap();
    let opened: CacheDelta = SignedPayload::from_file_bytes(&stored)
        .unwrap()
        .open(Some(&key))
        .unwrap();
    assert_eq!(opened, v4_delta);
    assert_eq!(
        SignedPayload::sign_for(&cache_delta(), &server, 4).to_file_bytes(),
        stored
    );
}

#[test]
fn version_3_cache_files_still_open_with_the_undo_window_off() {
    let server = PublicKeyBytes::from(&SigningKey::from_bytes(&[8; 32]).verifying_key());
    let v3_event = CachedEvent {
        undo_window_secs: 0,
        ..event()
    };
    let stored = std::fs::read(fixture_path("cache_snapshot_v3.bin")).unwrap();
    let snapshot: CacheSnapshot = SignedPayload::from_file_bytes(&stored)
        .unwrap()
        .open(Some(&server))
        .unwrap();
    assert_eq!(snapshot.v, 3);
    assert_eq!(snapshot.events, std::slice::from_ref(&v3_event));
    assert_eq!(snapshot.tickets.len(), 5);
    let stored = std::fs::read(fixture_path("cache_delta_v3.bin")).unwrap();
    let delta: CacheDelta = SignedPayload::from_file_bytes(&stored)
        .unwrap()
        .open(Some(&server))
        .unwrap();
    assert_eq!(delta.changes.len(), 4);
    assert_eq!(delta.changes[2], CacheChange::Event(v3_event));
}

#[test]
fn an_undo_record_names_the_admission_it_voids() {
    let undo = ScanRecord {
        scan_id: Uuid::from_u128(9),
        outcome: "admission_undone".into(),
        opened: false,
        voids: Some(scan().scan_id),
        ..scan()
    };
    let text = serde_json::to_string(&undo).unwrap();
    assert!(text.contains(r#""voids":"01900000-0000-7000-8000-000000000001""#));
    assert_eq!(serde_json::from_str::<ScanRecord>(&text).unwrap(), undo);
    // An admission's record carries no `voids`, as before.
    assert!(!serde_json::to_string(&scan()).unwrap().contains("voids"));
}

#[test]
fn old_agent_messages_without_later_fields_still_decode() {
    // What a version-1 agent that predates optional fields would send.
    let minimal = r#"{"v":1,"token":"t","device_key":"11111111111111111111111111111111","agent_version":"0.0.1","some_future_field":true}"#;
    let request: EnrolRequest = serde_json::from_str(minimal).unwrap();
    assert_eq!(request.hostname, None);
    let ack = r#"{"v":1,"acked":[],"stored":0,"duplicates":0,"server_time":5}"#;
    let ack: JournalAck = serde_json::from_str(ack).unwrap();
    assert!(ack.conflicts.is_empty());
    assert!(ack.refused.is_empty());
}
