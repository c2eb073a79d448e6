//! An organizer's actions on single tickets and validators, on the embedded
//! chain with the real program: a frozen ticket reaches the gates' cache
//! feed as frozen and a release as active again; revoked tickets and
//! unknown ones are refused; another organizer, a holder and nobody are
//! refused every chain action of an event; a validator key listed on chain
//! is taken off it. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;
use shared::wire::CacheChange;
use solana_sdk::signature::Signer as _;
use ticketing::client::TicketStatus as ChainStatus;

on_both_backends!(
    a_frozen_ticket_reaches_the_gates_as_frozen_and_a_release_as_active,
    another_organizer_a_holder_and_nobody_are_refused_every_chain_action,
    removing_a_validator_takes_its_key_off_the_event_on_chain,
);

/// The status the delta from `cursor` gives ticket `id`, and the new cursor.
async fn ticket_status_in_delta(gate: &Gate, cursor: u64, id: u32) -> (shared::TicketStatus, u64) {
    let delta = gate.delta(cursor, 0).await;
    let status = delta
        .changes
        .iter()
        .rev()
        .find_map(|change| match change {
            CacheChange::Ticket(t) if t.ticket_id == id => Some(t.status),
            _ => None,
        })
        .unwrap_or_else(|| panic!("ticket {id} not in the delta: {:?}", delta.changes));
    (status, delta.to_cursor)
}

async fn a_frozen_ticket_reaches_the_gates_as_frozen_and_a_release_as_active(db: Db) {
    let server = &start_on_chain(db, ChainMode::Embedded).await;
    server.seed_on_chain(3).await;
    let gate = server.enrol("north", 21).await;
    let snapshot = gate.snapshot().await;
    assert!(
        snapshot
            .tickets
            .iter()
            .all(|t| t.status == shared::TicketStatus::Active)
    );
    let call = |method: Method, path: String| async move {
        server.call(method, &path, Some(ADMIN), None).await
    };

    let (status, frozen, _) = call(
        Method::POST,
        format!("/api/events/{EVENT}/tickets/1/freeze"),
    )
    .await;
    assert_eq!(status, 200, "{frozen}");
    assert_eq!(frozen["status"], "frozen", "{frozen}");
    assert_eq!(
        server.chain_ticket(EVENT, 1).await.status,
        ChainStatus::Frozen
    );
    let (seen, cursor) = ticket_status_in_delta(&gate, snapshot.cursor, 1).await;
    assert_eq!(seen, shared::TicketStatus::Frozen, "the gate sees the hold");
    // Freezing again sends nothing and answers the same.
    let (status, again, _) = call(
        Method::POST,
        format!("/api/events/{EVENT}/tickets/1/freeze"),
    )
    .await;
    assert_eq!((status, &again), (200, &frozen));

    let (status, released, _) = call(
        Method::POST,
        format!("/api/events/{EVENT}/tickets/1/unfreeze"),
    )
    .await;
    assert_eq!(status, 200, "{released}");
    assert_eq!(released["status"], "active");
    assert_eq!(
        server.chain_ticket(EVENT, 1).await.status,
        ChainStatus::Active
    );
    let (seen, _) = ticket_status_in_delta(&gate, cursor, 1).await;
    assert_eq!(seen, shared::TicketStatus::Active, "admitted again");
    let (status, _, _) = call(
        Method::POST,
        format!("/api/events/{EVENT}/tickets/1/unfreeze"),
    )
    .await;
    assert_eq!(status, 200, "releasing an active ticket changes nothing");

    // A revoked ticket can be neither frozen nor released; an unknown
    // ticket or event is not found.
    let (status, _, _) = call(
        Method::POST,
        format!("/api/admin/events/{EVENT}/tickets/2/revoke"),
    )
    .await;
    assert_eq!(status, 200);
    for (path, expected, code) in [
        (
            format!("/api/events/{EVENT}/tickets/2/freeze"),
            409,
            "conflict",
        ),
        (
            format!("/api/events/{EVENT}/tickets/2/unfreeze"),
            409,
            "conflict",
        ),
        (
            format!("/api/events/{EVENT}/tickets/99/freeze"),
            404,
            "not_found",
        ),
        (
            "/api/events/42/tickets/0/freeze".to_owned(),
            404,
            "not_found",
        ),
    ] {
        let (status, body, _) = call(Method::POST, path.clone()).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (expected, Some(code)),
            "{path}: {body}"
        );
    }
    assert_eq!(
        server.chain_ticket(EVENT, 2).await.status,
        ChainStatus::Revoked
    );
}

