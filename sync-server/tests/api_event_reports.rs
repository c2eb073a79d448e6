//! An event's reports through the API, on the embedded chain with the real
//! program: the attendance CSV lists every ticket with its holder, status,
//! first admission (time and gate), admissions and exits as the gates
//! reported them; the sales and settlement answers describe an event with
//! no purchase yet; and another organizer, a holder and nobody are refused
//! every report. (Sales with card and SOL purchases, refunds and recorded
//! closings are checked in `api_event_cancel`.) On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

on_both_backends!(
    attendance_lists_every_ticket_with_its_first_entry_and_its_counts,
    reports_are_refused_to_another_organizer_a_holder_and_nobody,
);

async fn attendance_lists_every_ticket_with_its_first_entry_and_its_counts(db: Db) {
    let server = &start_on_chain(db, ChainMode::Embedded).await;
    server.seed_on_chain(3).await;
    let north = server.enrol("north", 21).await;
    let south = server.enrol("south", 22).await;
    let exit = server.enrol("exit", 23).await;
    let at = |s: i64| T0 * 1000 + s * 1000;
    // Ticket 0 in at north, out, in again at south; ticket 1 in at south;
    // ticket 2 never comes.
    for (gate, scans) in [
        (&north, vec![north.scan(0, at(1))]),
        (&exit, vec![exit.scan(0, at(60))]),
        (&south, vec![south.scan(0, at(120)), south.scan(1, at(5))]),
    ] {
        let response = gate.upload(scans).await;
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }
    let (status, frozen, _) = server
        .call(
            Method::POST,
            &format!("/api/events/{EVENT}/tickets/2/freeze"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, 200, "{frozen}");

    let response = server
        .http
        .get(format!("{}/api/events/{EVENT}/attendance.csv", server.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        headers["content-disposition"],
        format!("attachment; filename=\"event-{EVENT}-attendance.csv\"").as_str()
    );
    let csv = response.text().await.unwrap();
    let holder = |i: u8| address(&wallet(i));
    assert_eq!(
        csv,
        format!(
            "ticket_id,tier,tier_name,holder,status,entered_at,entry_gate,entries,exits\n\
             0,0,general,{},valid,2025-11-25T13:00:01.000Z,1,2,1\n\
             1,0,general,{},valid,2025-11-25T13:00:05.000Z,2,1,0\n\
             2,0,general,{},frozen,,,0,0\n",
            holder(1),
            holder(2),
            holder(3)
        )
    );

    // No purchase yet: three tickets, no revenue, no refund.
    let (status, sales, _) = server
        .call(
            Method::GET,
            &format!("/api/events/{EVENT}/sales"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, 200, "{sales}");
    assert_eq!(
        sales["tiers"],
        json!([{ "tier": 0, "name": "general", "tickets": 3, "sol_sold": 0,
                 "sol_lamports": 0, "card_sold": 0, "card_amounts": [] }])
    );
    assert_eq!(sales["sol_lamports"], 0);
    assert_eq!(
        (
            &sales["refunds"]["due"],
            &sales["refunds"]["refused"],
            &sales["refunds"]["done"]
        ),
        (&json!(0), &json!(0), &json!(0))
    );
    assert!(
        sales["purchases"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["card"] == 0 && s["sol"] == 0),
        "{sales}"
    );

    // The seeded event ended long ago on the chain's clock; its accounts
    // are open and nothing was withdrawn or closed.
    let (status, settlement, _) = server
        .call(
            Method::GET,
            &format!("/api/events/{EVENT}/settlement"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, 200, "{settlement}");
    assert_eq!(settlement["chain"]["ended"], true, "{settlement}");
    assert_eq!(settlement["chain"]["open_tickets"], 3);
    assert_eq!(settlement["chain"]["proceeds_lamports"], 0);
    assert_eq!(settlement["record"]["tickets_closed"], 0);
    assert!(settlement["record"]["event_rent_lamports"].is_null());
}

async fn reports_are_refused_to_another_organizer_a_holder_and_nobody(db: Db) {
    let server = start_on_chain(db, ChainMode::Embedded).await;
    let owner = server.login_as(&wallet(70), Some("organizer")).await;
    let other = server.login_as(&wallet(71), Some("organizer")).await;
    let holder = server.login_as(&wallet(72), None).await;
    let now = server.clock.0.load(std::sync::atomic::Ordering::SeqCst);
    let (status, created, _) = server
        .call(
            Method::POST,
            "/api/events",
            Some(&owner),
            Some(json!({
                "name": "Harbour Lights", "venue": "Pier 4",
                "starts_at": now + 86_400, "ends_at": now + 2 * 86_400,
                "capacity": 10,
                "tiers": [{ "name": "general", "price_lamports": 0, "supply": 10 }],
            })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let event_id = created["event_id"].as_u64().unwrap();
    for report in ["sales", "attendance.csv", "settlement"] {
        let path = format!("/api/events/{event_id}/{report}");
        for (token, expected, code) in [
            (Some(other.as_str()), 403, "forbidden"),
            (Some(holder.as_str()), 403, "role_required"),
            (None, 401, "missing_token"),
        ] {
            let (status, body, _) = server.call(Method::GET, &path, token, None).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (expected, Some(code)),
                "{path}: {body}"
            );
        }
        let (status, body, _) = server.call(Method::GET, &path, Some(&owner), None).await;
        assert_eq!(status, 200, "{path}: {body}");
        let (status, body, _) = server
            .call(
                Method::GET,
                &format!("/api/events/4242/{report}"),
                Some(&owner),
                None,
            )
            .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (404, Some("not_found")),
            "{report}: {body}"
        );
    }
    // The organizer's CSV of an event with no ticket is its header alone.
    let (_, csv, _) = server
        .call(
            Method::GET,
            &format!("/api/events/{event_id}/attendance.csv"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(
        csv,
        json!("ticket_id,tier,tier_name,holder,status,entered_at,entry_gate,entries,exits\n")
    );
}
