//! Mint requests through the ticketing and admin APIs, on the embedded
//! chain with the real program: a retry with the same `Idempotency-Key`
//! answers the first request's tickets and mints nothing more, a key used
//! for another body is refused naming it, the request's state is readable
//! by its caller and the admin only, a tier the event does not have is 422
//! naming the field (not `sold_out`), and tickets on chain the database
//! missed are found by id, holes included. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{Value, json};

on_both_backends!(
    a_retry_with_the_same_idempotency_key_answers_the_same_tickets_and_mints_nothing_more,
    an_idempotency_key_used_for_another_body_is_refused_naming_it,
    minting_a_tier_the_event_does_not_have_is_422_naming_the_field,
    a_ticket_on_chain_the_database_missed_between_known_ones_is_published,
);

/// An answer: status, body, the `Mint-Request-Id` header.
struct Answer {
    status: u16,
    body: Value,
    request_id: Option<String>,
}

/// POSTs `body` with `Idempotency-Key: key` (when given), as the bearer of
/// `token`.
async fn post_keyed(
    server: &TestServer,
    path: &str,
    token: &str,
    key: Option<&str>,
    body: Value,
) -> Answer {
    let mut request = server
        .http
        .post(format!("{}{path}", server.url))
        .bearer_auth(token)
        .json(&body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let request_id = r
        .headers()
        .get("mint-request-id")
        .map(|v| v.to_str().unwrap().to_owned());
    Answer {
        status,
        body: r.json().await.unwrap(),
        request_id,
    }
}

fn wall() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An event of `org` with tiers general (15 seats) and vip (5), 20 in all.
async fn create_event(server: &TestServer, org: &str) -> u64 {
    let (status, created, _) = server
        .call(
            reqwest::Method::POST,
            "/api/events",
            Some(org),
            Some(json!({
                "name": "Idempotent Nights", "venue": "Quay", "starts_at": wall() + 86_400,
                "ends_at": wall() + 90_000, "capacity": 20,
                "tiers": [
                    { "name": "general", "price_lamports": 0, "supply": 15 },
                    { "name": "vip", "price_lamports": 0, "supply": 5 }
                ]
            })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    created["event_id"].as_u64().unwrap()
}

/// Seats left in the whole event, as the server's inventory has them.
async fn seats_left(server: &TestServer, event_id: u64) -> i64 {
    server
        .state
        .store
        .seats_left(event_id)
        .await
        .unwrap()
        .into_iter()
        .find(|(tier, _)| *tier == sync_server::store::EVENT_CAPACITY)
        .map_or(-1, |(_, left)| left)
}

fn ids(tickets: &Value) -> Vec<u64> {
    tickets
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["ticket_id"].as_u64().unwrap())
        .collect()
}

async fn a_retry_with_the_same_idempotency_key_answers_the_same_tickets_and_mints_nothing_more(
    db: Db,
) {
    let server = start_on_chain(db, ChainMode::Embedded).await;
    let org = server.login_as(&wallet(70), Some("organizer")).await;
    let rival = server.login_as(&wallet(71), Some("organizer")).await;
    let event_id = create_event(&server, &org).await;

    // One ticket, asked twice with one key: one ticket, the same answer.
    let single = json!({ "event_id": event_id, "wallet": address(&wallet(80)) });
    let first = post_keyed(
        &server,
        "/api/tickets/mint",
        &org,
        Some("single-1"),
        single.clone(),
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.body);
    let again = post_keyed(&server, "/api/tickets/mint", &org, Some("single-1"), single).await;
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(again.body, first.body, "the same ticket and code");
    assert_eq!(again.request_id, first.request_id);
    assert!(first.request_id.is_some(), "Mint-Request-Id is answered");

    // A batch: the same tickets again, none new.
    let batch = json!({ "event_id": event_id, "recipients": [
        { "wallet": address(&wallet(81)) },
        { "wallet": address(&wallet(82)), "tier": 1 },
        { "wallet": address(&wallet(83)) },
    ]});
    let first_batch = post_keyed(
        &server,
        "/api/tickets/batch-mint",
        &org,
        Some("batch-1"),
        batch.clone(),
    )
    .await;
    assert_eq!(first_batch.status, 201, "{}", first_batch.body);
    assert_eq!(ids(&first_batch.body), vec![1, 2, 3]);
    let again = post_keyed(
        &server,
        "/api/tickets/batch-mint",
        &org,
        Some("batch-1"),
        batch,
    )
    .await;
    assert_eq!((again.status, &again.body), (201, &first_batch.body));

    // The admin API: the same.
    let admin_body = json!({ "recipients": [
        { "wallet": address(&wallet(84)) }, { "wallet": address(&wallet(85)) },
    ]});
    let path = format!("/api/admin/events/{event_id}/tickets");
    let first_admin = post_keyed(&server, &path, ADMIN, Some("admin-1"), admin_body.clone()).await;
    assert_eq!(first_admin.status, 201, "{}", first_admin.body);
    assert_eq!(ids(&first_admin.body["tickets"]), vec![4, 5]);
    let again = post_keyed(&server, &path, ADMIN, Some("admin-1"), admin_body).await;
    assert_eq!((again.status, &again.body), (201, &first_admin.body));

    // Six tickets on chain, six seats taken, one per recipient.
    assert_eq!(server.chain_event(event_id).await.minted, 6);
    assert_eq!(seats_left(&server, event_id).await, 14);

    // The caller reads its request; another organizer does not see it; the
    // admin sees every request.
    let batch_id = first_batch.request_id.unwrap();
    let (status, view, _) = server
        .call(
            reqwest::Method::GET,
            &format!("/api/mints/{batch_id}"),
            Some(&org),
            None,
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["state"], "completed");
    assert_eq!(view["kind"], "batch");
    assert_eq!(view["idempotency_key"], "batch-1");
    let tickets = view["tickets"].as_array().unwrap();
    assert_eq!(tickets.len(), 3);
    for (ticket, answered) in tickets.iter().zip(first_batch.body.as_array().unwrap()) {
        assert_eq!(ticket["state"], "landed");
        assert_eq!(ticket["ticket_id"], answered["ticket_id"]);
        assert_eq!(ticket["code"], answered["code"]);
        assert_eq!(ticket["wallet"], answered["owner"]);
    }
    assert_eq!(tickets[1]["tier"], 1);
    let (status, _, _) = server
        .call(
            reqwest::Method::GET,
            &format!("/api/mints/{batch_id}"),
            Some(&rival),
            None,
        )
        .await;
    assert_eq!(status, 404, "another organizer's request is not found");
    let admin_id = first_admin.request_id.unwrap();
    let (status, _, _) = server
        .call(
            reqwest::Method::GET,
            &format!("/api/mints/{admin_id}"),
            Some(&org),
            None,
        )
        .await;
    assert_eq!(status, 404, "the admin's request is not a wallet's");
    let (status, view, _) = server
        .call(
            reqwest::Method::GET,
            &format!("/api/admin/mints/{batch_id}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(
        (status, &view["state"]),
        (200, &json!("completed")),
        "{view}"
    );
    let (status, view, _) = server
        .call(
            reqwest::Method::GET,
            "/api/admin/mints/no-such-request",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(
        (status, &view["error"]),
        (404, &json!("not_found")),
        "{view}"
    );
}

async fn an_idempotency_key_used_for_another_body_is_refused_naming_it(db: Db) {
    let server = start_on_chain(db, ChainMode::Embedded).await;
    let org = server.login_as(&wallet(72), Some("organizer")).await;
    let event_id = create_event(&server, &org).await;
    let to = |seed: u8| json!({ "event_id": event_id, "wallet": address(&wallet(seed)) });

    let first = post_keyed(&server, "/api/tickets/mint", &org, Some("k-1"), to(90)).await;
    assert_eq!(first.status, 201, "{}", first.body);
    // Another recipient, another tier, another endpoint: each is another body.
    let mut vip = to(90);
    vip["tier"] = json!(1);
    let batch = json!({ "event_id": event_id, "recipients": [{ "wallet": address(&wallet(90)) }] });
    for (path, body) in [
        ("/api/tickets/mint", to(91)),
        ("/api/tickets/mint", vip),
        ("/api/tickets/batch-mint", batch),
    ] {
        let refused = post_keyed(&server, path, &org, Some("k-1"), body).await;
        assert_eq!(
            (refused.status, refused.body["field"].as_str()),
            (422, Some("Idempotency-Key")),
            "{path}: {}",
            refused.body
        );
    }
    // Keys are 1 to 255 visible ASCII characters.
    for key in ["with space", &"x".repeat(256)] {
        let refused = post_keyed(&server, "/api/tickets/mint", &org, Some(key), to(92)).await;
        assert_eq!(
            (refused.status, refused.body["field"].as_str()),
            (422, Some("Idempotency-Key")),
            "{}",
            refused.body
        );
    }
    // Keys belong to their caller: the admin's "k-1" is another request.
    let admin = post_keyed(
        &server,
        &format!("/api/admin/events/{event_id}/tickets"),
        ADMIN,
        Some("k-1"),
        json!({ "recipients": [{ "wallet": address(&wallet(93)) }] }),
    )
    .await;
    assert_eq!(admin.status, 201, "{}", admin.body);
    assert_ne!(admin.request_id, first.request_id);
    assert_eq!(server.chain_event(event_id).await.minted, 2);
    assert_eq!(seats_left(&server, event_id).await, 18);
}

async fn minting_a_tier_the_event_does_not_have_is_422_naming_the_field(db: Db) {
    let server = start_on_chain(db, ChainMode::Embedded).await;
    let org = server.login_as(&wallet(73), Some("organizer")).await;
    let event_id = create_event(&server, &org).await;
    let holder = address(&wallet(94));
    for (path, token, body, field) in [
        (
            "/api/tickets/mint".to_owned(),
            org.as_str(),
            json!({ "event_id": event_id, "wallet": holder, "tier": 2 }),
            "tier",
        ),
        (
            "/api/tickets/batch-mint".to_owned(),
            org.as_str(),
            json!({ "event_id": event_id, "recipients": [
                { "wallet": holder, "tier": 1 }, { "wallet": holder, "tier": 7 }
            ]}),
            "recipients[1].tier",
        ),
        (
            format!("/api/admin/events/{event_id}/tickets"),
            ADMIN,
            json!({ "recipients": [{ "wallet": holder, "tier": 2 }] }),
            "recipients[0].tier",
        ),
    ] {
        let refused = post_keyed(&server, &path, token, None, body).await;
        assert_eq!(
            (refused.status, refused.body["field"].as_str()),
            (422, Some(field)),
            "{path}: {}",
            refused.body
        );
        assert_eq!(refused.body["error"], "invalid_field", "{}", refused.body);
        assert!(refused.request_id.is_none(), "nothing was recorded");
    }
    // Nothing minted, no seat taken.
    assert_eq!(server.chain_event(event_id).await.minted, 0);
    assert_eq!(seats_left(&server, event_id).await, 20);
}

/// Tickets of one event land out of request order when mints run at once;
/// the database may then know ids 0, 1, 3, 4 and miss 2 (the server died
/// between the chain and the database). Counting tickets would not see it.
async fn a_ticket_on_chain_the_database_missed_between_known_ones_is_published(db: Db) {
    let server = start_on_chain(db, ChainMode::Embedded).await;
    let org = server.login_as(&wallet(74), Some("organizer")).await;
    let event_id = create_event(&server, &org).await;
    let recipients: Vec<Value> = (95..100u8)
        .map(|seed| json!({ "wallet": address(&wallet(seed)) }))
        .collect();
    let minted = post_keyed(
        &server,
        &format!("/api/admin/events/{event_id}/tickets"),
        ADMIN,
        None,
        json!({ "recipients": recipients }),
    )
    .await;
    assert_eq!(minted.status, 201, "{}", minted.body);
    let pool = raw_pool(&server.state).await;
    sqlx::query("DELETE FROM tickets WHERE event_id = $1 AND ticket_id = 2")
        .bind(event_id as i64)
        .execute(&pool)
        .await
        .unwrap();
    assert!(
        server
            .state
            .store
            .ticket(event_id, 2)
            .await
            .unwrap()
            .is_none()
    );

    let published = sync_server::services::organizer::reconcile(&server.state)
        .await
        .unwrap();
    assert_eq!(published, 1);
    let repaired = server
        .state
        .store
        .ticket(event_id, 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(repaired.owner.to_base58(), address(&wallet(97)));
    // Nothing else is missing: a second pass publishes nothing.
    assert_eq!(
        sync_server::services::organizer::reconcile(&server.state)
            .await
            .unwrap(),
        0
    );
}