/// An event of `organizer`'s, starting tomorrow on the server's clock,
/// with one ticket minted to `holder`. Returns its id.
pub async fn organizers_event(server: &TestServer, organizer: &str, holder: &str) -> u64 {
    let now = server.clock.0.load(std::sync::atomic::Ordering::SeqCst);
    let (status, created, _) = server
        .call(
            Method::POST,
            "/api/events",
            Some(organizer),
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
    let (status, minted, _) = server
        .call(
            Method::POST,
            "/api/tickets/mint",
            Some(organizer),
            Some(json!({ "event_id": event_id, "wallet": holder })),
        )
        .await;
    assert_eq!(status, 201, "{minted}");
    event_id
}

/// A chained server whose clock reads the wall clock, as the embedded
/// chain's does, so an event made for tomorrow has not ended on chain.
async fn server_at_wall_clock(db: Db) -> TestServer {
    let server = start_on_chain(db, ChainMode::Embedded).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    server
        .clock
        .0
        .store(now, std::sync::atomic::Ordering::SeqCst);
    server
}

async fn another_organizer_a_holder_and_nobody_are_refused_every_chain_action(db: Db) {
    let server = server_at_wall_clock(db).await;
    let owner = server.login_as(&wallet(70), Some("organizer")).await;
    let other = server.login_as(&wallet(71), Some("organizer")).await;
    let holder_key = wallet(72);
    let holder = server.login_as(&holder_key, None).await;
    let event_id = organizers_event(&server, &owner, &address(&holder_key)).await;
    let validator = address(&wallet(73));
    let actions = [
        (
            Method::POST,
            format!("/api/events/{event_id}/tickets/0/freeze"),
        ),
        (
            Method::POST,
            format!("/api/events/{event_id}/tickets/0/unfreeze"),
        ),
        (Method::POST, format!("/api/events/{event_id}/cancellation")),
        (Method::GET, format!("/api/events/{event_id}/cancellation")),
        (Method::POST, format!("/api/events/{event_id}/withdraw")),
        (
            Method::POST,
            format!("/api/events/{event_id}/tickets/close"),
        ),
        (Method::POST, format!("/api/events/{event_id}/close")),
        (
            Method::DELETE,
            format!("/api/events/{event_id}/validators/{validator}"),
        ),
    ];
    for (method, path) in &actions {
        for (token, expected, code) in [
            (Some(other.as_str()), 403, "forbidden"),
            (Some(holder.as_str()), 403, "role_required"),
            (None, 401, "missing_token"),
        ] {
            let (status, body, _) = server.call(method.clone(), path, token, None).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (expected, Some(code)),
                "{method} {path}: {body}"
            );
        }
    }
    // Nothing changed on chain.
    let event = server.chain_event(event_id).await;
    assert!(!event.is_cancelled());
    assert_eq!(
        server.chain_ticket(event_id, 0).await.status,
        ChainStatus::Active
    );
    // Its own organizer may; an event nobody has is not found; the event
    // has not ended, so withdrawing and closing are conflicts; nothing was
    // cancelled yet.
    for (method, path, expected) in [
        (
            Method::POST,
            format!("/api/events/{event_id}/tickets/0/freeze"),
            200,
        ),
        (
            Method::POST,
            format!("/api/events/{event_id}/withdraw"),
            409,
        ),
        (
            Method::POST,
            format!("/api/events/{event_id}/tickets/close"),
            409,
        ),
        (Method::POST, format!("/api/events/{event_id}/close"), 409),
        (
            Method::GET,
            format!("/api/events/{event_id}/cancellation"),
            404,
        ),
        (
            Method::POST,
            "/api/events/4242/cancellation".to_owned(),
            404,
        ),
        (Method::POST, "/api/events/4242/withdraw".to_owned(), 404),
    ] {
        let (status, body, _) = server.call(method.clone(), &path, Some(&owner), None).await;
        assert_eq!(status, expected, "{method} {path}: {body}");
    }
}

async fn removing_a_validator_takes_its_key_off_the_event_on_chain(db: Db) {
    let server = server_at_wall_clock(db).await;
    let owner = server.login_as(&wallet(70), Some("organizer")).await;
    let event_id = organizers_event(&server, &owner, &address(&wallet(72))).await;
    // A key listed on chain beside the server's own (as a tool holding the
    // authority would add it).
    let handheld = solana_sdk::signature::Keypair::new_from_array(wallet(74).to_bytes());
    let ctx = server.state.chain.as_ref().unwrap();
    let event_address = ticketing::client::event_address(&ctx.authority.pubkey(), event_id).0;
    sync_server::chain::ops::send(
        ctx.chain.as_ref(),
        &ctx.authority,
        &[ticketing::client::add_validator(
            &ctx.authority.pubkey(),
            &event_address,
            &handheld.pubkey(),
        )],
        &[],
    )
    .await
    .unwrap();
    assert!(
        server
            .chain_event(event_id)
            .await
            .is_validator(&handheld.pubkey())
    );
    let path = format!("/api/events/{event_id}/validators/{}", handheld.pubkey());
    let (status, _, _) = server.call(Method::PUT, &path, Some(&owner), None).await;
    assert_eq!(status, 200);

    let (status, body, _) = server.call(Method::DELETE, &path, Some(&owner), None).await;
    assert_eq!(status, 204, "{body}");
    let event = server.chain_event(event_id).await;
    assert!(
        !event.is_validator(&handheld.pubkey()),
        "off the list on chain"
    );
    let (_, assigned, _) = server
        .call(
            Method::GET,
            &format!("/api/events/{event_id}/validators"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(assigned, json!([]), "and no longer assigned");
    // Neither listed nor assigned any more: not found.
    let (status, _, _) = server.call(Method::DELETE, &path, Some(&owner), None).await;
    assert_eq!(status, 404);
    // The server's own replay key stays.
    let own = server
        .state
        .store
        .event_chain(event_id)
        .await
        .unwrap()
        .unwrap()
        .validator_public;
    let (status, body, _) = server
        .call(
            Method::DELETE,
            &format!("/api/events/{event_id}/validators/{own}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    assert_eq!(server.chain_event(event_id).await.validators.len(), 1);
}
