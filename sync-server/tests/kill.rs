//! The real `sync-server` binary killed with SIGKILL again and again while
//! gates upload and the replay worker writes to the embedded chain, then
//! restarted: in the end every scan is stored once and every entry is on
//! chain exactly once. On SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "support/process.rs"]
mod process;
#[path = "support/stripe_standin.rs"]
mod stripe_standin;

use std::time::{Duration, Instant};

use common::*;
use ed25519_dalek::SigningKey;
use process::{enrol, free_port, now, start, start_with_env, upload_batch, write_config};
use shared::wire::ScanRecord;
use solana_sdk::signature::Keypair;
use solana_sdk::signer::Signer;

/// Kills per backend: `SERVER_KILL_LOOPS` (default 8). Each round acks
/// about nine uploads before its kill, so the event gets three scans'
/// worth of tickets per kill (at least 24) and every kill has work in flight.
/// The long run: `SERVER_KILL_LOOPS=100 cargo nextest run --workspace -E 'binary(kill)'`.
fn kills() -> usize {
    std::env::var("SERVER_KILL_LOOPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8)
}

/// Uploads `scans` in time order, in batches of up to 3 consecutive scans of
/// one gate, as gates do; stops at the first failure. Returns the acked ids.
async fn upload_in_order(
    gates: &[Gate; 2],
    scans: &[(usize, ScanRecord)],
    acked: &std::sync::Mutex<Vec<uuid::Uuid>>,
) {
    let mut i = 0;
    while i < scans.len() {
        let gate = scans[i].0;
        let mut batch = Vec::new();
        while i < scans.len() && scans[i].0 == gate && batch.len() < 3 {
            batch.push(scans[i].1.clone());
            i += 1;
        }
        match upload_batch(&gates[gate], &batch).await {
            Some(ids) => acked.lock().unwrap().extend(ids),
            None => return,
        }
    }
}

on_both_backends!(
    killed_during_ingest_and_replay_every_entry_lands_once,
    a_purchase_cut_off_between_chain_and_database_is_completed_on_restart,
);

async fn killed_during_ingest_and_replay_every_entry_lands_once(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let database_url = match db {
        Db::Sqlite => format!("sqlite://{}", dir.path().join("sync.db").display()),
        Db::Postgres => postgres_database().await,
    };
    let port = free_port();
    let rpc_port = free_port();
    let config = write_config(dir.path(), &database_url, port, rpc_port, "");
    let kills = kills();
    let tickets = u32::try_from(kills * 3).unwrap().max(24);
    eprintln!("{db:?}: SERVER_KILL_LOOPS={kills}, {tickets} tickets");

    // Setup on a first run: event on chain, gates, tickets, two devices.
    let server = start(&config, port).await;
    let t0 = now();
    let event = 424_242u64;
    server
        .admin(
            reqwest::Method::POST,
            "/api/admin/events",
            serde_json::json!({
                "event_id": event, "name": "Kill test", "venue": "Lab",
                "starts_at": t0, "ends_at": t0 + 7200,
                "doors_open_at": t0 - 3600, "doors_close_at": t0 + 7200,
                "capacity": tickets.max(100),
                "tiers": [{ "name": "general", "price_lamports": 0, "supply": tickets.max(100) }],
                "reentry": { "allowed_after": { "min_outside_secs": 0 } },
                "transferable": true
            }),
        )
        .await;
    for (number, name, direction) in [(1, "north", "entry"), (3, "exit", "exit")] {
        server
            .admin(
                reqwest::Method::PUT,
                &format!("/api/admin/events/{event}/gates"),
                serde_json::json!({ "number": number, "name": name, "direction": direction }),
            )
            .await;
    }
    let wallets: Vec<String> = (0..tickets)
        .map(|_| Keypair::new().pubkey().to_string())
        .collect();
    // At most 100 recipients per request.
    for chunk in wallets.chunks(100) {
        server
            .admin(
                reqwest::Method::POST,
                &format!("/api/admin/events/{event}/tickets"),
                serde_json::json!({
                    "recipients": chunk.iter().map(|w| serde_json::json!({ "wallet": w })).collect::<Vec<_>>()
                }),
            )
            .await;
    }
    let north = enrol(&server.url, event, "north", 31).await;
    let exit = enrol(&server.url, event, "exit", 32).await;

    // Per ticket: entry, exit 10 s later, entry again 10 s after that; the
    // gates upload them in time order.
    let base = (t0 - 3000) * 1000;
    let mut scans: Vec<(usize, ScanRecord)> = Vec::new();
    for ticket in 0..tickets {
        let at = base + i64::from(ticket) * 700;
        for (gate, offset) in [(0usize, 0i64), (1, 10_000), (0, 20_000)] {
            let device = if gate == 0 { &north } else { &exit };
            let mut scan = device.scan(ticket, at + offset);
            scan.event_id = Some(event);
            scans.push((gate, scan));
        }
    }
    scans.sort_by_key(|(_, s)| s.scanned_at_ms);
    let gates = [north, exit];
    server.kill();

    // Kill the server at varying moments while the gates upload and the
    // replay worker records entries: right after the k-th acknowledged
    // upload, with the next upload in flight and replay transactions going.
    let mut pending = scans.clone();
    for round in 0..kills {
        let server = start(&config, port).await;
        let acked = std::sync::Mutex::new(Vec::new());
        let stop_after = 2 + round % 3;
        {
            let upload = upload_in_order(&gates, &pending, &acked);
            tokio::pin!(upload);
            loop {
                tokio::select! {
                    _ = &mut upload => break,
                    _ = tokio::time::sleep(Duration::from_millis(2)) => {
                        if acked.lock().unwrap().len() >= stop_after * 3 {
                            break;
                        }
                    }
                }
            }
            server.kill();
        }
        let acked = acked.into_inner().unwrap();
        pending.retain(|(_, s)| !acked.contains(&s.scan_id));
        eprintln!("kill {round}: {} scans still to upload", pending.len());
    }

    // Last start: everything once more (duplicates included), then wait for
    // the replay worker to finish.
    let server = start(&config, port).await;
    let acked = std::sync::Mutex::new(Vec::new());
    upload_in_order(&gates, &scans, &acked).await;
    assert_eq!(
        acked.into_inner().unwrap().len(),
        scans.len(),
        "every scan acked"
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let summary = loop {
        let status = server
            .admin(
                reqwest::Method::GET,
                &format!("/api/admin/events/{event}/replay"),
                serde_json::Value::Null,
            )
            .await;
        if status["waiting"] == 0 && status["submitted"] == 0 {
            break status;
        }
        assert!(Instant::now() < deadline, "replay did not finish: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("replay at the end: {summary}");
    if summary["superseded"] != 0 {
        let all = server
            .admin(
                reqwest::Method::GET,
                &format!("/api/admin/events/{event}/replay?scans=true"),
                serde_json::Value::Null,
            )
            .await;
        if let Ok(db) = rusqlite::Connection::open(dir.path().join("sync.db")) {
            let mut q = db
                .prepare("SELECT signature, state, entries, submitted_at, settled_at FROM replay_transactions ORDER BY submitted_at, signature")
                .unwrap();
            let rows = q
                .query_map([], |r| {
                    Ok(format!(
                        "tx {} {} entries={} submitted={} settled={:?}",
                        &r.get::<_, String>(0)?[..8],
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, Option<i64>>(4)?
                    ))
                })
                .unwrap();
            for row in rows {
                eprintln!("{}", row.unwrap());
            }
            let mut q = db
                .prepare("SELECT scan_id, replay_signature FROM scans WHERE ticket_id IN (0, 1, 2) ORDER BY scanned_at_ms")
                .unwrap();
            for row in q
                .query_map([], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
                })
                .unwrap()
            {
                eprintln!("scan {:?}", row.unwrap());
            }
        }
        for scan in all["scans"].as_array().unwrap() {
            let original = scans
                .iter()
                .find(|(_, s)| s.scan_id.to_string() == scan["scan_id"].as_str().unwrap())
                .unwrap();
            eprintln!(
                "{} ticket {} gate {} at {} -> {} {}",
                scan["scan_id"],
                scan["ticket_id"],
                original.1.gate,
                original.1.scanned_at_ms,
                scan["state"],
                scan["error"]
            );
        }
    }
    // Every scan is settled and all are on chain: they arrived in time order.
    assert_eq!(summary["confirmed"], 3 * tickets, "{summary}");
    assert_eq!(summary["superseded"], 0, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    let authority: String = server
        .admin(
            reqwest::Method::GET,
            "/api/admin/chain",
            serde_json::Value::Null,
        )
        .await["authority"]
        .as_str()
        .unwrap()
        .to_owned();
    // The running server's chain, through its Solana JSON-RPC face, read by
    // the real RPC client: the event account is there.
    let rpc = solana_rpc_client::nonblocking::rpc_client::RpcClient::new(format!(
        "http://127.0.0.1:{rpc_port}"
    ));
    let event_account = rpc
        .get_account(&ticketing::client::event_address(&authority.parse().unwrap(), event).0)
        .await
        .unwrap();
    assert_eq!(event_account.owner, ticketing::ID);
    server.terminate();

    // The chain file itself: two entries per ticket, holder inside.
    let chain = sync_server::chain::embedded::EmbeddedChain::open(&dir.path().join("chain.sqlite"))
        .await
        .unwrap();
    let event_address = ticketing::client::event_address(&authority.parse().unwrap(), event).0;
    let ids: Vec<u32> = (0..tickets).collect();
    let tickets = sync_server::chain::ops::tickets(&chain, &event_address, &ids)
        .await
        .unwrap();
    for (id, ticket) in tickets.into_iter().enumerate() {
        let ticket = ticket.unwrap();
        assert_eq!(
            ticket.entry_count, 2,
            "ticket {id}: each entry exactly once"
        );
        assert!(ticket.inside, "ticket {id}");
        assert_eq!(ticket.last_gate, 1, "ticket {id}");
    }
}

/// The seed's first takeaway, tested at its hardest point: the server dies
/// right after the chain accepted a paid purchase's mint and before the
/// database heard of it (and, for a second purchase, after the mint was
/// recorded and before it was sent). Restarted, it finds each transaction
/// by its signature and completes the purchase: one payment, one ticket.
async fn a_purchase_cut_off_between_chain_and_database_is_completed_on_restart(db: Db) {
    const SECRET_KEY: &str = "sk_test_crash";
    const WEBHOOK_SECRET: &str = "whsec_crash";
    let dir = tempfile::tempdir().unwrap();
    let database_url = match db {
        Db::Sqlite => format!("sqlite://{}", dir.path().join("sync.db").display()),
        Db::Postgres => postgres_database().await,
    };
    let port = free_port();
    let rpc_port = free_port();
    let config = write_config(dir.path(), &database_url, port, rpc_port, "");
    let url = format!("http://127.0.0.1:{port}");
    let stripe = stripe_standin::StripeStandin::start(
        SECRET_KEY,
        WEBHOOK_SECRET,
        &format!("{url}/api/payments/webhook"),
    )
    .await;
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        r#"[api]
jwt_secret = "{JWT_SECRET}"
purchase_lease_secs = 1
[stripe]
secret_key = "{SECRET_KEY}"
webhook_secret = "{WEBHOOK_SECRET}"
api_base = "{}"
"#,
        stripe.url
    ));
    std::fs::write(&config, text).unwrap();

    let mut events = Vec::new();
    let mut authority = None;
    for failpoint in ["purchase.after_chain", "purchase.mint_recorded"] {
        let mut server = start_with_env(
            &config,
            port,
            &[(sync_server::failpoint::FAILPOINT_ENV, failpoint)],
        )
        .await;
        let organizer = login(&url, &SigningKey::from_bytes(&[31; 32]), Some("organizer")).await;
        let buyer_key = SigningKey::from_bytes(&[32; 32]);
        let buyer = login(&url, &buyer_key, None).await;
        let http = reqwest::Client::new();
        let event: serde_json::Value = http
            .post(format!("{url}/api/events"))
            .bearer_auth(&organizer)
            .json(&serde_json::json!({
                "name": "Crash test", "venue": "Lab",
                "starts_at": now() + 86_400, "ends_at": now() + 90_000,
                "capacity": 10,
                "tiers": [{ "name": "general", "price_lamports": 0, "supply": 10, "card_price": 900 }]
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let event_id = event["event_id"].as_u64().unwrap();
        let bought: serde_json::Value = http
            .post(format!("{url}/api/tickets/purchase"))
            .bearer_auth(&buyer)
            .json(&serde_json::json!({ "event_id": event_id, "method": "card" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let intent = bought["card"]["payment_intent"]
            .as_str()
            .unwrap()
            .to_owned();
        let purchase_id = bought["purchase_id"].as_str().unwrap().to_owned();
        // The payment succeeds; minting it hits the failpoint and the
        // process aborts (the webhook may or may not have been answered).
        let (event_one, _) = stripe.succeed(&intent).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        let exit = loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "{failpoint} was never reached");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(!exit.success(), "{failpoint}: aborted, not a clean exit");

        // Restarted without the failpoint: the purchase completes.
        let server = start(&config, port).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        let done = loop {
            let view: serde_json::Value = http
                .get(format!("{url}/api/purchases/{purchase_id}"))
                .bearer_auth(&buyer)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if view["status"] == "fulfilled" {
                break view;
            }
            assert!(Instant::now() < deadline, "{failpoint}: still {view}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(done["ticket_id"], 0, "{failpoint}: {done}");
        // Stripe's retry of the same event after the crash changes nothing.
        assert_eq!(stripe.redeliver(&event_one).await, 200);
        let mine: serde_json::Value = http
            .get(format!("{url}/api/tickets/my"))
            .bearer_auth(&buyer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let in_event = mine
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["event_id"] == event_id)
            .count();
        assert_eq!(in_event, 1, "{failpoint}: one ticket for one payment");
        authority = server
            .admin(
                reqwest::Method::GET,
                "/api/admin/chain",
                serde_json::Value::Null,
            )
            .await["authority"]
            .as_str()
            .unwrap()
            .parse()
            .ok();
        server.terminate();
        events.push(event_id);
    }
    let authority: solana_sdk::pubkey::Pubkey = authority.unwrap();
    let chain = sync_server::chain::embedded::EmbeddedChain::open(&dir.path().join("chain.sqlite"))
        .await
        .unwrap();
    for event_id in events {
        let on_chain = sync_server::chain::ops::event(&chain, &authority, event_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(on_chain.minted, 1, "event {event_id}: minted once");
    }
}
