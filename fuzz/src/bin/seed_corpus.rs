//! Writes the seed corpus of every fuzz target into `fuzz/corpus/<target>/`:
//! real credentials (with and without holder proofs), wire messages, signed
//! device requests, scanner streams, configuration files and QR frames.
//! The seeds are committed; rerun this after a format change:
//! `cargo run --manifest-path fuzz/Cargo.toml --bin seed_corpus`.

use std::path::Path;

use ed25519_dalek::{Signer, SigningKey};
use image::Luma;
use nft_gate_fuzz::corpus::fuzz_dir;
use nft_gate_fuzz::protocol::{EVENT_ID, NOW, device_key, issuer_key, server_key};
use shared::wire::{
    CacheChange, CacheDelta, CacheSnapshot, CachedEvent, CachedTicket, PROTOCOL_VERSION,
    PresenceUpdate, ScanRecord, SignedPayload, TierInfo, UndoneAdmission, device_request_message,
};
use shared::{
    Credential, CredentialBody, Direction, DoorsWindow, EventStatus, HolderProofPolicy, Presence,
    PublicKeyBytes, ReentryPolicy, TicketStatus, TierGates, UnknownTicketPolicy,
};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = fuzz_dir().join("corpus").join(target);
    if let Err(error) = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(Path::new(&dir).join(name), bytes))
    {
        panic!("cannot write the {target} seed {name}: {error}");
    }
}

fn wallet() -> SigningKey {
    SigningKey::from_bytes(&[9; 32])
}

fn credential(proof_at: Option<u32>) -> Credential {
    let body = CredentialBody {
        event_id: EVENT_ID,
        ticket_id: 17,
        tier: 1,
        owner: PublicKeyBytes::from(&wallet().verifying_key()),
        generation: 2,
    };
    let credential = Credential::issue(body, &issuer_key());
    match proof_at {
        Some(at) => credential.with_holder_proof(&wallet(), at),
        None => credential,
    }
}

fn event() -> CachedEvent {
    CachedEvent {
        event_id: EVENT_ID,
        name: "Harbour Lights".into(),
        status: EventStatus::Active,
        doors: DoorsWindow {
            opens_at: NOW - 3600,
            closes_at: NOW + 3600,
        },
        ends_at: NOW + 7200,
        issuer_keys: vec![PublicKeyBytes::from(&issuer_key().verifying_key())],
        tiers: vec![TierInfo {
            index: 1,
            name: "vip".into(),
        }],
        reentry: ReentryPolicy::AllowedAfter {
            min_outside_secs: 900,
        },
        unknown_tickets: UnknownTicketPolicy::AdmitIfSigned,
        holder_proof: HolderProofPolicy::Required { window_secs: 30 },
        tier_gates: vec![TierGates {
            tier: 1,
            gates: vec![1, 2],
        }],
        end_grace_secs: 600,
        undo_window_secs: 0,
    }
}

fn ticket() -> CachedTicket {
    CachedTicket {
        event_id: EVENT_ID,
        ticket_id: 17,
        tier: 1,
        owner: PublicKeyBytes::from(&wallet().verifying_key()),
        generation: 2,
        status: TicketStatus::Active,
    }
}

fn undone() -> UndoneAdmission {
    UndoneAdmission {
        gate: 3,
        since: NOW - 90,
        now: PresenceUpdate {
            presence: Presence::NeverEntered,
            entries: 0,
            ..presence()
        },
    }
}

fn presence() -> PresenceUpdate {
    PresenceUpdate {
        event_id: EVENT_ID,
        ticket_id: 17,
        presence: Presence::Inside {
            since: NOW - 60,
            gate: 2,
        },
        entries: 1,
    }
}

fn postcard<T: serde::Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).unwrap_or_default()
}

