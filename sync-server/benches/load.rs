//! The seed's k6 load scenario, re-created with Goose (a Locust-style load
//! generator from crates.io) against the real `sync-server` binary built
//! with the bench (release) profile: 100 concurrent users each loop over
//! browse events (`GET /api/events`), event details
//! (`GET /api/events/{id}`) and an unauthenticated purchase
//! (`POST /api/tickets/purchase`, expecting 401). Reported per backend:
//! requests per second and response time percentiles.
//!
//! `cargo bench -p sync-server --bench load` (LOAD_SECS, default 30, sets
//! the measured time; LOAD_USERS, default 100; PostgreSQL from
//! TEST_POSTGRES_URL, default the local server, skipped with a note if
//! absent). The seed's bar is p95 < 500 ms; ours is p99 < 25 ms.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: fail loudly

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey};
use goose::config::GooseConfiguration;
use goose::prelude::*;
use serde_json::{Value, json};

const ADMIN: &str = "bench-admin-token-0123456789";
const JWT: &str = "bench-jwt-secret-0123456789-0123456789";
const EVENTS: usize = 25;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

async fn start(dir: &Path, database_url: &str) -> Server {
    let port = free_port();
    let config = dir.join("sync.toml");
    std::fs::write(
        &config,
        format!(
            r#"listen = "127.0.0.1:{port}"
database_url = "{database_url}"
server_key_file = "{dir}/server-key"
admin_token = "{ADMIN}"
[chain]
embedded_file = "{dir}/chain.sqlite"
authority_key_file = "{dir}/authority.json"
issuer_key_file = "{dir}/issuer-key"
[replay]
enabled = false
[api]
jwt_secret = "{JWT}"
[api.rate_limits.mint]
requests = 1000
period_secs = 1
"#,
            dir = dir.display()
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_sync-server"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !reqwest::get(format!("{url}/health"))
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "the server did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Server { child, url }
}

/// Logs an organizer in and creates events to browse.
async fn seed_events(url: &str) {
    let http = reqwest::Client::new();
    let key = SigningKey::from_bytes(&[7; 32]);
    let wallet = bs58::encode(key.verifying_key().to_bytes()).into_string();
    http.put(format!("{url}/api/admin/wallets/{wallet}/role"))
        .bearer_auth(ADMIN)
        .json(&json!({ "role": "organizer" }))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let nonce: Value = http
        .post(format!("{url}/api/auth/nonce"))
        .json(&json!({ "wallet": wallet }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let signature = key.sign(nonce["message"].as_str().unwrap().as_bytes());
    let login: Value = http
        .post(format!("{url}/api/auth/verify"))
        .json(&json!({ "wallet": wallet,
                       "signature": bs58::encode(signature.to_bytes()).into_string() }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for i in 0..EVENTS {
        let starts = now + 86_400 * (i as i64 + 1);
        http.post(format!("{url}/api/events"))
            .bearer_auth(token)
            .json(&json!({
                "name": format!("Load test night {i}"), "description": "A night of load",
                "venue": "Bench Hall", "starts_at": starts, "ends_at": starts + 14_400,
                "capacity": 1000,
                "tiers": [{ "name": "general", "price_lamports": 100_000_000, "supply": 900, "card_price": 2500 },
                          { "name": "vip", "price_lamports": 500_000_000, "supply": 100 }]
            }))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }
}

/// One iteration of the seed's scenario.
async fn browse_and_try_to_buy(user: &mut GooseUser) -> TransactionResult {
    let events = user.get("/api/events").await?;
    let first = match events.response {
        Ok(response) => response
            .json::<Value>()
            .await
            .ok()
            .and_then(|page| page["events"][0]["event_id"].as_u64()),
        Err(_) => None,
    };
    if let Some(event_id) = first {
        user.get(&format!("/api/events/{event_id}")).await?;
        let builder = user
            .get_request_builder(&GooseMethod::Post, "/api/tickets/purchase")?
            .header("content-type", "application/json")
            .body(json!({ "event_id": event_id, "tier": 0, "method": "card" }).to_string());
        let request = GooseRequest::builder()
            .method(GooseMethod::Post)
            .path("/api/tickets/purchase")
            .set_request_builder(builder)
            .expect_status_code(401)
            .build();
        user.request(request).await?;
    }
    Ok(())
}

fn percentile(times: &BTreeMap<usize, usize>, total: usize, p: f64) -> usize {
    let wanted = ((total as f64) * p).ceil() as usize;
    let mut seen = 0;
    for (ms, count) in times {
        seen += count;
        if seen >= wanted {
            return *ms;
        }
    }
    times.keys().next_back().copied().unwrap_or(0)
}

async fn attack(backend: &str, url: &str) {
    let users = env_number("LOAD_USERS", 100);
    let secs = env_number("LOAD_SECS", 30);
    let metrics = GooseAttack::initialize_with_config(GooseConfiguration::default())
        .unwrap()
        .register_scenario(
            scenario!("BrowseAndTryToBuy")
                .register_transaction(transaction!(browse_and_try_to_buy)),
        )
        .set_default(GooseDefault::Host, url)
        .unwrap()
        .set_default(GooseDefault::Users, users)
        .unwrap()
        .set_default(GooseDefault::HatchRate, "50")
        .unwrap()
        .set_default(GooseDefault::RunTime, secs)
        .unwrap()
        .set_default(GooseDefault::NoPrintMetrics, true)
        .unwrap()
        .set_default(GooseDefault::Quiet, 1)
        .unwrap()
        .execute()
        .await
        .unwrap();
    let mut all: BTreeMap<usize, usize> = BTreeMap::new();
    let (mut total, mut failed) = (0, 0);
    println!("\n{backend}: {users} users, {secs} s measured");
    println!(
        "  {:<34} {:>9} {:>6} {:>6} {:>6} {:>6} {:>6}",
        "request", "count", "fail", "p50", "p95", "p99", "max"
    );
    let mut rows: Vec<_> = metrics.requests.values().collect();
    rows.sort_by(|a, b| a.path.cmp(&b.path));
    for r in rows {
        let n = r.raw_data.counter;
        for (ms, count) in &r.raw_data.times {
            *all.entry(*ms).or_default() += count;
        }
        total += n;
        failed += r.fail_count;
        println!(
            "  {:<34} {:>9} {:>6} {:>4}ms {:>4}ms {:>4}ms {:>4}ms",
            format!("{:?} {}", r.method, r.path),
            n,
            r.fail_count,
            percentile(&r.raw_data.times, n, 0.50),
            percentile(&r.raw_data.times, n, 0.95),
            percentile(&r.raw_data.times, n, 0.99),
            r.raw_data.maximum_time,
        );
    }
    let duration = metrics.duration.max(1);
    println!(
        "  {:<34} {:>9} {:>6} {:>4}ms {:>4}ms {:>4}ms   {:.0} requests/s",
        "all",
        total,
        failed,
        percentile(&all, total, 0.50),
        percentile(&all, total, 0.95),
        percentile(&all, total, 0.99),
        total as f64 / duration as f64,
    );
}

async fn postgres_database() -> Option<String> {
    let admin_url = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url)
        .await
        .ok()?;
    let name = format!("load_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .ok()?;
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url.as_str(), |(b, _)| b);
    Some(format!("{base}/{name}"))
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // that asks for a run.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sqlite = dir.path().join("sqlite");
    std::fs::create_dir_all(&sqlite).unwrap();
    let url = format!("sqlite://{}", sqlite.join("sync.db").display());
    let server = start(&sqlite, &url).await;
    seed_events(&server.url).await;
    attack("SQLite", &server.url).await;
    drop(server);

    match postgres_database().await {
        Some(url) => {
            let pg = dir.path().join("postgres");
            std::fs::create_dir_all(&pg).unwrap();
            let server = start(&pg, &url).await;
            seed_events(&server.url).await;
            attack("PostgreSQL", &server.url).await;
        }
        None => println!("\nPostgreSQL: not reachable (TEST_POSTGRES_URL); skipped"),
    }
}
