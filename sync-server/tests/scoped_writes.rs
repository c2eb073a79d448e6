//! Scans are written only where the writer may write: a wallet validates the
//! events whose organizer assigned it (or that it organizes), an offline
//! upload carries the code it scanned and the server verifies it, and a gate
//! box files scans of its own event only. On the embedded chain, on SQLite
//! and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ed25519_dalek::SigningKey;
use reqwest::Method;
use serde_json::{Value, json};
use shared::{Credential, PublicKeyBytes};
use uuid::Uuid;

on_both_backends!(
    a_validator_of_one_event_cannot_write_scans_into_another,
    offline_uploads_without_a_good_code_are_refused_and_store_nothing,
    a_forged_admission_no_longer_locks_the_holder_out,
    a_device_journal_record_for_another_event_is_refused_and_counted,
);

/// An event made by `org` through the ticketing API, with gate 1 (entry).
async fn event(server: &TestServer, org: &str, name: &str) -> u64 {
    let (status, view, _) = server
        .call(
            Method::POST,
            "/api/events",
            Some(org),
            Some(json!({
                "name": name, "venue": "Pier 4", "starts_at": T0, "ends_at": T0 + 7200,
                "capacity": 20, "tiers": [{ "name": "general", "price_lamports": 0, "supply": 20 }]
            })),
        )
        .await;
    assert_eq!(status, 201, "{view}");
    let event_id = view["event_id"].as_u64().unwrap();
    let (status, _, _) = server
        .call(
            Method::PUT,
            &format!("/api/admin/events/{event_id}/gates"),
            Some(ADMIN),
            Some(json!({ "number": 1, "name": "door", "direction": "entry" })),
        )
        .await;
    assert_eq!(status, 204);
    event_id
}

async fn mint(server: &TestServer, org: &str, event_id: u64, holder: &SigningKey) -> String {
    let (status, minted, _) = server
        .call(
            Method::POST,
            "/api/tickets/mint",
            Some(org),
            Some(json!({ "event_id": event_id, "wallet": address(holder) })),
        )
        .await;
    assert_eq!(status, 201, "{minted}");
    minted["code"].as_str().unwrap().to_owned()
}

/// An admission a handheld decided offline for ticket 0 at gate 1.
fn offline_scan(event_id: u64, code: Option<&str>) -> Value {
    let mut scan = json!({
        "scan_id": Uuid::now_v7(), "gate": 1, "direction": "entry",
        "scanned_at_ms": (T0 + 60) * 1000, "source": "handheld:7",
        "event_id": event_id, "ticket_id": 0, "generation": 0, "tier": 0,
        "outcome": "admitted", "opened": true
    });
    if let Some(code) = code {
        scan["code"] = json!(code);
    }
    scan
}

async fn assign(server: &TestServer, token: &str, event_id: u64, who: &SigningKey) -> u16 {
    let (status, _, _) = server
        .call(
            Method::PUT,
            &format!("/api/events/{event_id}/validators/{}", address(who)),
            Some(token),
            None,
        )
        .await;
    status
}