fn json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn credentials() {
    let plain = credential(None);
    let fresh = credential(Some(NOW as u32 - 5));
    let stale = credential(Some(NOW as u32 - 600));
    write("credential_text", "plain", plain.encode().as_bytes());
    write("credential_text", "holder_proof", fresh.encode().as_bytes());
    let typed = format!("  {}\r\n", stale.encode().to_ascii_lowercase());
    write(
        "credential_text",
        "stale_proof_lowercase_crlf",
        typed.as_bytes(),
    );
    let mut other_event = credential(None);
    other_event.body.event_id = 7;
    write(
        "credential_text",
        "unknown_event",
        other_event.encode().as_bytes(),
    );
    write("credential_text", "not_base32", b"HELLO-WORLD 1");
    write("credential_bytes", "plain", &plain.to_bytes());
    write("credential_bytes", "holder_proof", &fresh.to_bytes());
    write("credential_bytes", "stale_proof", &stale.to_bytes());
}

fn wire() {
    let snapshot = CacheSnapshot {
        v: PROTOCOL_VERSION,
        cursor: 12,
        generated_at: NOW,
        events: vec![event()],
        tickets: vec![ticket()],
        presence: vec![presence()],
        undone: vec![undone()],
    };
    let delta = CacheDelta {
        v: PROTOCOL_VERSION,
        from_cursor: 12,
        to_cursor: 15,
        generated_at: NOW,
        changes: vec![
            CacheChange::Event(event()),
            CacheChange::Ticket(ticket()),
            CacheChange::Presence(presence()),
            CacheChange::Undone(undone()),
        ],
        has_more: false,
    };
    write("wire_binary", "snapshot", &postcard(&snapshot));
    write("wire_binary", "delta", &postcard(&delta));
    let file = SignedPayload::sign(&snapshot, &server_key()).to_file_bytes();
    write("wire_binary", "snapshot_file", &file);
    let file = SignedPayload::sign(&delta, &server_key()).to_file_bytes();
    write("wire_binary", "delta_file", &file);

    let fixtures = fuzz_dir().join("../shared/tests/fixtures");
    for name in [
        "enrol_request.json",
        "enrol_response.json",
        "journal_batch.json",
        "journal_ack.json",
    ] {
        match std::fs::read(fixtures.join(name)) {
            Ok(bytes) => write("wire_json", name, &bytes),
            Err(error) => panic!("cannot read the wire fixture {name}: {error}"),
        }
    }
    write("wire_json", "cached_event.json", &json(&event()));
    let scan = ScanRecord {
        scan_id: uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001),
        gate: 1,
        direction: Direction::Entry,
        scanned_at_ms: NOW * 1000,
        source: "serial:/dev/ttyACM0".into(),
        event_id: Some(EVENT_ID),
        ticket_id: Some(17),
        generation: Some(2),
        tier: Some(1),
        outcome: "admitted".into(),
        opened: true,
        voids: None,
    };
    write("wire_json", "scan_record.json", &json(&scan));
    write(
        "wire_json",
        "error_body.json",
        br#"{"error":"invalid_field","message":"tiers[1].name: 1 to 64 characters","field":"tiers[1].name"}"#,
    );
}

