//! The way to outgrow one server, tested: two `sync-server` instances on
//! one PostgreSQL database and one Redis, behind a load balancer, with the
//! chain served over Solana JSON-RPC by a third process (so both talk to it
//! through the real RPC client). Four gates upload their journals through
//! the balancer while one instance after the other is killed with SIGKILL
//! and started again. In the end every scan is stored once, every entry is
//! on chain exactly once, no record went into two transactions, and the
//! rate-limit budget is one budget whichever instance answers.
//!
//! Needs PostgreSQL (TEST_POSTGRES_URL) and Redis (TEST_REDIS_URL, else
//! 127.0.0.1:6379); scripts/test.sh provides both. Kills:
//! `TWO_SERVER_KILLS` (default 6); the long run is
//! `TWO_SERVER_KILLS=100 cargo nextest run --workspace -E 'binary(two_servers)'`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/balancer.rs"]
mod balancer;
mod common;
#[path = "support/process.rs"]
mod process;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use balancer::Balancer;
use common::*;
use process::{admin, enrol, free_port, now, start, upload_batch, write_config};
use shared::wire::ScanRecord;
use solana_sdk::signature::Keypair;
use solana_sdk::signer::Signer;

fn kills() -> usize {
    std::env::var("TWO_SERVER_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6)
}

/// A Redis that answers, or `None` after saying why the test is skipped.
async fn redis_url() -> Option<String> {
    let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let connect = sync_server::adapters::ratelimit::RedisLimiter::connect(&url);
    if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(3), connect).await {
        return Some(url);
    }
    eprintln!(
        "SKIPPED: no Redis answered at {url}; set TEST_REDIS_URL or run scripts/test.sh, which starts one"
    );
    None
}

/// One instance's config: its own port, everything else shared.
fn instance_config(dir: &Path, keys: &Path, port: u16, shared: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("sync.toml");
    std::fs::write(
        &path,
        format!(
            r#"listen = "127.0.0.1:{port}"
server_key_file = "{keys}/server-key"
admin_token = "{ADMIN}"
{shared}"#,
            keys = keys.display()
        ),
    )
    .unwrap();
    path
}

