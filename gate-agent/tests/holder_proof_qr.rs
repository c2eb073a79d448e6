//! The rotating code (a delegated holder proof, format version 2) as a gate
//! meets it: a phone screenshot of the QR code read by `gate-agent decode`,
//! the same code seen by a camera at arm's length, and the verdict
//! `gate-agent verify` gives offline for a fresh code and a screenshot.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Output};

use common::*;
use ed25519_dalek::SigningKey;
use image::{GrayImage, Luma, imageops};
use shared::{Credential, CredentialBody, DelegationRequest, DelegationScope, HolderProofPolicy};

fn agent(args: &[&str]) -> Output {
    Command::new(agent_bin())
        .args(args)
        .env_remove("GATE_AGENT_CONFIG")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
}

/// Ticket 1's live code as its page makes it: the server's code, the owner
/// wallet's approval of a browser key for a day, a proof signed at `at`.
fn live_code(venue: &Venue, at: u32) -> String {
    let body = CredentialBody {
        event_id: EVENT,
        ticket_id: 1,
        tier: 1,
        owner: public(&owner(1)),
        generation: 1,
    };
    let session = SigningKey::from_bytes(&[0x5e; 32]);
    let delegation = DelegationRequest {
        scope: DelegationScope::Ticket,
        session_key: public(&session),
        valid_from: at - 3600,
        valid_until: at + 20 * 3600,
    }
    .sign(&owner(1), &body);
    Credential::issue(body, &venue.issuer)
        .with_session_proof(delegation, &session, at)
        .encode()
}

/// A phone screenshot (1080 x 2340, portrait) of the ticket page: the QR
/// code at `module_px` screen pixels per module in a white card on a grey
/// page, with a dark header bar above it.
fn screenshot(code: &str, module_px: u32) -> GrayImage {
    let qr =
        qrcode::QrCode::with_error_correction_level(code.as_bytes(), qrcode::EcLevel::M).unwrap();
    let image = qr
        .render::<Luma<u8>>()
        .quiet_zone(true)
        .module_dimensions(module_px, module_px)
        .build();
    let mut screen = GrayImage::from_pixel(1080, 2340, Luma([235]));
    for y in 0..220 {
        for x in 0..1080 {
            screen.put_pixel(x, y, Luma([40]));
        }
    }
    let x = (1080 - image.width()) / 2;
    imageops::overlay(&mut screen, &image, i64::from(x), 600);
    screen
}

#[test]
fn gate_agent_decode_reads_phone_screenshots_of_the_rotating_code() {
    let venue = Venue::new();
    let code = live_code(&venue, now());
    assert_eq!(code.len(), 461);
    let qr =
        qrcode::QrCode::with_error_correction_level(code.as_bytes(), qrcode::EcLevel::M).unwrap();
    assert_eq!(qr.version(), qrcode::Version::Normal(13));
    assert_eq!(qr.width(), 69);

    let dir = tempfile::tempdir().unwrap();
    // 12 px per module fills most of a 1080-pixel-wide screen (924 px with
    // the quiet zone); 6 px is a small QR on a page with more on it.
    let mut files = Vec::new();
    for module_px in [12, 9, 6] {
        let path = dir.path().join(format!("ticket-page-{module_px}px.png"));
        screenshot(&code, module_px).save(&path).unwrap();
        files.push(path);
    }
    let mut args = vec!["decode"];
    args.extend(files.iter().map(|p| p.to_str().unwrap()));
    let out = agent(&args);
    assert!(out.status.success(), "{}", text(&out));
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(lines, vec![code.as_str(); 3], "{}", text(&out));
}

#[test]
fn the_rotating_code_is_read_by_a_camera_at_arm_s_length() {
    let venue = Venue::new();
    let code = live_code(&venue, now());
    // The phone held up to the gate's 640x480 camera: the screenshot's QR
    // area scaled to about 3 camera pixels per module, slightly blurred.
    let shot = screenshot(&code, 12);
    let card = imageops::crop_imm(&shot, 60, 560, 960, 960).to_image();
    let seen = imageops::resize(&card, 240, 240, imageops::FilterType::Triangle);
    let seen = imageops::blur(&seen, 0.6);
    let mut frame = GrayImage::from_pixel(640, 480, Luma([120]));
    imageops::overlay(&mut frame, &seen, 200, 120);
    let decoded = gate_agent::qr::decode_frame(&frame, true);
    assert_eq!(decoded, vec![code]);
}

#[test]
fn gate_agent_verify_admits_a_fresh_code_and_refuses_a_screenshot_offline() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gate.db");
    let dbs = db.to_str().unwrap();
    let venue = Venue::new();
    let mut snapshot = venue.snapshot_open_now(3);
    snapshot.events[0].holder_proof = HolderProofPolicy::Required { window_secs: 30 };
    let cache = venue.write_cache_file(dir.path(), &snapshot);
    let out = agent(&["--db", dbs, "cache", "import", cache.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));

    let out = agent(&["--db", dbs, "verify", &live_code(&venue, now())]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("OPEN: Welcome"), "{}", text(&out));

    let out = agent(&["--db", dbs, "verify", &live_code(&venue, now() - 120)]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("REFUSE: Code is a screenshot: older than 30 s (made 2 min ago)"),
        "{}",
        text(&out)
    );

    // The ticket's static code no longer opens this event's gates.
    let out = agent(&["--db", dbs, "verify", &venue.code(1)]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("REFUSE: Show the live code"),
        "{}",
        text(&out)
    );
}
