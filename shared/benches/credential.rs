//! Credential decode+verify throughput, `decide` cost, and the size of a code.
//!
//! `cargo bench -p shared --bench credential`

#![allow(clippy::unwrap_used)] // a benchmark: fail loudly

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;
use qrcode::{EcLevel, QrCode, Version};
use shared::credential::verify_text;
use shared::{
    Credential, CredentialBody, Direction, DoorsWindow, EventStatus, GatePolicy, HolderProofPolicy,
    Presence, PublicKeyBytes, ReentryPolicy, TicketState, TicketStatus, UnknownTicketPolicy,
    decide,
};

fn setup() -> (SigningKey, SigningKey, CredentialBody) {
    let issuer = SigningKey::from_bytes(&[1; 32]);
    let owner = SigningKey::from_bytes(&[2; 32]);
    let body = CredentialBody {
        event_id: 1_764_072_000_001,
        ticket_id: 12_345,
        tier: 1,
        owner: PublicKeyBytes::from(&owner.verifying_key()),
        generation: 1,
    };
    (issuer, owner, body)
}

fn qr_version(text: &str) -> i16 {
    match QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .unwrap()
        .version()
    {
        Version::Normal(v) | Version::Micro(v) => v,
    }
}

fn sizes() {
    let (issuer, owner, body) = setup();
    let plain = Credential::issue(body, &issuer);
    let proofed = plain.clone().with_holder_proof(&owner, 1_764_075_600);
    for (name, cred) in [
        ("credential", plain),
        ("credential + holder proof", proofed),
    ] {
        let text = cred.encode();
        println!(
            "size: {name}: {} bytes binary, {} characters, QR version {} at level M",
            cred.to_bytes().len(),
            text.len(),
            qr_version(&text)
        );
    }
}

fn benches(c: &mut Criterion) {
    sizes();
    let (issuer, owner, body) = setup();
    let keys = {
        let key = PublicKeyBytes::from(&issuer.verifying_key());
        move |_: u64| vec![key]
    };
    let plain = Credential::issue(body, &issuer).encode();
    let proofed = Credential::issue(body, &issuer)
        .with_holder_proof(&owner, 1_764_075_600)
        .encode();
    c.bench_function("decode+verify credential", |b| {
        b.iter(|| verify_text(black_box(&plain), &keys).unwrap())
    });
    c.bench_function("decode+verify credential with holder proof", |b| {
        b.iter(|| verify_text(black_box(&proofed), &keys).unwrap())
    });

    let verified = verify_text(&plain, &keys).unwrap();
    let state = TicketState {
        event_id: body.event_id,
        ticket_id: body.ticket_id,
        tier: body.tier,
        owner: body.owner,
        generation: body.generation,
        status: TicketStatus::Active,
        presence: Presence::Outside {
            since: 1_764_075_000,
            gate: 2,
        },
        entries: 1,
    };
    let policy = GatePolicy {
        event_id: body.event_id,
        gate: 1,
        direction: Direction::Entry,
        event_status: EventStatus::Active,
        doors: DoorsWindow {
            opens_at: 1_764_072_000,
            closes_at: 1_764_100_000,
        },
        allowed_tiers: Some(vec![0, 1]),
        reentry: ReentryPolicy::AllowedAfter {
            min_outside_secs: 300,
        },
        unknown_tickets: UnknownTicketPolicy::Reject,
        holder_proof: HolderProofPolicy::NotRequired,
        tier_gates: vec![],
        ends_at: 1_764_100_000,
        end_grace_secs: 0,
        undo_window_secs: 0,
    };
    c.bench_function("decide (re-entry, all checks run)", |b| {
        b.iter(|| {
            decide(
                black_box(&verified),
                Some(black_box(&state)),
                &policy,
                1_764_075_600,
            )
        })
    });
}

criterion_group!(credential, benches);
criterion_main!(credential);
