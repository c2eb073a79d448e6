//! Events and tickets through the ticketing API, on the embedded chain with
//! the real program: wallet login, roles and ownership, body validation,
//! the mint rate limit, QR images. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{Value, json};

on_both_backends!(
    organizers_create_events_and_mint_holders_see_their_tickets,
    a_batch_the_chain_refuses_part_way_leaves_no_valid_ticket_and_frees_its_seats,
    handhelds_validate_online_and_offline_and_entries_reach_the_chain,
);

async fn organizers_create_events_and_mint_holders_see_their_tickets(db: Db) {
    let server = start_on_chain(db, ChainMode::Embedded).await;
    let organizer = wallet(50);
    let rival = wallet(51);
    let holder = wallet(52);
    let org = server.login_as(&organizer, Some("organizer")).await;
    let other = server.login_as(&rival, Some("organizer")).await;
    let fan = server.login_as(&holder, None).await;
    let post = reqwest::Method::POST;
    let get = reqwest::Method::GET;

    // In the chain's future (its clock is the wall clock), so transfers are
    // still open there.
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let event = json!({
        "name": "Harbour Lights", "description": "Open air", "venue": "Pier 4",
        "starts_at": wall + 86_400, "ends_at": wall + 2 * 86_400, "capacity": 500,
        "tiers": [{ "name": "general", "price_lamports": 0, "supply": 500 }]
    });
    // Refusals: no token, wrong role, broken bodies (each names the field).
    let (status, _, _) = server
        .call(post.clone(), "/api/events", None, Some(event.clone()))
        .await;
    assert_eq!(status, 401);
    let (status, _, _) = server
        .call(post.clone(), "/api/events", Some(&fan), Some(event.clone()))
        .await;
    assert_eq!(status, 403);
    for (field, broken) in [
        ("capacity", json!({ "capacity": 0 })),
        ("ends_at", json!({ "ends_at": T0 })),
        (
            "tiers[0].price_lamports",
            json!({ "tiers": [{ "name": "g", "price_lamports": -1, "supply": 5 }] }),
        ),
        ("name", json!({ "name": "x" })),
        ("surprise", json!({ "surprise": true })),
        ("nft", json!({ "nft": "metaplex" })),
    ] {
        let mut body = event.clone();
        for (k, v) in broken.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, error, _) = server
            .call(post.clone(), "/api/events", Some(&org), Some(body))
            .await;
        assert!(status == 422 || status == 400, "{field}: {status} {error}");
        assert_eq!(error["field"], field, "{error}");
    }

    let (status, created, _) = server
        .call(post.clone(), "/api/events", Some(&org), Some(event))
        .await;
    assert_eq!(status, 201, "{created}");
    let event_id = created["event_id"].as_u64().unwrap();
    assert_eq!(created["organizer"], address(&organizer));
    // The cheaper NFT standard unless the organizer asks for metadata.
    assert_eq!(created["nft"], "spl_token");
    assert_eq!(
        server.chain_event(event_id).await.token_standard,
        ticketing::client::TokenStandard::SplToken
    );
    let (status, page, _) = server
        .call(get.clone(), "/api/events?page=1&limit=10", None, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["total"], 1);
    assert_eq!(page["events"][0]["venue"], "Pier 4");
    let (status, one, _) = server
        .call(get.clone(), &format!("/api/events/{event_id}"), None, None)
        .await;
    assert_eq!(
        (status, one["name"].as_str()),
        (200, Some("Harbour Lights"))
    );
    let (status, _, _) = server
        .call(get.clone(), "/api/events/12345", None, None)
        .await;
    assert_eq!(status, 404);

    // Filters: name and venue in any case (pattern characters literal),
    // start time range.
    for (query, found) in [
        ("q=harbour", 1),
        ("q=LIGHTS&venue=pier", 1),
        ("q=%25", 0),
        ("venue=quay", 0),
        (&*format!("starts_after={}", wall + 86_400), 1),
        (&*format!("starts_before={}", wall + 86_400), 0),
        ("q=&venue=", 1),
    ] {
        let (status, page, _) = server
            .call(get.clone(), &format!("/api/events?{query}"), None, None)
            .await;
        assert_eq!(
            (status, page["total"].as_u64()),
            (200, Some(found)),
            "{query}: {page}"
        );
    }
    // Filters are bounded text: refused, naming the parameter.
    let long = "h".repeat(65);
    for (query, field) in [
        (format!("q={long}"), "q"),
        (format!("venue={}", "p".repeat(10_000)), "venue"),
        ("q=harbour%07".to_owned(), "q"),
    ] {
        let (status, error, _) = server
            .call(get.clone(), &format!("/api/events?{query}"), None, None)
            .await;
        assert_eq!(
            (status, error["field"].as_str()),
            (422, Some(field)),
            "{field}: {error}"
        );
    }

    // Only its organizer edits the event; the chain and the listing follow.
    let put = reqwest::Method::PUT;
    let path = format!("/api/events/{event_id}");
    let edit = json!({ "name": "Harbour Lights II", "capacity": 400, "venue": "Pier 5" });
    let (status, _, _) = server
        .call(put.clone(), &path, Some(&other), Some(edit.clone()))
        .await;
    assert_eq!(status, 403, "another organizer's event");
    let (status, _, _) = server
        .call(put.clone(), &path, Some(&fan), Some(edit.clone()))
        .await;
    assert_eq!(status, 403, "a holder");
    let (status, error, _) = server
        .call(
            put.clone(),
            &path,
            Some(&org),
            Some(json!({ "capacity": 0 })),
        )
        .await;
    assert_eq!(
        (status, error["field"].as_str()),
        (422, Some("capacity")),
        "{error}"
    );
    let (status, error, _) = server
        .call(
            put.clone(),
            &path,
            Some(&org),
            Some(json!({ "ends_at": wall })),
        )
        .await;
    assert_eq!(
        (status, error["field"].as_str()),
        (422, Some("ends_at")),
        "{error}"
    );
    let (status, edited, _) = server
        .call(put.clone(), &path, Some(&org), Some(edit))
        .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(
        (edited["name"].as_str(), edited["venue"].as_str()),
        (Some("Harbour Lights II"), Some("Pier 5"))
    );
    assert_eq!(edited["capacity"], 400);
    {
        use solana_sdk::signature::Signer as _;
        let ctx = server.state.chain.as_ref().unwrap();
        let on_chain =
            sync_server::chain::ops::event(ctx.chain.as_ref(), &ctx.authority.pubkey(), event_id)
                .await
                .unwrap()
                .unwrap();
        assert_eq!(
            (on_chain.name.as_str(), on_chain.capacity),
            ("Harbour Lights II", 400)
        );
    }
    assert_eq!(
        server
            .state
            .store
            .event(event_id)
            .await
            .unwrap()
            .unwrap()
            .name,
        "Harbour Lights II",
        "gates get the new name"
    );

    // Only this event's organizer mints; the ticket is on chain, owned by the holder.
    let mint = json!({ "event_id": event_id, "wallet": address(&holder) });
    let (status, _, _) = server
        .call(
            post.clone(),
            "/api/tickets/mint",
            Some(&other),
            Some(mint.clone()),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = server
        .call(
            post.clone(),
            "/api/tickets/mint",
            Some(&fan),
            Some(mint.clone()),
        )
        .await;
    assert_eq!(status, 403);
    let (status, minted, _) = server
        .call(
            post.clone(),
            "/api/tickets/mint",
            Some(&org),
            Some(mint.clone()),
        )
        .await;
    assert_eq!(status, 201, "{minted}");
    assert_eq!(minted["owner"], address(&holder));
    let code = minted["code"].as_str().unwrap().to_owned();
    let ticket_id = minted["ticket_id"].as_u64().unwrap() as u32;
    let on_chain = server.chain_ticket(event_id, ticket_id).await;
    assert_eq!(on_chain.owner.to_bytes(), holder.verifying_key().to_bytes());
    assert!(!on_chain.entered);

    // The holder sees it, with the same code, and gets it as a QR image.
    let (status, mine, _) = server
        .call(get.clone(), "/api/tickets/my", Some(&fan), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(mine[0]["code"], code.as_str());
    let qr_path = format!("/api/tickets/{event_id}/{ticket_id}/qr");
    let r = server
        .http
        .get(format!("{}{qr_path}", server.url))
        .bearer_auth(&fan)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    let png = r.bytes().await.unwrap();
    let image = image::load_from_memory(&png).unwrap().to_luma8();
    let (w, h) = image.dimensions();
    let read =
        rxing::helpers::detect_in_luma(image.into_raw(), w, h, Some(rxing::BarcodeFormat::QR_CODE))
            .unwrap();
    assert_eq!(read.getText().to_uppercase(), code.to_uppercase());
    let r = server
        .http
        .get(format!("{}{qr_path}?format=svg", server.url))
        .bearer_auth(&fan)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    let (status, _, _) = server.call(get.clone(), &qr_path, Some(&other), None).await;
    assert_eq!(status, 403, "someone else's ticket");
    let ticket_path = format!("/api/tickets/{event_id}/{ticket_id}");
    let (status, one, _) = server
        .call(get.clone(), &ticket_path, Some(&fan), None)
        .await;
    assert_eq!(
        (status, one["code"].as_str()),
        (200, Some(code.as_str())),
        "{one}"
    );
    let (status, _, _) = server
        .call(get.clone(), &ticket_path, Some(&org), None)
        .await;
    assert_eq!(status, 200, "the event's organizer");
    let (status, _, _) = server
        .call(get.clone(), &ticket_path, Some(&other), None)
        .await;
    assert_eq!(status, 403, "someone else's ticket");
    let (status, _, _) = server.call(get.clone(), &ticket_path, None, None).await;
    assert_eq!(status, 401);

    // The NFT's metadata is public and never carries the credential.
    let (status, meta, _) = server
        .call(
            get.clone(),
            &format!("/m/{event_id}/{ticket_id}"),
            None,
            None,
        )
        .await;
    assert_eq!(status, 200, "{meta}");
    assert_eq!(meta["name"], format!("Harbour Lights II #{ticket_id}"));
    assert!(meta["image"].as_str().unwrap().ends_with("/image.svg"));
    assert!(
        !meta.to_string().contains(&code),
        "no credential in public metadata"
    );
    let (status, same, _) = server
        .call(
            get.clone(),
            &format!("/api/tickets/{event_id}/{ticket_id}/metadata"),
            None,
            None,
        )
        .await;
    assert_eq!((status, &same), (200, &meta));
    let r = server
        .http
        .get(format!("{}/m/{event_id}/{ticket_id}/image.svg", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    assert!(r.text().await.unwrap().contains("Harbour Lights"));

    // The holder gives the ticket away: the server prepares the transfer, the
    // holder's wallet signs it (the server never holds that key), the server
    // sends it and the gates hear of the new owner.
    let friend = wallet(53);
    let transfer_path = format!("/api/tickets/{event_id}/{ticket_id}/transfer");
    let ask = json!({ "to_wallet": address(&friend) });
    let (status, _, _) = server
        .call(
            post.clone(),
            &transfer_path,
            Some(&other),
            Some(ask.clone()),
        )
        .await;
    assert_eq!(status, 403, "not the holder");
    let (status, prepared, _) = server
        .call(post.clone(), &transfer_path, Some(&fan), Some(ask))
        .await;
    assert_eq!(status, 200, "{prepared}");
    let holder_keypair = solana_sdk::signature::Keypair::new_from_array([52; 32]);
    {
        use solana_sdk::signature::Signer as _;
        let ctx = server.state.chain.as_ref().unwrap();
        sync_server::chain::ops::ensure_funded(
            ctx.chain.as_ref(),
            None,
            &holder_keypair.pubkey(),
            100_000_000,
            100_000_000,
        )
        .await
        .unwrap();
    }
    let unsigned: solana_sdk::transaction::Transaction = bincode::deserialize(
        &base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            prepared["transaction"].as_str().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let encode = |tx: &solana_sdk::transaction::Transaction| {
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            bincode::serialize(tx).unwrap(),
        )
    };
    // Signed by the wrong key: refused, nothing sent.
    let mut forged = unsigned.clone();
    let blockhash = forged.message.recent_blockhash;
    let stranger = solana_sdk::signature::Keypair::new();
    forged.signatures = vec![solana_sdk::signature::Signature::default()];
    let _ = forged.try_partial_sign(&[&stranger], blockhash);
    let submit_path = format!("{transfer_path}/submit");
    let (status, error, _) = server
        .call(
            post.clone(),
            &submit_path,
            Some(&fan),
            Some(json!({ "transaction": encode(&forged) })),
        )
        .await;
    assert_eq!(
        (status, error["field"].as_str()),
        (422, Some("transaction")),
        "{error}"
    );
    let mut signed = unsigned;
    signed.sign(&[&holder_keypair], blockhash);
    let (status, moved, _) = server
        .call(
            post.clone(),
            &submit_path,
            Some(&fan),
            Some(json!({ "transaction": encode(&signed) })),
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["owner"], address(&friend));
    assert_eq!(moved["generation"], 1);
    let (_, mine, _) = server
        .call(get.clone(), "/api/tickets/my", Some(&fan), None)
        .await;
    assert_eq!(mine.as_array().unwrap().len(), 0, "no longer the holder's");

    // The mint budget: 10 per minute per organizer (one used above).
    let mut limited = None;
    for _ in 0..12 {
        let (status, _, headers) = server
            .call(
                post.clone(),
                "/api/tickets/mint",
                Some(&org),
                Some(mint.clone()),
            )
            .await;
        if status == 429 {
            limited = Some(headers);
            break;
        }
        assert_eq!(status, 201);
    }
    let headers = limited.expect("the 11th mint within a minute is refused");
    assert!(headers.contains_key("retry-after"));
}

async fn handhelds_validate_online_and_offline_and_entries_reach_the_chain(db: Db) {
    let server = start_on_chain(db, ChainMode::Embedded).await;
    let organizer = wallet(60);
    let steward = wallet(61);
    let holder = wallet(62);
    let org = server.login_as(&organizer, Some("organizer")).await;
    let val = server.login_as(&steward, Some("validator")).await;
    let fan = server.login_as(&holder, None).await;
    let post = reqwest::Method::POST;
    let (status, created, _) = server
        .call(
            post.clone(),
            "/api/events",
            Some(&org),
            Some(json!({
                "name": "Night Market", "venue": "Quay", "starts_at": T0, "ends_at": T0 + 7200,
                "capacity": 10, "tiers": [{ "name": "general", "price_lamports": 0, "supply": 10 }]
            })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let event_id = created["event_id"].as_u64().unwrap();
    let (status, _, _) = server
        .call(
            reqwest::Method::PUT,
            &format!("/api/admin/events/{event_id}/gates"),
            Some(ADMIN),
            Some(json!({ "number": 1, "name": "door", "direction": "entry" })),
        )
        .await;
    assert_eq!(status, 204);
    // The organizer lets the steward validate this event.
    let (status, _, _) = server
        .call(
            reqwest::Method::PUT,
            &format!("/api/events/{event_id}/validators/{}", address(&steward)),
            Some(&org),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let mut codes = Vec::new();
    for _ in 0..2 {
        let (status, minted, _) = server
            .call(
                post.clone(),
                "/api/tickets/mint",
                Some(&org),
                Some(json!({ "event_id": event_id, "wallet": address(&holder) })),
            )
            .await;
        assert_eq!(status, 201, "{minted}");
        codes.push(minted["code"].as_str().unwrap().to_owned());
    }

    let check = |code: &str, gate: u32| json!({ "event_id": event_id, "gate": gate, "code": code });
    let (status, _, _) = server
        .call(
            post.clone(),
            "/api/validate",
            Some(&fan),
            Some(check(&codes[0], 1)),
        )
        .await;
    assert_eq!(status, 403, "a holder cannot validate");
    let (status, error, _) = server
        .call(
            post.clone(),
            "/api/validate",
            Some(&val),
            Some(check(&codes[0], 9)),
        )
        .await;
    assert_eq!(
        (status, error["field"].as_str()),
        (422, Some("gate")),
        "{error}"
    );
    let (status, first, _) = server
        .call(
            post.clone(),
            "/api/validate",
            Some(&val),
            Some(check(&codes[0], 1)),
        )
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        (first["outcome"].as_str(), first["opens"].as_bool()),
        (Some("admitted"), Some(true))
    );
    let (_, again, _) = server
        .call(
            post.clone(),
            "/api/validate",
            Some(&val),
            Some(check(&codes[0], 1)),
        )
        .await;
    assert_eq!(again["outcome"], "already_inside", "{again}");
    assert_eq!(again["opens"], false);
    let mut forged = codes[1].clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let (_, bad, _) = server
        .call(
            post.clone(),
            "/api/validate",
            Some(&val),
            Some(check(&String::from_utf8(forged).unwrap(), 1)),
        )
        .await;
    assert_eq!(bad["opens"], false, "{bad}");

    // A scan the handheld decided offline, with the code it scanned,
    // uploaded twice: stored once.
    let offline = shared::wire::ScanRecord {
        scan_id: uuid::Uuid::now_v7(),
        gate: 1,
        direction: shared::Direction::Entry,
        scanned_at_ms: (T0 + 60) * 1000,
        source: "handheld:7".into(),
        event_id: Some(event_id),
        ticket_id: Some(1),
        generation: Some(0),
        tier: Some(0),
        outcome: "admitted".into(),
        opened: true,
        voids: None,
    };
    let mut offline = serde_json::to_value(&offline).unwrap();
    offline["code"] = json!(codes[1]);
    let sync = json!({ "event_id": event_id, "gate": 1, "scans": [offline] });
    let (status, ack, _) = server
        .call(
            post.clone(),
            "/api/validate/sync",
            Some(&val),
            Some(sync.clone()),
        )
        .await;
    assert_eq!((status, ack["stored"].as_u64()), (200, Some(1)), "{ack}");
    let (_, ack, _) = server
        .call(post.clone(), "/api/validate/sync", Some(&val), Some(sync))
        .await;
    assert_eq!(
        (ack["stored"].as_u64(), ack["duplicates"].as_u64()),
        (Some(0), Some(1))
    );

    // Both admissions are recorded on chain by the batched replay.
    let summary = sync_server::services::replay::drain(
        &server.state,
        event_id,
        std::time::Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert_eq!(summary.confirmed, 2, "{summary:?}");
    {
        use solana_sdk::signature::Signer as _;
        let ctx = server.state.chain.as_ref().unwrap();
        let address = ticketing::client::event_address(&ctx.authority.pubkey(), event_id).0;
        for ticket in sync_server::chain::ops::tickets(ctx.chain.as_ref(), &address, &[0, 1])
            .await
            .unwrap()
        {
            let ticket = ticket.unwrap();
            assert!(ticket.entered);
            assert_eq!(ticket.entry_count, 1);
        }
    }

    // Prometheus: scans by gate and outcome, replay results, request latency
    // by route template.
    let metrics = server
        .http
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "sync_scans_total{gate=\"1\",outcome=\"admitted\"} 2",
        "sync_scans_total{gate=\"1\",outcome=\"already_inside\"} 1",
        "sync_replay_entries_total{result=\"confirmed\"} 2",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
    assert!(
        metrics.contains("sync_http_request_seconds_count{method=\"POST\",route=\"/api/validate\",status=\"200\"}"),
        "{metrics}"
    );

    // 5 validations per second per validator and gate.
    let mut refused = false;
    for _ in 0..8 {
        let (status, _, headers) = server
            .call(
                post.clone(),
                "/api/validate",
                Some(&val),
                Some(check(&codes[1], 1)),
            )
            .await;
        if status == 429 {
            assert!(headers.contains_key("retry-after"));
            refused = true;
            break;
        }
    }
    assert!(refused, "the validate rate limit holds");

    // Batch mint: at most 100, and all or nothing against the inventory.
    let many: Vec<Value> = (0..101)
        .map(|_| json!({ "wallet": address(&holder) }))
        .collect();
    let (status, error, _) = server
        .call(
            post.clone(),
            "/api/tickets/batch-mint",
            Some(&org),
            Some(json!({ "event_id": event_id, "recipients": many })),
        )
        .await;
    assert_eq!(
        (status, error["field"].as_str()),
        (422, Some("recipients")),
        "{error}"
    );
    let minted_before = {
        use solana_sdk::signature::Signer as _;
        let ctx = server.state.chain.as_ref().unwrap();
        sync_server::chain::ops::event(ctx.chain.as_ref(), &ctx.authority.pubkey(), event_id)
            .await
            .unwrap()
            .unwrap()
            .minted
    };
    assert_eq!(minted_before, 2);
    let nine: Vec<Value> = (0..9)
        .map(|_| json!({ "wallet": address(&holder) }))
        .collect();
    let (status, error, _) = server
        .call(
            post.clone(),
            "/api/tickets/batch-mint",
            Some(&org),
            Some(json!({ "event_id": event_id, "recipients": nine })),
        )
        .await;
    assert_eq!(status, 409, "8 left of 10: {error}");
    let three: Vec<Value> = (0..3)
        .map(|_| json!({ "wallet": address(&holder) }))
        .collect();
    let (status, batch, _) = server
        .call(
            post.clone(),
            "/api/tickets/batch-mint",
            Some(&org),
            Some(json!({ "event_id": event_id, "recipients": three })),
        )
        .await;
    assert_eq!(status, 201, "{batch}");
    let ids: Vec<u64> = batch
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["ticket_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![2, 3, 4], "the refused batch minted nothing");
}

/// Batch mint is all or nothing: when the chain refuses the second of a
/// batch's transactions, the tickets the first one minted are revoked on
/// chain (void at every gate), the request fails, and the seats of the
/// tickets never minted go back on sale.
async fn a_batch_the_chain_refuses_part_way_leaves_no_valid_ticket_and_frees_its_seats(db: Db) {
    use solana_sdk::signature::Signer as _;
    let faults = sync_server::chain::rpc_service::Faults::default();
    let refuse = faults.refuse_send_in.clone();
    let server = start_on_chain(db, ChainMode::Rpc(faults)).await;
    let org = server.login_as(&wallet(63), Some("organizer")).await;
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (status, created, _) = server
        .call(
            reqwest::Method::POST,
            "/api/events",
            Some(&org),
            Some(json!({
                "name": "Half Batch", "venue": "Quay", "starts_at": wall + 86_400,
                "ends_at": wall + 90_000, "capacity": 12,
                "tiers": [{ "name": "general", "price_lamports": 0, "supply": 12 }],
                "nft": "token_2022_metadata"
            })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let event_id = created["event_id"].as_u64().unwrap();
    let recipients: Vec<Value> = (0..10u8)
        .map(|i| json!({ "wallet": address(&wallet(200 + i)) }))
        .collect();
    // 10 Token-2022 tickets are three transactions (4, 4, 2); the second is
    // refused.
    refuse.store(2, std::sync::atomic::Ordering::SeqCst);
    let (status, error, _) = server
        .call(
            reqwest::Method::POST,
            "/api/tickets/batch-mint",
            Some(&org),
            Some(json!({ "event_id": event_id, "recipients": recipients })),
        )
        .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (422, Some("chain_refused")),
        "{error}"
    );

    let ctx = server.state.chain.as_ref().unwrap();
    let on_chain =
        sync_server::chain::ops::event(ctx.chain.as_ref(), &ctx.authority.pubkey(), event_id)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(on_chain.minted, 4, "the first transaction landed");
    let event_address = ticketing::client::event_address(&ctx.authority.pubkey(), event_id).0;
    for ticket in
        sync_server::chain::ops::tickets(ctx.chain.as_ref(), &event_address, &[0, 1, 2, 3])
            .await
            .unwrap()
    {
        assert_eq!(
            ticket.unwrap().status,
            ticketing::client::TicketStatus::Revoked
        );
    }
    for id in 0..4 {
        let cached = server
            .state
            .store
            .ticket(event_id, id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            cached.status,
            shared::TicketStatus::Revoked,
            "gates refuse ticket {id}"
        );
    }
    // 12 seats, 4 spent on the voided tickets: 8 can still be sold.
    let eight: Vec<Value> = (0..8u8)
        .map(|i| json!({ "wallet": address(&wallet(220 + i)) }))
        .collect();
    let nine: Vec<Value> = (0..9u8)
        .map(|i| json!({ "wallet": address(&wallet(220 + i)) }))
        .collect();
    let (status, body, _) = server
        .call(
            reqwest::Method::POST,
            "/api/tickets/batch-mint",
            Some(&org),
            Some(json!({ "event_id": event_id, "recipients": nine })),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("sold_out")),
        "{body}"
    );
    let (status, minted, _) = server
        .call(
            reqwest::Method::POST,
            "/api/tickets/batch-mint",
            Some(&org),
            Some(json!({ "event_id": event_id, "recipients": eight })),
        )
        .await;
    assert_eq!(status, 201, "{minted}");
    assert_eq!(minted.as_array().unwrap().len(), 8);
}
