//! The system as a venue runs it: the real sync server (HTTP, SQLite or
//! PostgreSQL, the embedded chain with the real program, the replay worker)
//! and real gate agents fed codes read from real QR images, with the network
//! between them cut and restored.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use end_to_end::*;
use reqwest::Method;
use serde_json::json;
use solana_sdk::signature::{Keypair, Signer};

#[derive(Clone, Copy, Debug)]
enum Db {
    Sqlite,
    Postgres,
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $name() { super::$name(super::Db::Sqlite) })*
        }
        mod postgres {
            $(#[test]
            fn $name() { super::$name(super::Db::Postgres) })*
        }
    };
}

on_both_backends!(
    a_ticket_admitted_at_one_gate_is_refused_at_the_other_once_they_synced,
    two_offline_gates_admitting_one_ticket_give_one_conflict_and_both_scans,
    a_transfer_or_a_revocation_reaches_an_online_gate_within_10_s,
);

const SYNC: Duration = Duration::from_secs(10);

struct Venue {
    server: Server,
    event: u64,
    wallets: Vec<Keypair>,
    codes: Vec<String>,
    _dir: tempfile::TempDir,
}

fn venue(db: Db, tickets: usize) -> Venue {
    let dir = tempfile::tempdir().unwrap();
    let database_url = match db {
        Db::Sqlite => None,
        Db::Postgres => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            Some(postgres_database(&rt).unwrap())
        }
    };
    let server = Server::start(&dir.path().join("server"), database_url).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let event = 7_000 + (uuid::Uuid::now_v7().as_u128() % 1_000_000) as u64;
    server
        .admin_ok(
            Method::POST,
            "/api/admin/events",
            Some(json!({
                "event_id": event, "name": "System test", "venue": "Hall",
                "starts_at": now + 600, "ends_at": now + 7200,
                "doors_open_at": now - 600, "doors_close_at": now + 7200,
                "capacity": 100,
                "tiers": [{ "name": "general", "price_lamports": 0, "supply": 100 }],
                "reentry": "forbidden", "transferable": true
            })),
            201,
        )
        .unwrap();
    for (number, name) in [(1, "north"), (2, "south")] {
        server
            .admin_ok(
                Method::PUT,
                &format!("/api/admin/events/{event}/gates"),
                Some(json!({ "number": number, "name": name, "direction": "entry" })),
                204,
            )
            .unwrap();
    }
    let wallets: Vec<Keypair> = (0..tickets).map(|_| Keypair::new()).collect();
    let minted = server
        .admin_ok(
            Method::POST,
            &format!("/api/admin/events/{event}/tickets"),
            Some(json!({
                "recipients": wallets.iter().map(|w| json!({ "wallet": w.pubkey().to_string() })).collect::<Vec<_>>()
            })),
            201,
        )
        .unwrap();
    // Codes go through real QR images, as a holder's phone shows them.
    let codes = minted["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, t)| through_qr(dir.path(), i, t["code"].as_str().unwrap()))
        .collect();
    Venue {
        server,
        event,
        wallets,
        codes,
        _dir: dir,
    }
}

fn through_qr(dir: &Path, i: usize, code: &str) -> String {
    let path = dir.join(format!("ticket-{i}.png"));
    write_qr_png(code, &path).unwrap();
    let read = read_qr_png(&path).unwrap();
    assert_eq!(read.to_uppercase(), code.to_uppercase());
    read
}

impl Venue {
    /// An enrolled, running gate reaching the server at `url` (the server
    /// itself, or a switch in front of it).
    fn gate(&self, name: &str, url: &str) -> GateBox {
        let dir = self._dir.path().join(format!("gate-{name}"));
        let token = self.server.enrol_token(self.event, name).unwrap();
        GateBox::enrol(&dir, url, &token).unwrap();
        let gate = GateBox::start(&dir, name).unwrap();
        gate.wait_status("the cache", SYNC, |s| {
            s["online"] == true && s["setup_error"].is_null()
        })
        .unwrap();
        gate
    }
}

fn a_ticket_admitted_at_one_gate_is_refused_at_the_other_once_they_synced(db: Db) {
    let v = venue(db, 2);
    let north = v.gate("north", &v.server.url);
    let south = v.gate("south", &v.server.url);
    let first = north.scan(&v.codes[0]).unwrap();
    assert!(first.record.opened, "{first:?}");
    south
        .wait_ticket(v.event, 0, "north's admission at south", SYNC, is_inside)
        .unwrap();
    let second = south.scan(&v.codes[0]).unwrap();
    assert!(!second.record.opened, "{second:?}");
    assert_eq!(second.record.outcome, "already_inside");
    assert!(second.detail.contains("gate 1"), "{}", second.detail);
    // The other ticket is untouched.
    assert!(south.scan(&v.codes[1]).unwrap().record.opened);

    // On chain: each admission once; the refusal is not an entry.
    for gate in [&north, &south] {
        gate.wait_status("the journal uploaded", SYNC, |s| s["counts"]["unsent"] == 0)
            .unwrap();
    }
    let summary = v.server.drain_replay(v.event).unwrap();
    assert_eq!(summary.confirmed, 2, "{summary:?}");
    let tickets = v.server.chain_tickets(v.event, &[0, 1]).unwrap();
    assert_eq!(tickets[0].as_ref().unwrap().entry_count, 1);
    assert_eq!(tickets[0].as_ref().unwrap().last_gate, 1);
    assert_eq!(tickets[1].as_ref().unwrap().last_gate, 2);
    north.stop();
    south.stop();
    v.server.stop().unwrap();
}

