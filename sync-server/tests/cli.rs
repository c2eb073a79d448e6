//! The server's command line against the real binary: `cache-file` writes an
//! event's gate cache, signed with the server key, for gates with no network.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "support/process.rs"]
mod process;

use std::process::Command;

use common::*;
use process::{free_port, now, write_config};
use shared::PublicKeyBytes;
use shared::wire::{CacheSnapshot, SignedPayload};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_file_writes_the_events_signed_cache_for_offline_gates() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}/sync.db", dir.path().display());
    let port = free_port();
    let config = write_config(dir.path(), &database_url, port, free_port(), "");
    let server = process::start(&config, port).await;
    let t0 = now() + 86_400;
    server
        .admin(
            reqwest::Method::POST,
            "/api/admin/events",
            serde_json::json!({
                "event_id": 77, "name": "Offline fair", "venue": "Barn",
                "starts_at": t0, "ends_at": t0 + 7200,
                "doors_open_at": t0 - 3600, "doors_close_at": t0 + 3600,
                "capacity": 10, "tiers": [{"name": "general", "price_lamports": 0, "supply": 10}],
                "reentry": "forbidden", "transferable": true
            }),
        )
        .await;
    let holder = address(&wallet(5));
    server
        .admin(
            reqwest::Method::POST,
            "/api/admin/events/77/tickets",
            serde_json::json!({"recipients": [{"wallet": holder}, {"wallet": holder}]}),
        )
        .await;
    server.terminate();

    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_sync-server"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let out_file = dir.path().join("gate-cache.bin");
    let out = cli(&[
        "cache-file",
        "--event",
        "77",
        "--out",
        out_file.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("event 77, 2 ticket(s)"), "{stdout}");

    // What a gate reads: signed by the server key gates pin at enrolment.
    let key = sync_server::load_or_create_server_key(&dir.path().join("server-key")).unwrap();
    let envelope = SignedPayload::from_file_bytes(&std::fs::read(&out_file).unwrap()).unwrap();
    let snapshot: CacheSnapshot = envelope
        .open(Some(&PublicKeyBytes::from(&key.verifying_key())))
        .unwrap();
    assert_eq!(snapshot.events.len(), 1);
    assert_eq!(snapshot.events[0].event_id, 77);
    assert_eq!(snapshot.tickets.len(), 2);
    assert!(snapshot.cursor > 0);
    assert_eq!(envelope.v, shared::wire::PROTOCOL_VERSION);

    // For gates from before protocol 5: the same cache in version 4.
    let old_file = dir.path().join("gate-cache-v4.bin");
    let out = cli(&[
        "cache-file",
        "--event",
        "77",
        "--protocol",
        "4",
        "--out",
        old_file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let old = SignedPayload::from_file_bytes(&std::fs::read(&old_file).unwrap()).unwrap();
    assert_eq!(old.v, 4);
    let old: CacheSnapshot = old.open(None).unwrap();
    assert_eq!((old.v, old.tickets.len()), (4, 2));
    // Older than any gate this server can write for: refused, no file.
    let too_old = dir.path().join("v3.bin");
    let out = cli(&[
        "cache-file",
        "--event",
        "77",
        "--protocol",
        "3",
        "--out",
        too_old.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--protocol"), "{stderr}");
    assert!(!too_old.exists());

    // No such event: a clear refusal, no file.
    let missing = dir.path().join("none.bin");
    let out = cli(&[
        "cache-file",
        "--event",
        "78",
        "--out",
        missing.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no event 78"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!missing.exists());
}
