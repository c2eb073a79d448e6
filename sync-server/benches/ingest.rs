//! Gate-sync figures on the real server over real HTTP:
//! - scans ingested per second from 10 gates uploading signed batches of 100,
//!   on SQLite and on PostgreSQL;
//! - a cache snapshot of 100,000 tickets: size and build time;
//! - a delta of 1,000 changes: size.
//!
//! `cargo bench -p sync-server --bench ingest` (PostgreSQL from
//! TEST_POSTGRES_URL, default the local server; skipped with a note if absent).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: fail loudly

use std::sync::Arc;
use std::time::Instant;

use ed25519_dalek::{Signer, SigningKey};
use shared::wire::*;
use shared::*;
use sync_server::{AppState, Clock, Config, Store, SystemClock};
use uuid::Uuid;

const EVENT: u64 = 1_764_072_000_001;
const GATES: usize = 10;
const BATCH: usize = 100;
const BATCHES_PER_GATE: usize = 40;
const ADMIN: &str = "bench-admin-token-0123456789";

fn event(now: i64) -> CachedEvent {
    CachedEvent {
        event_id: EVENT,
        name: "Bench Arena".into(),
        status: EventStatus::Active,
        doors: DoorsWindow {
            opens_at: now - 3600,
            closes_at: now + 3600,
        },
        issuer_keys: vec![PublicKeyBytes([1; 32])],
        tiers: vec![TierInfo {
            index: 0,
            name: "general".into(),
        }],
        reentry: ReentryPolicy::Forbidden,
        unknown_tickets: UnknownTicketPolicy::AdmitIfSigned,
        holder_proof: HolderProofPolicy::NotRequired,
        tier_gates: vec![],
        ends_at: now + 3600,
        end_grace_secs: 0,
        undo_window_secs: 0,
    }
}

fn ticket(id: u32) -> CachedTicket {
    let mut owner = [0u8; 32];
    owner[..4].copy_from_slice(&id.to_le_bytes());
    CachedTicket {
        event_id: EVENT,
        ticket_id: id,
        tier: 0,
        owner: PublicKeyBytes(owner),
        generation: 0,
        status: TicketStatus::Active,
    }
}

struct Server {
    url: String,
    state: AppState,
    http: reqwest::Client,
}