async fn metrics(server: &TestServer) -> String {
    server
        .http
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn a_validator_of_one_event_cannot_write_scans_into_another(db: Db) {
    let server = start_on_chain(db, ChainMode::Embedded).await;
    let (alice, bob, steward, holder) = (wallet(100), wallet(101), wallet(102), wallet(103));
    let org_a = server.login_as(&alice, Some("organizer")).await;
    let org_b = server.login_as(&bob, Some("organizer")).await;
    // The global validator role alone no longer opens any event.
    let val = server.login_as(&steward, Some("validator")).await;
    let a = event(&server, &org_a, "Event A").await;
    let b = event(&server, &org_b, "Event B").await;
    let code_b = mint(&server, &org_b, b, &holder).await;

    // Assigned to A only, by A's organizer; B's organizer cannot assign
    // anyone to A, nor can anyone list A's validators but A's organizer.
    assert_eq!(assign(&server, &org_b, a, &steward).await, 403);
    assert_eq!(assign(&server, &org_a, a, &steward).await, 200);
    let (status, listed, _) = server
        .call(
            Method::GET,
            &format!("/api/events/{a}/validators"),
            Some(&org_a),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed[0]["wallet"], address(&steward));
    let (status, _, _) = server
        .call(
            Method::GET,
            &format!("/api/events/{a}/validators"),
            Some(&org_b),
            None,
        )
        .await;
    assert_eq!(status, 403);

    // Into B: online, one offline scan, a sync batch; as A's validator and as
    // A's organizer. All refused, nothing stored.
    let online = json!({ "event_id": b, "gate": 1, "code": code_b });
    let one = json!({ "event_id": b, "gate": 1, "scan": offline_scan(b, Some(&code_b)) });
    let many = json!({ "event_id": b, "gate": 1, "scans": [offline_scan(b, Some(&code_b))] });
    for token in [val.as_str(), org_a.as_str()] {
        for (path, body) in [
            ("/api/validate", &online),
            ("/api/validate/offline", &one),
            ("/api/validate/sync", &many),
        ] {
            let (status, error, _) = server
                .call(Method::POST, path, Some(token), Some(body.clone()))
                .await;
            assert_eq!(
                (status, error["error"].as_str()),
                (403, Some("forbidden")),
                "{path}"
            );
        }
    }
    assert_eq!(server.state.store.scan_count(b).await.unwrap(), 0);

    // B's organizer assigns the steward: now it may, and its scan lands in B.
    assert_eq!(assign(&server, &org_b, b, &steward).await, 200);
    let (status, decided, _) = server
        .call(
            Method::POST,
            "/api/validate",
            Some(&val),
            Some(online.clone()),
        )
        .await;
    assert_eq!(
        (status, decided["outcome"].as_str()),
        (200, Some("admitted")),
        "{decided}"
    );
    assert_eq!(server.state.store.scan_count(b).await.unwrap(), 1);
    assert_eq!(server.state.store.scan_count(a).await.unwrap(), 0);

    // Taken back: refused again. A holder-role wallet assigned by the
    // organizer may validate (the assignment is what counts).
    let (status, _, _) = server
        .call(
            Method::DELETE,
            &format!("/api/events/{b}/validators/{}", address(&steward)),
            Some(&org_b),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _, _) = server
        .call(
            Method::POST,
            "/api/validate",
            Some(&val),
            Some(online.clone()),
        )
        .await;
    assert_eq!(status, 403);
    let gatekeeper = wallet(104);
    let plain = server.login_as(&gatekeeper, None).await;
    assert_eq!(assign(&server, ADMIN, b, &gatekeeper).await, 200);
    let (status, _, _) = server
        .call(Method::POST, "/api/validate", Some(&plain), Some(online))
        .await;
    assert_eq!(status, 200);
}

async fn offline_uploads_without_a_good_code_are_refused_and_store_nothing(db: Db) {
    let server = start_on_chain(db, ChainMode::Embedded).await;
    let (alice, steward, holder, other) = (wallet(110), wallet(111), wallet(112), wallet(113));
    let org = server.login_as(&alice, Some("organizer")).await;
    let val = server.login_as(&steward, Some("validator")).await;
    let a = event(&server, &org, "Event A").await;
    let b = event(&server, &org, "Event B").await;
    assert_eq!(assign(&server, &org, a, &steward).await, 200);
    let code0 = mint(&server, &org, a, &holder).await;
    let code1 = mint(&server, &org, a, &other).await;
    let code_b = mint(&server, &org, b, &holder).await;
    let body = Credential::decode(&code0).unwrap().body;
    let forged = Credential::issue(body, &SigningKey::from_bytes(&[66; 32])).encode();

    let mut cases: Vec<(Value, &str)> = vec![
        (offline_scan(a, None), "code_missing"),
        (offline_scan(a, Some("")), "code_missing"),
        (offline_scan(a, Some("NOT-A-TICKET")), "code_invalid"),
        (offline_scan(a, Some(&forged)), "code_invalid"),
        // The code of ticket 1 posted as ticket 0.
        (offline_scan(a, Some(&code1)), "code_mismatch"),
        // B's ticket uploaded as A's.
        (offline_scan(a, Some(&code_b)), "wrong_event"),
    ];
    let mut stale = offline_scan(a, Some(&code0));
    stale["generation"] = json!(3);
    cases.push((stale, "code_mismatch"));
    let mut named_b = offline_scan(a, Some(&code0));
    named_b["event_id"] = json!(b);
    cases.push((named_b, "wrong_event"));
    let mut liar = offline_scan(a, Some(&code0));
    liar["opened"] = json!(false);
    cases.push((liar, "outcome_invalid"));
    let mut made_up = offline_scan(a, Some(&code0));
    made_up["outcome"] = json!("vip_waved_through");
    cases.push((made_up, "outcome_invalid"));
    let mut long = offline_scan(a, Some(&code0));
    long["source"] = json!("x".repeat(129));
    cases.push((long, "source_invalid"));

    let scans: Vec<Value> = cases.iter().map(|(scan, _)| scan.clone()).collect();
    let (status, ack, _) = server
        .call(
            Method::POST,
            "/api/validate/sync",
            Some(&val),
            Some(json!({ "event_id": a, "gate": 1, "scans": scans })),
        )
        .await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(ack["stored"], 0, "{ack}");
    let refused = ack["refused"].as_array().unwrap();
    assert_eq!(refused.len(), cases.len());
    for ((scan, reason), refusal) in cases.iter().zip(refused) {
        assert_eq!(refusal["scan_id"], scan["scan_id"]);
        assert_eq!(refusal["reason"], *reason, "{scan}");
    }
    // Refused for good: acknowledged, so a handheld stops sending them.
    assert_eq!(ack["acked"].as_array().unwrap().len(), cases.len());
    assert_eq!(server.state.store.scan_count(a).await.unwrap(), 0);
    assert_eq!(server.state.store.scan_count(b).await.unwrap(), 0);
    let text = metrics(&server).await;
    for line in [
        "sync_scans_refused_total{reason=\"code_missing\"} 2",
        "sync_scans_refused_total{reason=\"code_invalid\"} 2",
        "sync_scans_refused_total{reason=\"wrong_event\"} 2",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }

    // The holder's good code is taken, ids from the code itself.
    let mut good = offline_scan(a, Some(&code0));
    good["ticket_id"] = Value::Null;
    let (status, ack, _) = server
        .call(
            Method::POST,
            "/api/validate/offline",
            Some(&val),
            Some(json!({ "event_id": a, "gate": 1, "scan": good })),
        )
        .await;
    assert_eq!((status, ack["stored"].as_u64()), (200, Some(1)), "{ack}");
    assert!(ack["refused"].as_array().unwrap().is_empty());
    let state = server
        .state
        .store
        .ticket_state(a, 0)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        state.presence,
        shared::Presence::Inside { gate: 1, .. }
    ));
}

