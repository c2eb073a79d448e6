//! Crash-safe minting, on the real `sync-server` binary with its embedded
//! chain kept in a file: the server is SIGKILLed at random moments while a
//! batch mint and single mints run for one event (and while the batches a
//! kill cut off are being finished), restarted, and every request is retried
//! with its `Idempotency-Key`. In the end chain, database and seat counters
//! agree: every seat is sold at most once, no sold seat is lost, no
//! recipient holds two tickets for one request, every ticket on chain is in
//! the database, and a retry answers exactly what the first answer said.
//!
//! `MINT_KILL_LOOPS` (default 4) kills per backend, `MINT_KILL_SEED` the
//! random seed (printed, so a failure can be replayed). The long run:
//! `MINT_KILL_LOOPS=50 cargo test -p sync-server --test mint_kill -- --nocapture`.
//! On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "support/process.rs"]
mod process;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use process::{free_port, start, start_with_env, write_config};
use serde_json::{Value, json};
use solana_sdk::pubkey::Pubkey;
use solana_sdk::signature::Keypair;
use solana_sdk::signer::Signer;
use sqlx::Row;

on_both_backends!(
    killed_at_random_points_of_batch_and_concurrent_mints_chain_database_and_seats_agree,
    a_mint_cut_off_between_chain_and_database_is_settled_by_signature_on_restart,
);

/// The server's settings for these tests: wallet login on, a lease a
/// restarted server waits out quickly, no mint budget in the way.
const EXTRA_CONFIG: &str = r#"[api]
jwt_secret = "jwt-secret-for-tests-only-0123456789"
mint_lease_secs = 1
[api.rate_limits]
mint = { requests = 100000, period_secs = 1 }
"#;

/// splitmix64: a seeded, repeatable sequence without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One mint request as its caller makes and retries it.
#[derive(Clone)]
struct Mint {
    path: String,
    token: String,
    key: String,
    body: Value,
    /// `(wallet, tier)` in request order; every wallet is fresh.
    recipients: Vec<(String, u8)>,
    batch: bool,
    /// The first 201 answer's tickets.
    answer: Option<Vec<Value>>,
    request_id: Option<String>,
}

impl Mint {
    fn new(
        path: String,
        token: &str,
        key: String,
        batch: bool,
        recipients: Vec<(String, u8)>,
        event_id: u64,
    ) -> Self {
        let list: Vec<Value> = recipients
            .iter()
            .map(|(wallet, tier)| json!({ "wallet": wallet, "tier": tier }))
            .collect();
        let body = if path.starts_with("/api/admin/") {
            json!({ "recipients": list })
        } else if batch {
            json!({ "event_id": event_id, "recipients": list })
        } else {
            json!({ "event_id": event_id, "wallet": recipients[0].0, "tier": recipients[0].1 })
        };
        Self {
            path,
            token: token.to_owned(),
            key,
            body,
            recipients,
            batch,
            answer: None,
            request_id: None,
        }
    }

    /// The tickets of a 201 answer, whichever endpoint gave it.
    fn tickets_of(&self, body: &Value) -> Vec<Value> {
        if let Some(tickets) = body.get("tickets") {
            tickets.as_array().unwrap().clone()
        } else if body.is_array() {
            body.as_array().unwrap().clone()
        } else {
            vec![body.clone()]
        }
    }
}

