//! Replay figures on the embedded chain with the real program: a gate agent
//! admits N tickets (codes read from QR images), its journal reaches the
//! server, and the replay worker records every entry on chain. Prints
//! minting throughput, the gate's verdict time, entries replayed per second
//! and per transaction, and the fee per entry.
//!
//! `cargo bench -p end-to-end --bench replay` (N with REPLAY_BENCH_TICKETS,
//! default 400).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: fail loudly

use std::time::{Duration, Instant};

use end_to_end::*;
use reqwest::Method;
use serde_json::json;
use solana_sdk::signature::{Keypair, Signer};

fn main() {
    let n: usize = std::env::var("REPLAY_BENCH_TICKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let dir = tempfile::tempdir().unwrap();
    // The worker stays off while the gate scans, so the replay is timed alone.
    let server = Server::start_with(&dir.path().join("server"), None, |c| {
        c.replay.enabled = false;
    })
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let event = 99u64;
    server
        .admin_ok(
            Method::POST,
            "/api/admin/events",
            Some(json!({
                "event_id": event, "name": "Bench", "venue": "Arena",
                "starts_at": now, "ends_at": now + 7200,
                "doors_open_at": now - 600, "doors_close_at": now + 7200,
                "capacity": 100000,
                "tiers": [{ "name": "general", "price_lamports": 0, "supply": 100000 }],
                "reentry": "forbidden", "transferable": true
            })),
            201,
        )
        .unwrap();
    server
        .admin_ok(
            Method::PUT,
            &format!("/api/admin/events/{event}/gates"),
            Some(json!({ "number": 1, "name": "north", "direction": "entry" })),
            204,
        )
        .unwrap();

    let started = Instant::now();
    let mut codes = Vec::with_capacity(n);
    let wallets: Vec<Keypair> = (0..n).map(|_| Keypair::new()).collect();
    for chunk in wallets.chunks(100) {
        let minted = server
            .admin_ok(
                Method::POST,
                &format!("/api/admin/events/{event}/tickets"),
                Some(json!({
                    "recipients": chunk.iter().map(|w| json!({ "wallet": w.pubkey().to_string() })).collect::<Vec<_>>()
                })),
                201,
            )
            .unwrap();
        for t in minted["tickets"].as_array().unwrap() {
            codes.push(t["code"].as_str().unwrap().to_owned());
        }
    }
    let mint_secs = started.elapsed().as_secs_f64();

    let gate_dir = dir.path().join("gate");
    GateBox::enrol(
        &gate_dir,
        &server.url,
        &server.enrol_token(event, "north").unwrap(),
    )
    .unwrap();
    let gate = GateBox::start(&gate_dir, "north").unwrap();
    gate.wait_status("the cache", Duration::from_secs(60), |s| {
        s["online"] == true && s["setup_error"].is_null()
    })
    .unwrap();
    let mut verdicts = Vec::with_capacity(n);
    for code in &codes {
        let t = Instant::now();
        let entry = gate.scan(code).unwrap();
        verdicts.push(t.elapsed());
        assert!(entry.record.opened, "{entry:?}");
    }
    verdicts.sort();
    gate.wait_status("the upload", Duration::from_secs(120), |s| {
        s["counts"]["unsent"] == 0
    })
    .unwrap();

    let started = Instant::now();
    let summary = server.drain_replay(event).unwrap();
    let replay_secs = started.elapsed().as_secs_f64();
    assert_eq!(summary.confirmed as usize, n, "{summary:?}");

    let pct = |p: f64| verdicts[((verdicts.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1e3;
    println!("replay bench, embedded chain, SQLite, {n} tickets");
    println!(
        "mint:    {n} tickets in {mint_secs:.2} s = {:.0} tickets/s ({} per transaction)",
        n as f64 / mint_secs,
        ticketing::client::TokenStandard::SplToken.max_mint_batch()
    );
    println!(
        "gate:    scan to journaled verdict through the running agent p50 {:.1} ms, p99 {:.1} ms",
        pct(0.5),
        pct(0.99)
    );
    println!(
        "replay:  {} entries in {replay_secs:.2} s = {:.0} entries/s, {} transactions = {:.1} entries/tx",
        summary.confirmed,
        summary.confirmed as f64 / replay_secs,
        summary.transactions,
        summary.confirmed as f64 / summary.transactions as f64
    );
    println!(
        "fees:    {} lamports = {:.0} lamports per entry",
        summary.fees_lamports,
        summary.fees_lamports as f64 / summary.confirmed as f64
    );
    gate.stop();
    server.stop().unwrap();
}
