//! The gate protocol against a real server on a real port, on SQLite and on
//! PostgreSQL: enrolment, device authentication, cache sync, scan ingest and
//! conflicts.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use shared::wire::*;
use shared::{PublicKeyBytes, TicketStatus};
use sync_server::Clock as _;

on_both_backends!(
    one_time_token_enrols_exactly_one_device,
    requests_from_unknown_revoked_or_forged_devices_are_refused_and_store_nothing,
    snapshot_is_signed_and_deltas_follow_the_cursor,
    long_poll_wakes_on_a_change,
    same_upload_twice_stores_each_scan_once,
    two_offline_gates_admitting_one_ticket_make_one_conflict,
    exit_between_admissions_is_no_conflict,
    oversized_batches_are_refused,
    a_box_clock_off_is_shown_with_its_gate,
);

/// The skew of a box is its signed timestamp minus the server's time, from
/// its last request, shown with its gate; a box outside the window is
/// refused and changes nothing.
async fn a_box_clock_off_is_shown_with_its_gate(db: Db) {
    let server = start(db).await;
    server.seed(1).await;
    let gate = server.enrol("north", 101).await;
    let skew = |counts: &serde_json::Value| counts[0]["clock_skew_secs"].clone();
    let counts = server
        .admin_get(&format!("/api/admin/events/{EVENT}/gates"))
        .await;
    assert_eq!(skew(&counts), serde_json::Value::Null, "not heard from yet");
    let path = "/gate/v1/snapshot";
    for (off, status, shown) in [(30, 200, 30), (-7, 200, -7), (3600, 401, -7)] {
        let signed = gate.sign_at("GET", path, b"", gate.clock.now() + off);
        let response = gate.send_signed("GET", path, Vec::new(), &signed).await;
        assert_eq!(response.status(), status, "{off} s off");
        let counts = server
            .admin_get(&format!("/api/admin/events/{EVENT}/gates"))
            .await;
        assert_eq!(skew(&counts), serde_json::json!(shown), "{off} s off");
    }
}