/// Uploads `scans` in time order through `gates` (batches of up to three
/// consecutive scans of one gate), pausing `pace` between batches and
/// retrying each batch until some instance acknowledges it.
async fn upload_all(gates: &[Gate], scans: &[(usize, ScanRecord)], pace: Duration) -> usize {
    let (mut i, mut acked, mut retries) = (0, 0, 0);
    while i < scans.len() {
        let gate = scans[i].0;
        let mut batch = Vec::new();
        while i < scans.len() && scans[i].0 == gate && batch.len() < 3 {
            batch.push(scans[i].1.clone());
            i += 1;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(ids) = upload_batch(&gates[gate], &batch).await {
                assert_eq!(ids.len(), batch.len());
                acked += ids.len();
                break;
            }
            retries += 1;
            assert!(
                Instant::now() < deadline,
                "no instance took a batch for 60 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(pace).await;
    }
    eprintln!("uploaded {acked} scans, {retries} retried batches");
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_database_survive_killing_either() {
    let Some(redis) = redis_url().await else {
        return;
    };
    let kills = kills();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();

    // The chain: a server process with the embedded chain, serving it as
    // Solana JSON-RPC and doing nothing else.
    let node_dir = dir.path().join("chain-node");
    std::fs::create_dir_all(&node_dir).unwrap();
    let (node_port, rpc_port) = (free_port(), free_port());
    let node_config = write_config(
        &node_dir,
        &format!("sqlite://{}", node_dir.join("node.db").display()),
        node_port,
        rpc_port,
        "enabled = false\n",
    );
    let node = start(&node_config, node_port).await;

    // Two instances on one database, one Redis, one set of keys. The first
    // start creates the keys; the second must find them, so start in turn.
    let database_url = postgres_database().await;
    let prefix = format!("nft-gate-test:{}:", uuid::Uuid::now_v7().simple());
    let shared = format!(
        r#"database_url = "{database_url}"
[chain]
rpc_url = "http://127.0.0.1:{rpc_port}"
authority_key_file = "{keys}/authority.json"
issuer_key_file = "{keys}/issuer-key"
[replay]
idle_ms = 50
batch_max = 5
lease_secs = 5
[api]
jwt_secret = "{JWT_SECRET}"
redis_url = "{redis}"
redis_key_prefix = "{prefix}"
[api.rate_limits]
nonce = {{ requests = 5, period_secs = 3600 }}
"#,
        keys = keys.display()
    );
    let ports = [free_port(), free_port()];
    let configs = [
        instance_config(&dir.path().join("a"), &keys, ports[0], &shared),
        instance_config(&dir.path().join("b"), &keys, ports[1], &shared),
    ];
    let first = start(&configs[0], ports[0]).await;
    let second = start(&configs[1], ports[1]).await;
    let lb = Balancer::start(ports.to_vec()).await;
    let url = lb.url.clone();

    // The event, its four gates and tickets, set up through the balancer.
    // Two tickets a kill (three scans each), at least 40.
    let tickets = u32::try_from(kills * 2).unwrap().max(40);
    let t0 = now();
    let event = 515_151u64;
    admin(
        &url,
        reqwest::Method::POST,
        "/api/admin/events",
        serde_json::json!({
            "event_id": event, "name": "Two servers", "venue": "Lab",
            "starts_at": t0, "ends_at": t0 + 7200,
            "doors_open_at": t0 - 3600, "doors_close_at": t0 + 7200,
            "capacity": tickets.max(100),
            "tiers": [{ "name": "general", "price_lamports": 0, "supply": tickets.max(100) }],
            "reentry": { "allowed_after": { "min_outside_secs": 0 } },
            "transferable": true
        }),
    )
    .await;
    let layout = [
        (1, "north", "entry"),
        (2, "south", "entry"),
        (3, "east-exit", "exit"),
        (4, "west-exit", "exit"),
    ];
    for (number, name, direction) in layout {
        admin(
            &url,
            reqwest::Method::PUT,
            &format!("/api/admin/events/{event}/gates"),
            serde_json::json!({ "number": number, "name": name, "direction": direction }),
        )
        .await;
    }
    let wallets: Vec<serde_json::Value> = (0..tickets)
        .map(|_| serde_json::json!({ "wallet": Keypair::new().pubkey().to_string() }))
        .collect();
    // At most 100 recipients per request.
    for chunk in wallets.chunks(100) {
        admin(
            &url,
            reqwest::Method::POST,
            &format!("/api/admin/events/{event}/tickets"),
            serde_json::json!({ "recipients": chunk }),
        )
        .await;
    }
    let mut gates = Vec::new();
    for (i, (_, name, _)) in layout.iter().enumerate() {
        gates.push(enrol(&url, event, name, 41 + i as u8).await);
    }

    // Per ticket: in at one entry gate, out at one exit 10 s later, in
    // again 10 s after that; the gates upload in scan-time order.
    let base = (t0 - 3000) * 1000;
    let mut scans: Vec<(usize, ScanRecord)> = Vec::new();
    for ticket in 0..tickets {
        let at = base + i64::from(ticket) * 700;
        let (entry, exit) = ((ticket % 2) as usize, 2 + (ticket % 2) as usize);
        for (gate, offset) in [(entry, 0i64), (exit, 10_000), (entry, 20_000)] {
            let mut scan = gates[gate].scan(ticket, at + offset);
            scan.event_id = Some(event);
            scans.push((gate, scan));
        }
    }
    scans.sort_by_key(|(_, s)| s.scanned_at_ms);

    // The killer: every 1.5 s SIGKILL the next instance, then start it again
    // after half a second, while the gates upload and the replay runs.
    let instances = Arc::new(tokio::sync::Mutex::new([Some(first), Some(second)]));
    let killer = {
        let instances = instances.clone();
        let configs = configs.clone();
        tokio::spawn(async move {
            for round in 0..kills {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                let which = round % 2;
                let victim = instances.lock().await[which].take().unwrap();
                victim.kill();
                tokio::time::sleep(Duration::from_millis(500)).await;
                let back = start(&configs[which], ports[which]).await;
                instances.lock().await[which] = Some(back);
                eprintln!("kill {round}: instance {which} killed and restarted");
            }
        })
    };
    let batches = scans.len() / 2;
    let pace = Duration::from_millis(1500 * kills as u64 / batches as u64);
    let acked = upload_all(&gates, &scans, pace).await;
    assert_eq!(acked, scans.len(), "every scan acknowledged once uploaded");
    killer.await.unwrap();

    // A gate that never heard its acks sends everything again: no doubles.
    let again = upload_all(&gates, &scans, Duration::ZERO).await;
    assert_eq!(again, scans.len());

    let deadline = Instant::now() + Duration::from_secs(180);
    let summary = loop {
        let status = admin(
            &url,
            reqwest::Method::GET,
            &format!("/api/admin/events/{event}/replay"),
            serde_json::Value::Null,
        )
        .await;
        if status["waiting"] == 0 && status["submitted"] == 0 {
            break status;
        }
        assert!(Instant::now() < deadline, "replay did not finish: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!("replay at the end: {summary}");
    assert_eq!(summary["confirmed"], 3 * tickets, "{summary}");
    assert_eq!(summary["superseded"], 0, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");

    // The database both instances wrote: each scan once, and the confirmed
    // transactions carry each record once between them.
    sqlx::any::install_default_drivers();
    let mut db = <sqlx::AnyConnection as sqlx::Connection>::connect(&database_url)
        .await
        .unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM scans WHERE event_id = $1")
        .bind(event as i64)
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(stored, i64::from(3 * tickets), "each scan stored once");
    let carried: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(entries), 0)::BIGINT FROM replay_transactions WHERE event_id = $1 AND state = 'confirmed'",
    )
    .bind(event as i64)
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(
        carried,
        i64::from(3 * tickets),
        "no record went into two confirmed transactions"
    );

    // The chain, read through the real RPC client: each entry exactly once.
    let authority: solana_sdk::pubkey::Pubkey = admin(
        &url,
        reqwest::Method::GET,
        "/api/admin/chain",
        serde_json::Value::Null,
    )
    .await["authority"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let rpc = sync_server::chain::rpc::RpcChain::new(
        &format!("http://127.0.0.1:{rpc_port}"),
        Arc::new(Keypair::new()),
        Duration::from_secs(30),
    )
    .unwrap();
    let event_address = ticketing::client::event_address(&authority, event).0;
    let ids: Vec<u32> = (0..tickets).collect();
    let on_chain = sync_server::chain::ops::tickets(&rpc, &event_address, &ids)
        .await
        .unwrap();
    for (id, ticket) in on_chain.into_iter().enumerate() {
        let ticket = ticket.unwrap();
        assert_eq!(
            ticket.entry_count, 2,
            "ticket {id}: each entry exactly once"
        );
        assert!(ticket.inside, "ticket {id}");
    }

    // One rate-limit budget across both instances: 5 login nonces an hour
    // from this address, however the balancer spreads the requests.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let before = lb.spread();
    let mut answered = Vec::new();
    for _ in 0..10 {
        let r = http
            .post(format!("{url}/api/auth/nonce"))
            .json(&serde_json::json!({ "wallet": Keypair::new().pubkey().to_string() }))
            .send()
            .await
            .unwrap();
        answered.push(r.status().as_u16());
    }
    let after = lb.spread();
    assert!(
        after[0] > before[0] && after[1] > before[1],
        "the nonce requests reached both instances: {before:?} -> {after:?}"
    );
    assert_eq!(
        answered.iter().filter(|s| **s == 200).count(),
        5,
        "one shared budget of 5: {answered:?}"
    );
    assert!(answered[5..].iter().all(|s| *s == 429), "{answered:?}");
    eprintln!(
        "connections per instance: {:?}; none refused by both: {}",
        lb.spread(),
        lb.refused.load(std::sync::atomic::Ordering::Relaxed)
    );

    for instance in instances.lock().await.iter_mut() {
        if let Some(p) = instance.take() {
            p.terminate();
        }
    }
    node.terminate();
}
