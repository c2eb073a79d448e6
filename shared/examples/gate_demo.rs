//! A gate's day in one minute, with nothing but this crate and real QR images:
//! an issuer signs ticket credentials, each is rendered to a PNG, the PNGs are
//! read back with a QR decoder, and the admission rules give their verdicts.
//!
//! `cargo run --release -p shared --example gate_demo [-- OUT_DIR]`

#![allow(clippy::unwrap_used, clippy::expect_used)] // a demo: fail loudly

use std::collections::HashMap;
use std::path::PathBuf;

use ed25519_dalek::SigningKey;
use image::{GrayImage, Luma};
use qrcode::{EcLevel, QrCode};
use shared::admission::Evaluation;
use shared::{
    Credential, CredentialBody, Direction, DoorsWindow, EventStatus, GatePolicy, HolderProofPolicy,
    PublicKeyBytes, ReentryPolicy, TicketState, TicketStatus, UnknownTicketPolicy, evaluate,
};

const EVENT: u64 = 1_764_072_000_001;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn render(text: &str, path: &PathBuf) -> i16 {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).unwrap();
    let version = match code.version() {
        qrcode::Version::Normal(v) | qrcode::Version::Micro(v) => v,
    };
    let image: GrayImage = code
        .render::<Luma<u8>>()
        .module_dimensions(6, 6)
        .quiet_zone(true)
        .build();
    image.save(path).unwrap();
    version
}

fn read_back(path: &PathBuf) -> String {
    let image = image::open(path).unwrap().to_luma8();
    let (w, h) = image.dimensions();
    rxing::helpers::detect_in_luma(image.into_raw(), w, h, Some(rxing::BarcodeFormat::QR_CODE))
        .map(|r| r.getText().to_owned())
        .unwrap_or_default()
}

fn main() {
    let out = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| "demo-out".into());
    std::fs::create_dir_all(&out).unwrap();

    let issuer = key(1);
    let alice = key(2);
    let bob = key(3);
    let forger = key(66);
    let now = 1_764_075_600; // 19:00 on the event day
    let policy = GatePolicy {
        event_id: EVENT,
        gate: 1,
        direction: Direction::Entry,
        event_status: EventStatus::Active,
        doors: DoorsWindow {
            opens_at: now - 3600,
            closes_at: now + 4 * 3600,
        },
        allowed_tiers: None,
        reentry: ReentryPolicy::AllowedAfter {
            min_outside_secs: 900,
        },
        unknown_tickets: UnknownTicketPolicy::AdmitIfSigned,
        holder_proof: HolderProofPolicy::NotRequired,
        tier_gates: vec![],
        ends_at: now + 4 * 3600,
        end_grace_secs: 0,
        undo_window_secs: 0,
    };
    let issuer_keys: HashMap<u64, Vec<PublicKeyBytes>> =
        HashMap::from([(EVENT, vec![PublicKeyBytes::from(&issuer.verifying_key())])]);

    let body = |ticket_id, owner: &SigningKey, generation| CredentialBody {
        event_id: EVENT,
        ticket_id,
        tier: 0,
        owner: PublicKeyBytes::from(&owner.verifying_key()),
        generation,
    };
    // Ticket 1 belongs to Alice. Ticket 2 was Alice's and was transferred to
    // Bob (generation 1). Ticket 3 was minted after this gate's last sync.
    let mut cache: HashMap<(u64, u32), TicketState> = HashMap::new();
    for (id, owner, generation) in [(1, &alice, 0), (2, &bob, 1)] {
        let b = body(id, owner, generation);
        cache.insert(
            (EVENT, id),
            TicketState {
                event_id: EVENT,
                ticket_id: id,
                tier: b.tier,
                owner: b.owner,
                generation,
                status: TicketStatus::Active,
                presence: shared::Presence::NeverEntered,
                entries: 0,
            },
        );
    }

    let mut other_event = body(9, &alice, 0);
    other_event.event_id = 1_764_072_000_999;
    let scans: Vec<(&str, String)> = vec![
        (
            "Alice, ticket 1",
            Credential::issue(body(1, &alice, 0), &issuer).encode(),
        ),
        (
            "Alice again, same code",
            Credential::issue(body(1, &alice, 0), &issuer).encode(),
        ),
        (
            "Bob, ticket 2 (bought from Alice)",
            Credential::issue(body(2, &bob, 1), &issuer).encode(),
        ),
        (
            "Alice's old code for ticket 2",
            Credential::issue(body(2, &alice, 0), &issuer).encode(),
        ),
        (
            "New ticket 3, not yet synced",
            Credential::issue(body(3, &bob, 0), &issuer).encode(),
        ),
        (
            "Forged ticket 4",
            Credential::issue(body(4, &bob, 0), &forger).encode(),
        ),
        (
            "Ticket of another event",
            Credential::issue(other_event, &issuer).encode(),
        ),
    ];

    println!(
        "Gate demo: {} scans, QR images in {}/\n",
        scans.len(),
        out.display()
    );
    println!(
        "{:<36} {:>5} {:>4}  {:<8} verdict",
        "scan", "chars", "QR v", "gate"
    );
    for (i, (label, text)) in scans.iter().enumerate() {
        let path = out.join(format!("scan-{:02}.png", i + 1));
        let version = render(text, &path);
        let read = read_back(&path);
        assert_eq!(&read, text, "the QR decoder read {path:?} differently");
        let Evaluation {
            decision,
            next_state,
            ..
        } = evaluate(
            &read,
            &issuer_keys,
            |event, ticket| cache.get(&(event, ticket)).copied(),
            &policy,
            now + i as i64 * 30,
        );
        if let Some(state) = next_state {
            cache.insert((state.event_id, state.ticket_id), state);
        }
        let gate = if decision.opens_gate() {
            "OPEN"
        } else {
            "closed"
        };
        println!(
            "{label:<36} {:>5} {version:>4}  {gate:<8} {} [{}]",
            read.len(),
            decision.staff_text(now + i as i64 * 30),
            decision.code()
        );
    }
    println!("\nEvery code above went through a PNG file and a QR decoder, not a shortcut.");
}