fn device_requests() {
    let request = |mode: u8, method: &str, path: &str, timestamp: i64, nonce: &str, body: &[u8]| {
        let message = device_request_message(method, path, timestamp, nonce, body);
        let signature = bs58::encode(device_key().sign(&message).to_bytes()).into_string();
        let mut out = vec![mode];
        let device = "0190f5a0-0000-7000-8000-000000000001";
        for part in [
            method,
            path,
            device,
            &timestamp.to_string(),
            nonce,
            &signature,
        ] {
            out.extend_from_slice(part.as_bytes());
            out.push(b'\n');
        }
        out.extend_from_slice(body);
        out
    };
    write(
        "device_request",
        "journal_signed",
        &request(0, "POST", "/gate/v1/journal", NOW, "n-1", br#"{"v":3}"#),
    );
    write(
        "device_request",
        "delta_signed",
        &request(
            0,
            "GET",
            "/gate/v1/delta?cursor=12&wait=25",
            NOW - 100,
            "b3f1",
            b"",
        ),
    );
    write(
        "device_request",
        "stale_resigned",
        &request(1, "get", "/gate/v1/snapshot", NOW - 121, "n-2", b""),
    );
    write(
        "device_request",
        "missing_headers",
        b"\x01POST\n/gate/v1/journal\n",
    );
}

fn scanners() {
    let text = credential(Some(NOW as u32)).encode();
    // settings (CR LF), longest line 255+1, timeout 500 ms, then chunks.
    let mut stream = vec![0u8, 255, 50];
    for (i, piece) in format!("{text}\r\n{}\r\n", credential(None).encode())
        .as_bytes()
        .chunks(64)
        .enumerate()
    {
        stream.push(piece.len() as u8);
        stream.push(if i == 0 { 0 } else { 20 });
        stream.extend_from_slice(piece);
    }
    write("serial_framing", "two_codes_crlf", &stream);
    let mut escaped = vec![0x80u8, 31, 10];
    escaped.extend_from_slice(b"\\x03\0\0\0\0");
    escaped.extend_from_slice(&[12, 5]);
    escaped.extend_from_slice(b"HELLO\x03\xff\xfe\x01\x03AB");
    escaped.extend_from_slice(&[0, 200]);
    write("serial_framing", "escaped_etx_noise_timeout", &escaped);

    let mut keys = vec![255u8];
    for event in gate_agent::wedge::events_for_text(&credential(None).encode()) {
        keys.extend_from_slice(&event.code.to_le_bytes());
        keys.push(event.value as u8);
    }
    write("wedge_keys", "typed_code", &keys);
    // Caps lock on, backspace, a repeat, Escape, then Enter.
    write(
        "wedge_keys",
        "caps_backspace_escape",
        &[
            8, 58, 0, 1, 58, 0, 0, 30, 0, 1, 30, 0, 2, 30, 0, 0, 14, 0, 1, 1, 0, 1, 48, 0, 1, 28,
            0, 1,
        ],
    );
    let mut text = vec![0x80u8];
    text.extend_from_slice(b"Gate 3: ticket_17/vip.");
    write("wedge_keys", "text_round_trip", &text);
}

fn configs() {
    let example = fuzz_dir().join("../firmware-config/gate-agent.example.toml");
    match std::fs::read(&example) {
        Ok(bytes) => write("gate_config", "example.toml", &bytes),
        Err(error) => panic!("cannot read {}: {error}", example.display()),
    }
    write(
        "gate_config",
        "every_scanner.toml",
        br#"[gate]
number = 4
name = "South"
direction = "exit"
event_id = 42
allowed_tiers = [0, 1]

[outputs]
kind = "log"

[[scanner]]
kind = "serial"
device = "/dev/ttyACM0"
terminator = "\\r\\n"
max_line = 512
line_timeout_ms = 300

[[scanner]]
kind = "wedge"
device = "/dev/input/event3"

[[scanner]]
kind = "images"
paths = ["frames"]
interval_ms = 100

[[scanner]]
kind = "stdin"
"#,
    );
    write("gate_config", "empty.toml", b"");
}

fn qr_frames() {
    let frame = |text: &str, module_px: u32, harder: bool| {
        let image = match qrcode::QrCode::with_error_correction_level(
            text.as_bytes(),
            qrcode::EcLevel::M,
        ) {
            Ok(code) => code
                .render::<Luma<u8>>()
                .quiet_zone(true)
                .module_dimensions(module_px, module_px)
                .build(),
            Err(error) => panic!("cannot render a QR code of {text}: {error}"),
        };
        let mut out = vec![u8::from(harder)];
        out.extend_from_slice(&(image.width() as u16).to_le_bytes());
        out.extend_from_slice(image.as_raw());
        out
    };
    write(
        "qr_image",
        "code_2px",
        &frame(&credential(None).encode(), 2, false),
    );
    write(
        "qr_image",
        "proof_code_2px_harder",
        &frame(&credential(Some(NOW as u32)).encode(), 2, true),
    );
    let mut inverted = frame("GATE-TEST", 3, true);
    for p in &mut inverted[3..] {
        *p = 255 - *p;
    }
    write("qr_image", "short_inverted_3px", &inverted);
}

fn main() {
    credentials();
    wire();
    device_requests();
    scanners();
    configs();
    qr_frames();
    println!(
        "seed corpus written under {}",
        fuzz_dir().join("corpus").display()
    );
}