async fn a_forged_admission_no_longer_locks_the_holder_out(db: Db) {
    let server = start_on_chain(db, ChainMode::Embedded).await;
    let (victim_org, attacker_org, attacker, insider, holder) = (
        wallet(120),
        wallet(121),
        wallet(122),
        wallet(123),
        wallet(124),
    );
    let victim = server.login_as(&victim_org, Some("organizer")).await;
    let rogue = server.login_as(&attacker_org, Some("organizer")).await;
    let att = server.login_as(&attacker, Some("validator")).await;
    let ins = server.login_as(&insider, Some("validator")).await;
    let target = event(&server, &victim, "Victim").await;
    let own = event(&server, &rogue, "Attacker's").await;
    assert_eq!(assign(&server, &rogue, own, &attacker).await, 200);
    assert_eq!(assign(&server, &victim, target, &insider).await, 200);
    let code = mint(&server, &victim, target, &holder).await;

    // The attack as it was: an "admitted" for the victim's ticket, no code,
    // from a wallet with the validator role.
    let forged = json!({ "event_id": target, "gate": 1, "scan": offline_scan(target, None) });
    let (status, _, _) = server
        .call(
            Method::POST,
            "/api/validate/offline",
            Some(&att),
            Some(forged.clone()),
        )
        .await;
    assert_eq!(status, 403);
    // Even a validator of the event cannot post one without the code.
    let (status, ack, _) = server
        .call(
            Method::POST,
            "/api/validate/offline",
            Some(&ins),
            Some(forged),
        )
        .await;
    assert_eq!(
        (status, ack["refused"][0]["reason"].as_str()),
        (200, Some("code_missing"))
    );
    assert_eq!(server.state.store.scan_count(target).await.unwrap(), 0);

    // The holder walks in.
    let (status, at_door, _) = server
        .call(
            Method::POST,
            "/api/validate",
            Some(&ins),
            Some(json!({ "event_id": target, "gate": 1, "code": code })),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(at_door["outcome"], "admitted", "{at_door}");
}

async fn a_device_journal_record_for_another_event_is_refused_and_counted(db: Db) {
    let server = start(db).await;
    server.seed(3).await;
    let other = EVENT + 1;
    let mut foreign_event = event_cache();
    foreign_event.event_id = other;
    server
        .state
        .publish_event(&foreign_event, &PublicKeyBytes([7; 32]))
        .await
        .unwrap();
    let gate = server.enrol("north", 9).await;

    let own = gate.scan(1, (T0 + 10) * 1000);
    let mut foreign = gate.scan(2, (T0 + 11) * 1000);
    foreign.event_id = Some(other);
    let r = gate.upload(vec![own.clone(), foreign.clone()]).await;
    assert_eq!(r.status(), 200);
    let ack: shared::wire::JournalAck = r.json().await.unwrap();
    assert_eq!(ack.stored, 1);
    assert_eq!(ack.refused.len(), 1);
    assert_eq!(ack.refused[0].scan_id, foreign.scan_id);
    assert_eq!(ack.refused[0].reason, "wrong_event");
    assert!(
        ack.acked.contains(&foreign.scan_id),
        "the gate may forget it"
    );
    // Filed nowhere: not under the device's event, not under the other.
    assert_eq!(server.state.store.scan_count(EVENT).await.unwrap(), 1);
    assert_eq!(server.state.store.scan_count(other).await.unwrap(), 0);
    let state = server
        .state
        .store
        .ticket_state(EVENT, 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.presence, shared::Presence::NeverEntered);
    let text = metrics(&server).await;
    assert!(
        text.contains("sync_scans_refused_total{reason=\"wrong_event\"} 1"),
        "{text}"
    );
}

/// The test event's cached form, for a second event beside it.
fn event_cache() -> shared::wire::CachedEvent {
    common::event()
}