async fn one_time_token_enrols_exactly_one_device(db: Db) {
    let server = start(db).await;
    server.seed(3).await;
    let token = server.enrol_token("north").await;
    let first = wallet(100);
    let url = format!("{}/gate/v1/enrol", server.url);
    let r = server
        .http
        .post(&url)
        .json(&enrol_request(&token, &first))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let enrolled: EnrolResponse = r.json().await.unwrap();
    assert_eq!(enrolled.event_id, EVENT);
    assert_eq!(enrolled.gate.name, "north");
    assert_eq!(
        enrolled.server_key,
        PublicKeyBytes::from(&server.state.server_key.verifying_key())
    );

    // The token is spent, whoever tries next.
    let r = server
        .http
        .post(&url)
        .json(&enrol_request(&token, &wallet(101)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "token_used"
    );
    let r = server
        .http
        .post(&url)
        .json(&enrol_request("enr_made_up", &wallet(102)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // An expired token.
    let late = server.enrol_token("south").await;
    server
        .clock
        .0
        .fetch_add(8 * 24 * 3600, std::sync::atomic::Ordering::SeqCst);
    let r = server
        .http
        .post(&url)
        .json(&enrol_request(&late, &wallet(103)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "token_expired"
    );

    // Malformed bodies get a clear 4xx.
    let r = server
        .http
        .post(&url)
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
}

async fn requests_from_unknown_revoked_or_forged_devices_are_refused_and_store_nothing(db: Db) {
    let server = start(db).await;
    server.seed(3).await;
    let gate = server.enrol("north", 100).await;
    let body = gate.batch(vec![gate.scan(1, T0 * 1000)]);

    // Signed by another key.
    let mut impostor = server.enrol("south", 101).await;
    impostor.response.device_id = gate.response.device_id;
    let signed = impostor.sign("POST", "/gate/v1/journal", &body);
    assert_eq!(
        gate.send_signed("POST", "/gate/v1/journal", body.clone(), &signed)
            .await
            .status(),
        401
    );

    // Body changed after signing.
    let signed = gate.sign("POST", "/gate/v1/journal", &body);
    let other_body = gate.batch(vec![gate.scan(2, T0 * 1000)]);
    assert_eq!(
        gate.send_signed("POST", "/gate/v1/journal", other_body, &signed)
            .await
            .status(),
        401
    );

    // Unknown device.
    let mut unknown = server.enrol("south", 102).await;
    unknown.response.device_id = uuid::Uuid::now_v7();
    assert_eq!(
        unknown
            .upload(vec![unknown.scan(1, T0 * 1000)])
            .await
            .status(),
        401
    );

    // Timestamp outside the window.
    let mut stale = gate.sign("POST", "/gate/v1/journal", &body);
    stale.timestamp -= 600;
    assert_eq!(
        gate.send_signed("POST", "/gate/v1/journal", body.clone(), &stale)
            .await
            .status(),
        401
    );

    // Missing headers.
    let r = server
        .http
        .post(format!("{}/gate/v1/journal", server.url))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    assert_eq!(
        server.state.store.scan_count(EVENT).await.unwrap(),
        0,
        "nothing stored so far"
    );

    // A good request works once; replaying it byte for byte does not.
    let signed = gate.sign("POST", "/gate/v1/journal", &body);
    assert_eq!(
        gate.send_signed("POST", "/gate/v1/journal", body.clone(), &signed)
            .await
            .status(),
        200
    );
    assert_eq!(
        gate.send_signed("POST", "/gate/v1/journal", body.clone(), &signed)
            .await
            .status(),
        401
    );

    // Revoked devices are refused.
    let r = server
        .http
        .post(format!(
            "{}/api/admin/devices/{}/revoke",
            server.url, gate.response.device_id
        ))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        gate.upload(vec![gate.scan(2, T0 * 1000)]).await.status(),
        401
    );
    assert_eq!(server.state.store.scan_count(EVENT).await.unwrap(), 1);

    // The admin API wants its token.
    let r = server
        .http
        .get(format!("{}/api/admin/events/{EVENT}/gates", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = server
        .http
        .get(format!("{}/api/admin/events/{EVENT}/gates", server.url))
        .bearer_auth("wrong-token-wrong-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

async fn snapshot_is_signed_and_deltas_follow_the_cursor(db: Db) {
    let server = start(db).await;
    server.seed(5).await;
    let gate = server.enrol("north", 100).await;
    let snapshot = gate.snapshot().await;
    assert_eq!(snapshot.tickets.len(), 5);
    assert_eq!(snapshot.events, vec![event()]);

    let empty = gate.delta(snapshot.cursor, 0).await;
    assert!(empty.changes.is_empty());
    assert_eq!(empty.to_cursor, snapshot.cursor);

    // A transfer, a freeze and a new ticket.
    let mut transferred = ticket(2);
    transferred.generation = 1;
    transferred.owner = PublicKeyBytes::from(&wallet(200).verifying_key());
    let mut frozen = ticket(3);
    frozen.status = TicketStatus::Frozen;
    server
        .state
        .publish_tickets(&[transferred, frozen, ticket(6)])
        .await
        .unwrap();
    // A second change to the same ticket shows once, in its latest state.
    let mut refrozen = frozen;
    refrozen.status = TicketStatus::Revoked;
    server.state.publish_tickets(&[refrozen]).await.unwrap();

    let delta = gate.delta(snapshot.cursor, 0).await;
    assert_eq!(delta.from_cursor, snapshot.cursor);
    assert_eq!(
        delta.changes,
        vec![
            CacheChange::Ticket(transferred),
            CacheChange::Ticket(refrozen),
            CacheChange::Ticket(ticket(6))
        ]
    );
    assert!(!delta.has_more);
    assert!(gate.delta(delta.to_cursor, 0).await.changes.is_empty());

    // Paging: a small limit leaves has_more set.
    let r = gate
        .request(
            "GET",
            &format!("/gate/v1/delta?cursor={}&limit=1", snapshot.cursor),
            vec![],
        )
        .await;
    let page: CacheDelta = SignedPayload::from_file_bytes(&r.bytes().await.unwrap())
        .unwrap()
        .open(None)
        .unwrap();
    assert!(page.has_more);
    assert_eq!(page.changes.len(), 1);

    // Unknown query fields are refused.
    let r = gate
        .request("GET", "/gate/v1/delta?cursor=0&bogus=1", vec![])
        .await;
    assert_eq!(r.status(), 400);

    // A cursor this server never handed out: 410, start over from a snapshot.
    let r = gate
        .request("GET", "/gate/v1/delta?cursor=999999999&wait=0", vec![])
        .await;
    assert_eq!(r.status(), 410);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "cursor_unknown");
}

async fn long_poll_wakes_on_a_change(db: Db) {
    let server = start(db).await;
    server.seed(2).await;
    let gate = server.enrol("north", 100).await;
    let cursor = gate.snapshot().await.cursor;
    let state = server.state.clone();
    let change = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let mut t = ticket(1);
        t.status = TicketStatus::Revoked;
        state.publish_tickets(&[t]).await.unwrap();
        t
    });
    // Waits (up to the server's maximum) and answers with the change.
    let delta = gate.delta(cursor, 20).await;
    let revoked = change.await.unwrap();
    assert_eq!(delta.changes, vec![CacheChange::Ticket(revoked)]);
}

async fn same_upload_twice_stores_each_scan_once(db: Db) {
    let server = start(db).await;
    server.seed(10).await;
    let gate = server.enrol("north", 100).await;
    let scans: Vec<_> = (1..=10)
        .map(|t| gate.scan(t, T0 * 1000 + i64::from(t)))
        .collect();
    let first: JournalAck = gate.upload(scans.clone()).await.json().await.unwrap();
    assert_eq!(
        (first.stored, first.duplicates, first.acked.len()),
        (10, 0, 10)
    );
    let second: JournalAck = gate.upload(scans.clone()).await.json().await.unwrap();
    assert_eq!(
        (second.stored, second.duplicates, second.acked.len()),
        (0, 10, 10)
    );
    // A batch overlapping the last one.
    let mut mixed = scans[5..].to_vec();
    let mut rejected = gate.scan(3, T0 * 1000 + 50);
    rejected.opened = false;
    rejected.outcome = "already_inside".into();
    mixed.push(rejected);
    let third: JournalAck = gate.upload(mixed).await.json().await.unwrap();
    assert_eq!((third.stored, third.duplicates), (1, 5));
    assert_eq!(server.state.store.scan_count(EVENT).await.unwrap(), 11);
    assert!(third.conflicts.is_empty(), "a rejection is not a conflict");

    let counts = server
        .admin_get(&format!("/api/admin/events/{EVENT}/gates"))
        .await;
    let north = &counts[0];
    assert_eq!(north["name"], "north");
    assert_eq!(north["admitted"], 10);
    assert_eq!(north["rejected"], 1);
    assert_eq!(north["inside"], 10);
    assert_eq!(north["online"], true);
}

async fn two_offline_gates_admitting_one_ticket_make_one_conflict(db: Db) {
    let server = start(db).await;
    server.seed(3).await;
    let north = server.enrol("north", 100).await;
    let south = server.enrol("south", 101).await;
    // Both gates were offline; south's admission (later by its clock) is
    // uploaded first, north's earlier one arrives afterwards.
    let south_scan = south.scan(1, T0 * 1000 + 60_000);
    let north_scan = north.scan(1, T0 * 1000);
    let ack: JournalAck = south
        .upload(vec![south_scan.clone()])
        .await
        .json()
        .await
        .unwrap();
    assert!(ack.conflicts.is_empty(), "alone, it is no conflict yet");
    let ack: JournalAck = north
        .upload(vec![north_scan.clone()])
        .await
        .json()
        .await
        .unwrap();
    assert!(
        ack.conflicts.is_empty(),
        "north's scan is the first admission"
    );

    let conflicts = server
        .admin_get(&format!("/api/admin/events/{EVENT}/conflicts"))
        .await;
    let conflicts = conflicts.as_array().unwrap();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0]["scan_id"], south_scan.scan_id.to_string());
    assert_eq!(
        conflicts[0]["conflicts_with"],
        north_scan.scan_id.to_string()
    );
    assert_eq!(conflicts[0]["gate"], 2);
    assert_eq!(conflicts[0]["earlier_gate"], 1);
    assert_eq!(
        server.state.store.scan_count(EVENT).await.unwrap(),
        2,
        "both scans kept"
    );

    // Listed by gate too.
    let at_south = server
        .admin_get(&format!("/api/admin/events/{EVENT}/conflicts?gate=2"))
        .await;
    assert_eq!(at_south.as_array().unwrap().len(), 1);
    let counts = server
        .admin_get(&format!("/api/admin/events/{EVENT}/gates"))
        .await;
    assert_eq!(counts[1]["conflicts"], 1);
    assert_eq!(
        counts[0]["inside"], 0,
        "the holder's latest admission was at south"
    );
    assert_eq!(counts[1]["inside"], 1);
}

async fn exit_between_admissions_is_no_conflict(db: Db) {
    let server = start(db).await;
    server.seed(3).await;
    let north = server.enrol("north", 100).await;
    let exit = server.enrol("exit", 101).await;
    let south = server.enrol("south", 102).await;
    north.upload(vec![north.scan(1, T0 * 1000)]).await;
    south.upload(vec![south.scan(1, T0 * 1000 + 120_000)]).await;
    // The exit arrives last but happened between the two entries.
    let ack: JournalAck = exit
        .upload(vec![exit.scan(1, T0 * 1000 + 60_000)])
        .await
        .json()
        .await
        .unwrap();
    assert!(ack.conflicts.is_empty());
    let conflicts = server
        .admin_get(&format!("/api/admin/events/{EVENT}/conflicts"))
        .await;
    assert!(conflicts.as_array().unwrap().is_empty(), "{conflicts}");
}

async fn oversized_batches_are_refused(db: Db) {
    let server = start(db).await;
    server.seed(1).await;
    let gate = server.enrol("north", 100).await;
    let scans: Vec<_> = (0..501).map(|i| gate.scan(1, T0 * 1000 + i)).collect();
    let r = gate.upload(scans).await;
    assert_eq!(r.status(), 413);
    let body = vec![b' '; sync_server::http::MAX_BODY_BYTES + 1];
    let r = gate.request("POST", "/gate/v1/journal", body).await;
    assert_eq!(r.status(), 413);
    let r = gate
        .request("POST", "/gate/v1/journal", b"[1,2,3]".to_vec())
        .await;
    assert_eq!(r.status(), 422, "JSON, but not a journal batch");
    let r = gate
        .request("POST", "/gate/v1/journal", b"{\"v\":".to_vec())
        .await;
    assert_eq!(r.status(), 400, "not JSON at all");
    assert_eq!(server.state.store.scan_count(EVENT).await.unwrap(), 0);
}