async fn start(database_url: String, dir: &std::path::Path) -> Server {
    let config = Config {
        database_url: database_url.clone(),
        admin_token: ADMIN.into(),
        server_key_file: dir.join("key"),
        ..Config::default()
    };
    let store = Store::connect(&database_url).await.unwrap();
    let state = AppState::new(
        store,
        config,
        SigningKey::from_bytes(&[9; 32]),
        Arc::new(SystemClock),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let serving = state.clone();
    tokio::spawn(
        async move { sync_server::serve(serving, listener, std::future::pending()).await },
    );
    Server {
        url,
        state,
        http: reqwest::Client::new(),
    }
}

struct Device {
    id: Uuid,
    key: SigningKey,
    gate: u32,
}

async fn enrol(server: &Server, gate: u32) -> Device {
    let name = format!("gate-{gate}");
    let r = server
        .http
        .put(format!("{}/api/admin/events/{EVENT}/gates", server.url))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({ "number": gate, "name": name, "direction": "entry" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let token: serde_json::Value = server
        .http
        .post(format!(
            "{}/api/admin/events/{EVENT}/enrol-tokens",
            server.url
        ))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({ "gate": name }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = SigningKey::from_bytes(&[gate as u8 + 100; 32]);
    let response: EnrolResponse = server
        .http
        .post(format!("{}/gate/v1/enrol", server.url))
        .json(&EnrolRequest {
            v: PROTOCOL_VERSION,
            token: token["token"].as_str().unwrap().into(),
            device_key: PublicKeyBytes::from(&key.verifying_key()),
            agent_version: "bench".into(),
            hostname: None,
        })
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Device {
        id: response.device_id,
        key,
        gate,
    }
}

async fn upload(http: &reqwest::Client, url: &str, device: &Device, scans: Vec<ScanRecord>) {
    let body = serde_json::to_vec(&JournalBatch {
        v: PROTOCOL_VERSION,
        device_id: device.id,
        scans,
    })
    .unwrap();
    let ts = SystemClock.now();
    let nonce = Uuid::now_v7().simple().to_string();
    let sig = device.key.sign(&device_request_message(
        "POST",
        "/gate/v1/journal",
        ts,
        &nonce,
        &body,
    ));
    let r = http
        .post(format!("{url}/gate/v1/journal"))
        .header(HEADER_DEVICE_ID, device.id.to_string())
        .header(HEADER_TIMESTAMP, ts.to_string())
        .header(HEADER_NONCE, nonce)
        .header(HEADER_SIGNATURE, bs58::encode(sig.to_bytes()).into_string())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn ingest_rate(label: &str, server: &Server) {
    let now = SystemClock.now();
    server
        .state
        .publish_event(&event(now), &PublicKeyBytes([7; 32]))
        .await
        .unwrap();
    let tickets = (GATES * BATCH * BATCHES_PER_GATE) as u32;
    let devices: Vec<Device> = {
        let mut v = Vec::new();
        for gate in 1..=GATES as u32 {
            v.push(enrol(server, gate).await);
        }
        v
    };
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (g, device) in devices.into_iter().enumerate() {
        let http = server.http.clone();
        let url = server.url.clone();
        tasks.push(tokio::spawn(async move {
            for b in 0..BATCHES_PER_GATE {
                let scans = (0..BATCH)
                    .map(|i| {
                        let ticket = ((g * BATCHES_PER_GATE + b) * BATCH + i) as u32 % tickets + 1;
                        ScanRecord {
                            scan_id: Uuid::now_v7(),
                            gate: device.gate,
                            direction: Direction::Entry,
                            scanned_at_ms: now * 1000 + (b * BATCH + i) as i64,
                            source: "serial:/dev/ttyACM0".into(),
                            event_id: Some(EVENT),
                            ticket_id: Some(ticket),
                            generation: Some(0),
                            tier: Some(0),
                            outcome: "admitted".into(),
                            opened: true,
                            voids: None,
                        }
                    })
                    .collect();
                upload(&http, &url, &device, scans).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let total = GATES * BATCH * BATCHES_PER_GATE;
    assert_eq!(
        server.state.store.scan_count(EVENT).await.unwrap(),
        total as u64
    );
    println!(
        "ingest [{label}]: {total} scans from {GATES} gates in batches of {BATCH}: {secs:.2} s = {:.0} scans/s",
        total as f64 / secs
    );
}

async fn cache_sizes(server: &Server) {
    let now = SystemClock.now();
    let before = server.state.store.cursor(EVENT).await.unwrap();
    let tickets: Vec<_> = (1..=100_000).map(ticket).collect();
    for chunk in tickets.chunks(10_000) {
        server.state.publish_tickets(chunk).await.unwrap();
    }
    let started = Instant::now();
    let snapshot = server.state.store.snapshot(EVENT, now).await.unwrap();
    let signed = SignedPayload::sign(&snapshot, &server.state.server_key).to_file_bytes();
    let build = started.elapsed();
    println!(
        "snapshot [sqlite]: {} tickets, {} bytes ({:.1} bytes/ticket), built and signed in {:.0} ms",
        snapshot.tickets.len(),
        signed.len(),
        signed.len() as f64 / snapshot.tickets.len() as f64,
        build.as_secs_f64() * 1000.0
    );
    let cursor = server.state.store.cursor(EVENT).await.unwrap();
    assert!(cursor > before);
    let changed: Vec<_> = (1..=1000)
        .map(|id| {
            let mut t = ticket(id * 7);
            t.generation = 1;
            t.owner = PublicKeyBytes([3; 32]);
            t
        })
        .collect();
    server.state.publish_tickets(&changed).await.unwrap();
    let delta = server
        .state
        .store
        .delta(EVENT, cursor, 5000, now)
        .await
        .unwrap();
    let bytes = SignedPayload::sign(&delta, &server.state.server_key).to_file_bytes();
    println!(
        "delta [sqlite]: {} changes, {} bytes",
        delta.changes.len(),
        bytes.len()
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = start(
        format!("sqlite://{}", dir.path().join("bench.db").display()),
        dir.path(),
    )
    .await;
    ingest_rate("sqlite", &sqlite).await;
    cache_sizes(&sqlite).await;

    let admin_url = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    sqlx::any::install_default_drivers();
    match <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url).await {
        Err(e) => println!("ingest [postgres]: skipped, no server at {admin_url}: {e}"),
        Ok(mut conn) => {
            let name = format!("gate_bench_{}", Uuid::now_v7().simple());
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .unwrap();
            let (base, _) = admin_url.rsplit_once('/').unwrap();
            let pg = start(format!("{base}/{name}"), dir.path()).await;
            ingest_rate("postgres", &pg).await;
            drop(pg);
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await;
        }
    }
}
