//! Gate figures, measured side by side in one run on the same disk:
//! - decoded code -> durable verdict (p50/p99) next to one bare SQLite FULL commit,
//!   alone and while the camera worker decodes 1280x720 frames flat out;
//! - camera frame -> payload for 640x480 and 1280x720;
//! - 100,000-ticket cache: import time, lookup time, and the agent's resident memory.
//!
//! Run: `cargo bench -p gate-agent --bench gate` (set GATE_BENCH_DIR to put the
//! database on the disk you care about; default is the system temp dir).

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use gate_agent::gate::{Gate, Scan};
use gate_agent::store::Store;
use image::{GrayImage, Luma, imageops};
use shared::wire::{
    CacheSnapshot, CachedEvent, CachedTicket, PROTOCOL_VERSION, SignedPayload, TierInfo,
};
use shared::{
    Credential, CredentialBody, DoorsWindow, EventStatus, HolderProofPolicy, PublicKeyBytes,
    ReentryPolicy, TicketStatus, UnknownTicketPolicy,
};

const EVENT: u64 = 42;
const TICKETS: u32 = 100_000;

fn pk(k: &SigningKey) -> PublicKeyBytes {
    PublicKeyBytes::from(&k.verifying_key())
}

fn snapshot(issuer: &SigningKey, owner: &PublicKeyBytes, now: i64) -> CacheSnapshot {
    CacheSnapshot {
        v: PROTOCOL_VERSION,
        cursor: 1,
        generated_at: now,
        events: vec![CachedEvent {
            event_id: EVENT,
            name: "Bench".into(),
            status: EventStatus::Active,
            doors: DoorsWindow {
                opens_at: now - 3600,
                closes_at: now + 86_400,
            },
            issuer_keys: vec![pk(issuer)],
            tiers: vec![TierInfo {
                index: 0,
                name: "General".into(),
            }],
            reentry: ReentryPolicy::Forbidden,
            unknown_tickets: UnknownTicketPolicy::Reject,
            holder_proof: HolderProofPolicy::NotRequired,
            tier_gates: vec![],
            ends_at: now + 86_400,
            end_grace_secs: 0,
            undo_window_secs: 0,
        }],
        tickets: (1..=TICKETS)
            .map(|t| CachedTicket {
                event_id: EVENT,
                ticket_id: t,
                tier: 0,
                owner: *owner,
                generation: 1,
                status: TicketStatus::Active,
            })
            .collect(),
        presence: vec![],
        undone: vec![],
    }
}

fn code(issuer: &SigningKey, owner: &PublicKeyBytes, ticket: u32) -> String {
    let body = CredentialBody {
        event_id: EVENT,
        ticket_id: ticket,
        tier: 0,
        owner: *owner,
        generation: 1,
    };
    Credential::issue(body, issuer).encode()
}

fn percentiles(mut v: Vec<Duration>) -> (Duration, Duration, Duration) {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99), v[v.len() - 1])
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn bare_commits(dir: &Path, n: usize) -> Vec<Duration> {
    let conn = rusqlite::Connection::open(dir.join("bare.db")).unwrap();
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
        .unwrap();
    conn.execute_batch("PRAGMA synchronous=FULL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);")
        .unwrap();
    (0..n)
        .map(|i| {
            let t = Instant::now();
            conn.execute_batch(&format!(
                "BEGIN IMMEDIATE; INSERT INTO t (v) VALUES ('{i}'); COMMIT;"
            ))
            .unwrap();
            t.elapsed()
        })
        .collect()
}

fn verdicts(store: &mut Store, gate: &Gate, codes: &[String], now_ms: i64) -> Vec<Duration> {
    let source: Arc<str> = Arc::from("bench");
    codes
        .iter()
        .map(|c| {
            let scan = Scan {
                source: Arc::clone(&source),
                text: c.clone(),
            };
            let t = Instant::now();
            let rec = store
                .record_scan(|lookup| gate.evaluate(&scan, lookup, now_ms, uuid::Uuid::now_v7()))
                .unwrap();
            let elapsed = t.elapsed();
            assert!(rec.outcome.record.opened);
            elapsed
        })
        .collect()
}

fn qr_frame(text: &str, w: u32, h: u32) -> GrayImage {
    let qr =
        qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).unwrap();
    let module = (h / 3 / qr.width() as u32).max(2);
    let img = qr
        .render::<Luma<u8>>()
        .module_dimensions(module, module)
        .build();
    let mut frame = GrayImage::from_pixel(w, h, Luma([190]));
    imageops::overlay(
        &mut frame,
        &img,
        i64::from((w - img.width()) / 3),
        i64::from((h - img.height()) / 2),
    );
    imageproc::noise::gaussian_noise(&frame, 0.0, 8.0, 1)
}

fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() {
    let base = std::env::var_os("GATE_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(base).unwrap();
    let issuer = SigningKey::from_bytes(&[1; 32]);
    let server = SigningKey::from_bytes(&[4; 32]);
    let owner = pk(&SigningKey::from_bytes(&[7; 32]));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let now_ms = now.as_millis() as i64;
    let snap = snapshot(&issuer, &owner, now_ms / 1000);

    println!("## gate-agent figures ({})\n", std::env::consts::ARCH);

    // Cache import and lookup.
    let db = dir.path().join("gate.db");
    let mut store = Store::open(&db).unwrap();
    let t = Instant::now();
    store.import_snapshot(&snap, &pk(&server), now_ms).unwrap();
    let import = t.elapsed();
    let lookups = 20_000u32;
    let t = Instant::now();
    for i in 0..lookups {
        let id = 1 + (i.wrapping_mul(7919) % TICKETS);
        assert!(store.ticket_state(EVENT, id).unwrap().is_some());
    }
    let lookup = t.elapsed() / lookups;
    println!("| 100,000-ticket cache | figure |\n|---|---|");
    println!("| import (one transaction, FULL sync) | {} |", ms(import));
    println!(
        "| lookup by ticket id (mean of {lookups}) | {:.1} µs |",
        lookup.as_secs_f64() * 1e6
    );

    // Verdict latency next to the bare commit, on the same disk.
    let n = 400;
    let gate = Gate::new(
        &gate_agent::config::GateConfig::default(),
        &store.events().unwrap(),
    );
    let codes: Vec<String> = (1..=n as u32)
        .map(|t| code(&issuer, &owner, t * 97))
        .collect();
    let bare = percentiles(bare_commits(dir.path(), n));
    let alone = percentiles(verdicts(&mut store, &gate, &codes, now_ms));
    // Same again while a camera worker decodes 1280x720 frames without pause.
    let busy = Arc::new(AtomicBool::new(true));
    let frame720 = qr_frame(&code(&issuer, &owner, 1), 1280, 720);
    let camera = {
        let busy = Arc::clone(&busy);
        let frame = frame720.clone();
        std::thread::spawn(move || {
            let decoder = gate_agent::qr::rxing_decoder();
            let mut frames = 0u32;
            while busy.load(Ordering::Relaxed) {
                let _ = gate_agent::qr::decode_within_budget(
                    &decoder,
                    &frame,
                    Duration::from_millis(120),
                );
                frames += 1;
            }
            frames
        })
    };
    let codes2: Vec<String> = (1..=n as u32)
        .map(|t| code(&issuer, &owner, t * 97 + 1))
        .collect();
    let with_camera = percentiles(verdicts(&mut store, &gate, &codes2, now_ms));
    busy.store(false, Ordering::Relaxed);
    let camera_frames = camera.join().unwrap();
    println!("\n| durable verdict ({n} scans each) | p50 | p99 | max |\n|---|---|---|---|");
    println!(
        "| bare SQLite commit (WAL, synchronous=FULL) | {} | {} | {} |",
        ms(bare.0),
        ms(bare.1),
        ms(bare.2)
    );
    println!(
        "| decoded code -> verify -> decide -> committed journal | {} | {} | {} |",
        ms(alone.0),
        ms(alone.1),
        ms(alone.2)
    );
    println!(
        "| same, camera worker decoding 1280x720 meanwhile ({camera_frames} frames) | {} | {} | {} |",
        ms(with_camera.0),
        ms(with_camera.1),
        ms(with_camera.2)
    );
    println!(
        "\nratio p50 verdict / bare commit: {:.2}",
        alone.0.as_secs_f64() / bare.0.as_secs_f64()
    );

    // Frame -> payload.
    let decoder = gate_agent::qr::rxing_decoder();
    println!("\n| camera frame -> payload (30 frames) | p50 | p99 |\n|---|---|---|");
    for (w, h) in [(640, 480), (1280, 720)] {
        let frame = qr_frame(&code(&issuer, &owner, 5), w, h);
        let times: Vec<Duration> = (0..30)
            .map(|_| {
                let t = Instant::now();
                let found =
                    gate_agent::qr::decode_within_budget(&decoder, &frame, Duration::from_secs(1));
                assert_eq!(found.len(), 1);
                t.elapsed()
            })
            .collect();
        let (p50, p99, _) = percentiles(times);
        println!("| {w}x{h} | {} | {} |", ms(p50), ms(p99));
    }

    // The agent's resident memory with the 100k cache, after 200 scans.
    drop(store);
    let cache_file = dir.path().join("cache.bin");
    std::fs::write(
        &cache_file,
        SignedPayload::sign(&snap, &server).to_file_bytes(),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_gate-agent");
    let db2 = dir.path().join("rss.db");
    let t = Instant::now();
    let out = Command::new(bin)
        .args([
            "--db",
            db2.to_str().unwrap(),
            "cache",
            "import",
            cache_file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli_import = t.elapsed();
    let mut child = Command::new(bin)
        .args([
            "--db",
            db2.to_str().unwrap(),
            "--set",
            "status.listen=\"127.0.0.1:0\"",
            "run",
            "--stdin",
        ])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for t in 0..200u32 {
        writeln!(stdin, "{}", code(&issuer, &owner, 1 + t * 311)).unwrap();
    }
    stdin.flush().unwrap();
    let check = Store::open(&db2).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while check.journal(None).unwrap().len() < 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (rss, hwm) = rss_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    println!("\n| agent process, 100,000-ticket cache | figure |\n|---|---|");
    println!(
        "| `gate-agent cache import` of the signed file (whole command) | {} |",
        ms(cli_import)
    );
    println!(
        "| resident memory after 200 scans (VmRSS) | {:.1} MiB |",
        rss as f64 / 1024.0
    );
    println!(
        "| peak resident memory (VmHWM) | {:.1} MiB |",
        hwm as f64 / 1024.0
    );
}