/// One try of `mint`: the status, body and `Mint-Request-Id`, or `None`
/// when the server is gone.
async fn send(
    http: &reqwest::Client,
    url: &str,
    mint: &Mint,
) -> Option<(u16, Value, Option<String>)> {
    let r = http
        .post(format!("{url}{}", mint.path))
        .bearer_auth(&mint.token)
        .header("Idempotency-Key", &mint.key)
        .json(&mint.body)
        .send()
        .await
        .ok()?;
    let status = r.status().as_u16();
    let id = r
        .headers()
        .get("mint-request-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = r.json().await.ok()?;
    Some((status, body, id))
}

/// Takes in an answer: a 201 must equal any 201 given before, with one
/// ticket per recipient in order; a 202 is still minting; nothing else is
/// expected.
fn take_answer(mint: &mut Mint, status: u16, body: Value, id: Option<String>) -> bool {
    match status {
        201 => {
            let tickets = mint.tickets_of(&body);
            assert_eq!(tickets.len(), mint.recipients.len(), "{}: {body}", mint.key);
            for (ticket, (wallet, tier)) in tickets.iter().zip(&mint.recipients) {
                assert_eq!(ticket["owner"], json!(wallet), "{}: {ticket}", mint.key);
                assert_eq!(ticket["tier"], json!(tier), "{}: {ticket}", mint.key);
            }
            if let Some(first) = &mint.answer {
                assert_eq!(
                    first, &tickets,
                    "{}: a retry answers the first answer",
                    mint.key
                );
            }
            if let (Some(first), Some(id)) = (&mint.request_id, &id) {
                assert_eq!(first, id, "{}: one request id", mint.key);
            }
            mint.answer = Some(tickets);
            mint.request_id = id.or(mint.request_id.take());
            true
        }
        202 => {
            mint.request_id = id.or(mint.request_id.take());
            false
        }
        other => panic!("{}: unexpected {other}: {body}", mint.key),
    }
}

async fn database(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap()
}

/// Where the batch with idempotency key `key` stood when the server died:
/// `None` when it was never recorded, else its state and how many of its
/// tickets had a transaction recorded (sent or landed).
async fn batch_progress(db: &sqlx::AnyPool, key: &str) -> Option<(String, i64, i64)> {
    let rows = sqlx::query(
        "SELECT r.state AS state, i.state AS item_state FROM mint_requests r
         JOIN mint_items i ON i.request_id = r.request_id WHERE r.idempotency_key = $1",
    )
    .bind(key)
    .fetch_all(db)
    .await
    .unwrap();
    let first = rows.first()?;
    let state: String = first.try_get("state").unwrap();
    let on_chain = rows
        .iter()
        .filter(|r| {
            matches!(
                r.try_get::<String, _>("item_state").unwrap().as_str(),
                "sent" | "landed"
            )
        })
        .count() as i64;
    Some((state, on_chain, rows.len() as i64))
}

fn fresh_wallet() -> String {
    Keypair::new().pubkey().to_string()
}

struct Setup {
    database_url: String,
    config: std::path::PathBuf,
    port: u16,
    org: String,
    event_id: u64,
    authority: Pubkey,
}

/// A server's folder and database, an organizer wallet logged in and its
/// event (two tiers), with the server stopped.
async fn setup(db: Db, dir: &Path, capacity: u32) -> Setup {
    let database_url = match db {
        Db::Sqlite => format!("sqlite://{}", dir.join("sync.db").display()),
        Db::Postgres => postgres_database().await,
    };
    let port = free_port();
    let config = write_config(dir, &database_url, port, free_port(), EXTRA_CONFIG);
    let server = start(&config, port).await;
    let org = login(&server.url, &wallet(61), Some("organizer")).await;
    let t0 = process::now();
    let (status, created) = {
        let r = reqwest::Client::new()
            .post(format!("{}/api/events", server.url))
            .bearer_auth(&org)
            .json(&json!({
                "name": "Crash Minting", "venue": "Lab",
                "starts_at": t0 + 86_400, "ends_at": t0 + 90_000, "capacity": capacity,
                "tiers": [
                    { "name": "general", "price_lamports": 0, "supply": capacity / 2 },
                    { "name": "vip", "price_lamports": 0, "supply": capacity - capacity / 2 }
                ]
            }))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(status, 201, "{created}");
    let authority = server
        .admin(reqwest::Method::GET, "/api/admin/chain", Value::Null)
        .await["authority"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    server.terminate();
    Setup {
        database_url,
        config,
        port,
        org,
        event_id: created["event_id"].as_u64().unwrap(),
        authority,
    }
}

async fn killed_at_random_points_of_batch_and_concurrent_mints_chain_database_and_seats_agree(
    db: Db,
) {
    let loops = env_number("MINT_KILL_LOOPS", 4);
    let seed = env_number(
        "MINT_KILL_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    eprintln!("{db:?}: MINT_KILL_LOOPS={loops} MINT_KILL_SEED={seed}");
    let mut rng = Rng(seed);
    let began = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let s = setup(db, dir.path(), 100_000).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let admin_path = format!("/api/admin/events/{}/tickets", s.event_id);
    let batch_of = |rng: &mut Rng, n: usize| -> Vec<(String, u8)> {
        (0..n)
            .map(|_| (fresh_wallet(), rng.below(2) as u8))
            .collect()
    };

    // A batch of 100 nobody kills: how long it takes here sets the window
    // the kills fall in.
    let server = start(&s.config, s.port).await;
    let mut warm = Mint::new(
        admin_path.clone(),
        ADMIN,
        "warm-up".into(),
        true,
        batch_of(&mut rng, 100),
        s.event_id,
    );
    let timer = Instant::now();
    let (status, body, id) = send(&http, &server.url, &warm).await.unwrap();
    assert!(
        take_answer(&mut warm, status, body, id),
        "the warm-up batch completed"
    );
    let full_batch_ms = (timer.elapsed().as_millis() as u64).max(20);
    eprintln!("a batch of 100 takes {full_batch_ms} ms");
    let mut mints = vec![warm];
    let mut server = Some(server);

    // Kills that fell while a batch had some but not all of its tickets
    // recorded for the chain, and had moved since the kill before.
    let mut part_way = 0;
    let mut seen: HashMap<String, (i64, i64)> = HashMap::new();
    for round in 0..loops {
        let running = match server.take() {
            Some(running) => running,
            None => start(&s.config, s.port).await,
        };
        // This round's batch (admin API or the wallet API) and one or two
        // singles, beside the retries of whatever earlier rounds left open.
        let size = 20 + rng.below(81) as usize;
        let (path, token) = if rng.below(2) == 0 {
            (admin_path.clone(), ADMIN)
        } else {
            ("/api/tickets/batch-mint".to_owned(), s.org.as_str())
        };
        let batch_key = format!("batch-{round}");
        mints.push(Mint::new(
            path,
            token,
            batch_key.clone(),
            true,
            batch_of(&mut rng, size),
            s.event_id,
        ));
        for single in 0..=rng.below(2) {
            mints.push(Mint::new(
                "/api/tickets/mint".into(),
                &s.org,
                format!("single-{round}-{single}"),
                false,
                batch_of(&mut rng, 1),
                s.event_id,
            ));
        }
        let open: Vec<usize> = (0..mints.len())
            .filter(|i| mints[*i].answer.is_none())
            .collect();
        let tasks: Vec<_> = open
            .iter()
            .map(|&i| {
                let (http, url, mint) = (http.clone(), running.url.clone(), mints[i].clone());
                tokio::spawn(async move { send(&http, &url, &mint).await })
            })
            .collect();
        // Mostly within this round's batch; one kill in three may also
        // fall while a restarted server finishes what earlier kills cut
        // off (once their lease, 1 s, ran out).
        let mut window = full_batch_ms * size as u64 / 100 * 6 / 5 + 20;
        if rng.below(3) == 0 {
            window += 2500;
        }
        let delay = rng.below(window);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        running.kill();
        for (&i, task) in open.iter().zip(tasks) {
            if let Some((status, body, id)) = task.await.unwrap() {
                take_answer(&mut mints[i], status, body, id);
            }
        }
        // Where the cut fell, read from the database while the server is down.
        let pool = database(&s.database_url).await;
        let mut cut = Vec::new();
        let mut cut_part_way = false;
        for mint in mints.iter().filter(|m| m.batch) {
            if let Some((state, sent, total)) = batch_progress(&pool, &mint.key).await
                && state == "minting"
            {
                cut.push(format!("{} {sent}/{total}", mint.key));
                let moved = seen.insert(mint.key.clone(), (sent, total)) != Some((sent, total));
                cut_part_way |= moved && sent > 0 && sent < total;
            }
        }
        pool.close().await;
        part_way += usize::from(cut_part_way);
        eprintln!("kill {round} after {delay} ms: batches open {cut:?}");
    }

    // Restarted for good: every request retried with its key until it
    // answers 201, each answer the same as any given before.
    let running = start(&s.config, s.port).await;
    let deadline = Instant::now() + Duration::from_secs(600);
    for mint in &mut mints {
        loop {
            if let Some((status, body, id)) = send(&http, &running.url, mint).await
                && take_answer(mint, status, body, id)
            {
                break;
            }
            assert!(Instant::now() < deadline, "{} never completed", mint.key);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    for mint in &mints {
        let id = mint
            .request_id
            .as_ref()
            .expect("every answer names its request");
        let view = running
            .admin(
                reqwest::Method::GET,
                &format!("/api/admin/mints/{id}"),
                Value::Null,
            )
            .await;
        assert_eq!(view["state"], "completed", "{view}");
    }
    running.terminate();
    check_agreement(&s, &mints).await;
    eprintln!(
        "{db:?}: {loops} kills, {part_way} cut a batch part way (tickets of it recorded for the chain, not all landed); {} requests, {:.1} s",
        mints.len(),
        began.elapsed().as_secs_f64()
    );
}

/// Chain (read from its file), database and seat counters agree with each
/// other and with the requests' answers.
async fn check_agreement(s: &Setup, mints: &[Mint]) {
    let dir = s.config.parent().unwrap();
    let chain = sync_server::chain::embedded::EmbeddedChain::open(&dir.join("chain.sqlite"))
        .await
        .unwrap();
    let event = sync_server::chain::ops::event(&chain, &s.authority, s.event_id)
        .await
        .unwrap()
        .unwrap();
    let address = ticketing::client::event_address(&s.authority, s.event_id).0;
    let ids: Vec<u32> = (0..event.minted).collect();
    let mut on_chain = Vec::new();
    for chunk in ids.chunks(100) {
        on_chain.extend(
            sync_server::chain::ops::tickets(&chain, &address, chunk)
                .await
                .unwrap()
                .into_iter()
                .map(|t| t.expect("every id below minted is a ticket")),
        );
    }
    // One ticket per recipient of every request, and no other ticket.
    let wanted: HashMap<String, u8> = mints
        .iter()
        .flat_map(|m| m.recipients.iter().cloned())
        .collect();
    assert_eq!(
        on_chain.len(),
        wanted.len(),
        "tickets on chain = tickets asked for"
    );
    let mut held: HashMap<String, u32> = HashMap::new();
    for ticket in &on_chain {
        let owner = ticket.owner.to_string();
        assert_eq!(
            wanted.get(&owner),
            Some(&ticket.tier),
            "{owner} asked for this tier"
        );
        *held.entry(owner).or_default() += 1;
    }
    assert!(
        held.values().all(|n| *n == 1),
        "no recipient holds two tickets"
    );
    for mint in mints {
        for (ticket, (wallet, _)) in mint.answer.as_ref().unwrap().iter().zip(&mint.recipients) {
            let id = ticket["ticket_id"].as_u64().unwrap() as usize;
            assert_eq!(
                &on_chain[id].owner.to_string(),
                wallet,
                "{}: answered ticket {id}",
                mint.key
            );
        }
    }
    // Every ticket on chain is in the database, as the chain has it.
    let db = database(&s.database_url).await;
    let rows = sqlx::query("SELECT ticket_id, owner, tier FROM tickets WHERE event_id = $1")
        .bind(s.event_id as i64)
        .fetch_all(&db)
        .await
        .unwrap();
    let known: HashMap<u32, (String, u8)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get::<i64, _>("ticket_id").unwrap() as u32,
                (
                    r.try_get::<String, _>("owner").unwrap(),
                    r.try_get::<i64, _>("tier").unwrap() as u8,
                ),
            )
        })
        .collect();
    assert_eq!(
        known.len(),
        on_chain.len(),
        "the database has exactly the chain's tickets"
    );
    for (id, ticket) in on_chain.iter().enumerate() {
        assert_eq!(
            known.get(&(id as u32)),
            Some(&(ticket.owner.to_string(), ticket.tier)),
            "ticket {id}"
        );
    }
    // Seats: taken = sold on chain, per tier and in all (none lost, none
    // sold twice).
    let rows = sqlx::query("SELECT tier, taken FROM inventory WHERE event_id = $1")
        .bind(s.event_id as i64)
        .fetch_all(&db)
        .await
        .unwrap();
    for row in rows {
        let tier: i64 = row.try_get("tier").unwrap();
        let taken: i64 = row.try_get("taken").unwrap();
        let sold = if tier == sync_server::store::EVENT_CAPACITY {
            event.minted
        } else {
            event.tiers[tier as usize].sold
        };
        assert_eq!(taken, i64::from(sold), "seats of tier {tier}");
    }
    let open: i64 = sqlx::query("SELECT COUNT(*) AS n FROM mint_items WHERE state <> 'landed'")
        .fetch_one(&db)
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
    assert_eq!(open, 0, "every ticket asked for landed");
}

/// The server dies at an exact step of a batch: right after writing the
/// request (nothing on chain yet), right after recording a transaction
/// (before it is sent), and right after the chain confirmed one (before the
/// database heard of it). Restarted, the retry with the same key answers
/// the batch whole, and the chain has each ticket once.
async fn a_mint_cut_off_between_chain_and_database_is_settled_by_signature_on_restart(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(db, dir.path(), 200).await;
    let http = reqwest::Client::new();
    let path = format!("/api/admin/events/{}/tickets", s.event_id);
    let mut mints: Vec<Mint> = Vec::new();
    for failpoint in [
        "mint.intent_recorded",
        "mint.transaction_recorded",
        "mint.transaction_landed",
    ] {
        let mut server = start_with_env(
            &s.config,
            s.port,
            &[(sync_server::failpoint::FAILPOINT_ENV, failpoint)],
        )
        .await;
        let recipients: Vec<(String, u8)> =
            (0..12).map(|i| (fresh_wallet(), (i % 2) as u8)).collect();
        let mut mint = Mint::new(
            path.clone(),
            ADMIN,
            format!("cut-{failpoint}"),
            true,
            recipients,
            s.event_id,
        );
        assert!(
            send(&http, &server.url, &mint).await.is_none(),
            "{failpoint}: the server died before answering"
        );
        let exit = server.child.wait().unwrap();
        assert!(!exit.success(), "{failpoint}: aborted");

        let server = start(&s.config, s.port).await;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (status, body, id) = send(&http, &server.url, &mint).await.unwrap();
            if take_answer(&mut mint, status, body, id) {
                break;
            }
            assert!(Instant::now() < deadline, "{failpoint}: never completed");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        server.terminate();
        mints.push(mint);
    }
    check_agreement(&s, &mints).await;
}