fn two_offline_gates_admitting_one_ticket_give_one_conflict_and_both_scans(db: Db) {
    let v = venue(db, 1);
    let north_switch = NetSwitch::start(&v.server.rt, v.server.addr).unwrap();
    let south_switch = NetSwitch::start(&v.server.rt, v.server.addr).unwrap();
    let north = v.gate("north", &north_switch.url);
    let south = v.gate("south", &south_switch.url);
    north_switch.cut();
    south_switch.cut();
    for gate in [&north, &south] {
        gate.wait_status("offline", Duration::from_secs(20), |s| s["online"] == false)
            .unwrap();
    }
    assert!(north.scan(&v.codes[0]).unwrap().record.opened);
    // Chain records are per second: keep the two admissions apart.
    std::thread::sleep(Duration::from_millis(1100));
    assert!(south.scan(&v.codes[0]).unwrap().record.opened);
    north_switch.restore();
    south_switch.restore();
    for gate in [&north, &south] {
        gate.wait_status("the journal uploaded", Duration::from_secs(30), |s| {
            s["online"] == true && s["counts"]["unsent"] == 0
        })
        .unwrap();
    }
    let conflicts = v
        .server
        .admin_ok(
            Method::GET,
            &format!("/api/admin/events/{}/conflicts", v.event),
            None,
            200,
        )
        .unwrap();
    let conflicts = conflicts.as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0]["gate"], 2);
    assert_eq!(conflicts[0]["earlier_gate"], 1);
    let gates = v
        .server
        .admin_ok(
            Method::GET,
            &format!("/api/admin/events/{}/gates", v.event),
            None,
            200,
        )
        .unwrap();
    let admitted: u64 = gates
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["admitted"].as_u64().unwrap())
        .sum();
    assert_eq!(admitted, 2, "both scans kept: {gates}");
    // On chain the ticket is the fold of both admissions, whatever order the
    // journals arrived in: entered twice (one a conflict), last at south.
    let summary = v.server.drain_replay(v.event).unwrap();
    assert_eq!(summary.confirmed, 2, "{summary:?}");
    assert_eq!(summary.failed, 0, "{summary:?}");
    let ticket = v
        .server
        .chain_tickets(v.event, &[0])
        .unwrap()
        .pop()
        .flatten()
        .unwrap();
    assert_eq!((ticket.entry_count, ticket.scans_applied), (2, 2));
    assert_eq!(
        ticket.last_gate, 2,
        "the later admission is the chain's last"
    );
    north.stop();
    south.stop();
    v.server.stop().unwrap();
}

fn a_transfer_or_a_revocation_reaches_an_online_gate_within_10_s(db: Db) {
    let v = venue(db, 2);
    let north = v.gate("north", &v.server.url);

    // Ticket 0 changes hands on chain: the holder signs, no server involved.
    let old_owner = &v.wallets[0];
    let new_owner = Keypair::new();
    let ctx = v.server.state.chain.as_ref().unwrap();
    let event_address = ticketing::client::event_address(&ctx.authority.pubkey(), v.event).0;
    v.server
        .rt
        .block_on(async {
            sync_server::chain::ops::ensure_funded(
                ctx.chain.as_ref(),
                None,
                &old_owner.pubkey(),
                100_000_000,
                100_000_000,
            )
            .await?;
            sync_server::chain::ops::send(
                ctx.chain.as_ref(),
                old_owner,
                &[ticketing::client::transfer_ticket(
                    &old_owner.pubkey(),
                    &new_owner.pubkey(),
                    &event_address,
                    0,
                    ticketing::client::TokenStandard::SplToken,
                )],
                &[],
            )
            .await
        })
        .unwrap();
    // The server picks the change up from chain and tells the gates.
    let refreshed = v
        .server
        .admin_ok(
            Method::POST,
            &format!("/api/admin/events/{}/tickets/refresh", v.event),
            Some(json!({ "ticket_ids": [0] })),
            200,
        )
        .unwrap();
    assert_eq!(refreshed[0]["generation"], 1);
    north
        .wait_ticket(v.event, 0, "the transfer at the gate", SYNC, |t| {
            t.generation == 1
        })
        .unwrap();
    let old = north.scan(&v.codes[0]).unwrap();
    assert!(!old.record.opened, "the previous owner's code: {old:?}");
    assert_eq!(old.record.outcome, "stale_generation");
    // The new owner's code opens the gate.
    let ticket = v
        .server
        .rt
        .block_on(v.server.state.store.ticket(v.event, 0))
        .unwrap()
        .unwrap();
    let code = sync_server::services::organizer::credential_for(&v.server.state, &ticket)
        .unwrap()
        .encode();
    assert!(north.scan(&code).unwrap().record.opened);

    // Ticket 1 is revoked by the organizer.
    v.server
        .admin_ok(
            Method::POST,
            &format!("/api/admin/events/{}/tickets/1/revoke", v.event),
            None,
            200,
        )
        .unwrap();
    north
        .wait_ticket(v.event, 1, "the revocation at the gate", SYNC, is_revoked)
        .unwrap();
    let refused = north.scan(&v.codes[1]).unwrap();
    assert!(!refused.record.opened);
    assert_eq!(refused.record.outcome, "revoked");
    north.stop();
    v.server.stop().unwrap();
}
