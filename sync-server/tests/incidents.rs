//! Incidents: admissions by offline gates and handhelds that the server,
//! with its fresher data, would have refused. Kept, counted and listed for
//! the event's organizer next to the conflicts. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use shared::TicketStatus;
use shared::wire::ScanRecord;

on_both_backends!(
    offline_admissions_the_server_would_refuse_are_listed_with_their_reasons,
    a_handhelds_offline_admission_of_a_revoked_ticket_is_an_incident_its_organizer_sees,
);

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

async fn offline_admissions_the_server_would_refuse_are_listed_with_their_reasons(db: Db) {
    let server = start(db).await;
    server.seed(8).await;
    let ends = event().ends_at;
    // What the gates have not heard yet: a revocation, a freeze, a transfer,
    // a tier kept to the south gate, and unknown tickets refused.
    let mut revoked = ticket(2);
    revoked.status = TicketStatus::Revoked;
    let mut frozen = ticket(3);
    frozen.status = TicketStatus::Frozen;
    let mut transferred = ticket(4);
    transferred.generation = 1;
    let mut vip = ticket(5);
    vip.tier = 1;
    server
        .state
        .publish_tickets(&[revoked, frozen, transferred, vip])
        .await
        .unwrap();
    let (status, rules, _) = server
        .call(
            Method::PUT,
            &format!("/api/events/{EVENT}/rules"),
            Some(ADMIN),
            Some(json!({
                "unknown_tickets": "reject",
                "tier_gates": [{ "tier": 1, "gates": [2] }]
            })),
        )
        .await;
    assert_eq!(status, 200, "{rules}");

    let north = server.enrol("north", 11).await;
    let south = server.enrol("south", 12).await;
    let at = |secs: i64| secs * 1000;
    let mut scans: Vec<ScanRecord> = vec![
        north.scan(1, at(T0 + 1)),
        north.scan(2, at(T0 + 2)),
        north.scan(3, at(T0 + 3)),
        north.scan(4, at(T0 + 4)),
        north.scan(5, at(T0 + 5)),
        north.scan(6, at(ends + 10)),
        north.scan(7, at(T0 - 4000)),
        north.scan(99, at(T0 + 6)),
        north.scan(8, at(T0 + 7)),
    ];
    scans[4].tier = Some(1);
    let r = north.upload(scans.clone()).await;
    assert_eq!(r.status(), 200);
    let r = south.upload(vec![south.scan(8, at(T0 + 8))]).await;
    assert_eq!(r.status(), 200);

    let report = server
        .admin_get(&format!("/api/events/{EVENT}/incidents"))
        .await;
    let incidents: Vec<(u64, String)> = report["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["ticket_id"].as_u64().unwrap(),
                i["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(u64, String)> = [
        (7, "doors_not_open"),
        (2, "revoked"),
        (3, "frozen"),
        (4, "stale_generation"),
        (5, "tier_not_allowed"),
        (99, "unknown_ticket"),
        (6, "event_ended"),
    ]
    .into_iter()
    .map(|(t, r)| (t, r.to_owned()))
    .collect();
    assert_eq!(incidents, expected, "oldest scan first: {report}");
    let first = &report["incidents"][1];
    assert_eq!(first["scan_id"], json!(scans[1].scan_id));
    assert_eq!(first["gate"], 1);
    assert_eq!(first["scanned_at_ms"], at(T0 + 2));
    // Next to the double admission of ticket 8.
    let conflicts = report["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{report}");
    assert_eq!(conflicts[0]["ticket_id"], 8);
    assert_eq!(conflicts[0]["gate"], 2);
    // The admin route of conflicts still answers the same.
    let admin = server
        .admin_get(&format!("/api/admin/events/{EVENT}/conflicts"))
        .await;
    assert_eq!(&admin, &report["conflicts"]);
    // Kept, never dropped: every admission is stored as the gate made it.
    assert_eq!(server.state.store.scan_count(EVENT).await.unwrap(), 10);

    // Counted once, and a retried upload finds nothing new.
    let count = "sync_incidents_total{reason=\"revoked\"} 1";
    assert!(metrics(&server).await.contains(count));
    let r = north.upload(scans).await;
    let ack: Value = r.json().await.unwrap();
    assert_eq!(ack["duplicates"], 9, "{ack}");
    assert!(metrics(&server).await.contains(count));
    let again = server
        .admin_get(&format!("/api/events/{EVENT}/incidents"))
        .await;
    assert_eq!(again, report);
}

async fn a_handhelds_offline_admission_of_a_revoked_ticket_is_an_incident_its_organizer_sees(
    db: Db,
) {
    let server = start_on_chain(db, ChainMode::Embedded).await;
    let (alice, bob, steward, holder) = (wallet(130), wallet(131), wallet(132), wallet(133));
    let org = server.login_as(&alice, Some("organizer")).await;
    let rival = server.login_as(&bob, Some("organizer")).await;
    let val = server.login_as(&steward, Some("validator")).await;
    let (status, view, _) = server
        .call(
            Method::POST,
            "/api/events",
            Some(&org),
            Some(json!({
                "name": "Night Market", "venue": "Quay", "starts_at": T0, "ends_at": T0 + 7200,
                "capacity": 5, "tiers": [{ "name": "general", "price_lamports": 0, "supply": 5 }]
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
    let (status, _, _) = server
        .call(
            Method::PUT,
            &format!("/api/events/{event_id}/validators/{}", address(&steward)),
            Some(&org),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, minted, _) = server
        .call(
            Method::POST,
            "/api/tickets/mint",
            Some(&org),
            Some(json!({ "event_id": event_id, "wallet": address(&holder) })),
        )
        .await;
    assert_eq!(status, 201, "{minted}");
    let code = minted["code"].as_str().unwrap().to_owned();
    // Revoked while the handheld was offline.
    let (status, _, _) = server
        .call(
            Method::POST,
            &format!("/api/admin/events/{event_id}/tickets/0/revoke"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, 200);

    let scan_id = uuid::Uuid::now_v7();
    let (status, ack, _) = server
        .call(
            Method::POST,
            "/api/validate/offline",
            Some(&val),
            Some(json!({ "event_id": event_id, "gate": 1, "scan": {
                "scan_id": scan_id, "gate": 1, "direction": "entry",
                "scanned_at_ms": (T0 + 30) * 1000, "source": "handheld:2",
                "ticket_id": 0, "generation": 0, "outcome": "admitted", "opened": true,
                "code": code
            }})),
        )
        .await;
    assert_eq!((status, ack["stored"].as_u64()), (200, Some(1)), "{ack}");

    let path = format!("/api/events/{event_id}/incidents");
    let (status, report, _) = server.call(Method::GET, &path, Some(&org), None).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["incidents"][0]["reason"], "revoked");
    assert_eq!(report["incidents"][0]["scan_id"], json!(scan_id));
    assert_eq!(report["incidents"][0]["ticket_id"], 0);
    // Its organizer's business, and the admin's: not another organizer's,
    // nor the event's validators'.
    for (token, status) in [(rival.as_str(), 403), (val.as_str(), 403), (ADMIN, 200)] {
        let (got, _, _) = server.call(Method::GET, &path, Some(token), None).await;
        assert_eq!(got, status);
    }
}
