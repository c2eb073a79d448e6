//! Credential decode+verify throughput for the three kinds of code a gate
//! reads (static, with the owner wallet's own proof, with a delegated proof
//! by a browser key the wallet approved), the whole gate check (`evaluate`:
//! decode, verify, decide) for each, `decide` alone, and the size of each
//! code with its QR version.
//!
//! `cargo bench -p shared --bench credential`

#![allow(clippy::unwrap_used)] // a benchmark: fail loudly

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;
use qrcode::{EcLevel, QrCode, Version};
use shared::credential::{DelegationRequest, DelegationScope, verify_text};
use shared::{
    Credential, CredentialBody, Direction, DoorsWindow, EventStatus, GatePolicy, HolderProofPolicy,
    Presence, PublicKeyBytes, ReentryPolicy, TicketState, TicketStatus, UnknownTicketPolicy,
    decide, evaluate,
};

/// When the proofs are signed and checked.
const NOW: u32 = 1_764_075_600;

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

/// The three codes a gate reads: static, with the wallet's own proof, and
/// with a delegated proof (what the ticket page shows where the event
/// requires the holder's proof).
fn codes() -> [(&'static str, Credential); 3] {
    let (issuer, owner, body) = setup();
    let session = SigningKey::from_bytes(&[3; 32]);
    let plain = Credential::issue(body, &issuer);
    let proofed = plain.clone().with_holder_proof(&owner, NOW);
    let delegation = DelegationRequest {
        scope: DelegationScope::Ticket,
        session_key: PublicKeyBytes::from(&session.verifying_key()),
        valid_from: NOW - 3600,
        valid_until: NOW + 86_400,
    }
    .sign(&owner, &body);
    let delegated = plain.clone().with_session_proof(delegation, &session, NOW);
    [
        ("static", plain),
        ("wallet proof", proofed),
        ("delegated proof", delegated),
    ]
}

fn sizes() {
    for (name, cred) in codes() {
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
    let (issuer, _, body) = setup();
    let keys = {
        let key = PublicKeyBytes::from(&issuer.verifying_key());
        move |_: u64| vec![key]
    };
    let texts = codes().map(|(name, cred)| (name, cred.encode()));
    for (name, text) in &texts {
        c.bench_function(&format!("decode+verify: {name}"), |b| {
            b.iter(|| verify_text(black_box(text), &keys).unwrap())
        });
    }
    let plain = &texts[0].1;

    let verified = verify_text(plain, &keys).unwrap();
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
                i64::from(NOW),
            )
        })
    });

    // The whole check a gate makes of a scanned line, where the event
    // requires the holder's proof (the static code without the rule).
    let required = GatePolicy {
        holder_proof: HolderProofPolicy::Required { window_secs: 30 },
        ..policy.clone()
    };
    for (name, text) in &texts {
        let rule = if *name == "static" {
            &policy
        } else {
            &required
        };
        let outcome = evaluate(text, &keys, |_, _| Some(state), rule, i64::from(NOW));
        assert!(
            outcome.decision.opens_gate(),
            "{name}: {:?}",
            outcome.decision
        );
        c.bench_function(&format!("evaluate (decode, verify, decide): {name}"), |b| {
            b.iter(|| {
                evaluate(
                    black_box(text),
                    &keys,
                    |_, _| Some(state),
                    rule,
                    i64::from(NOW),
                )
            })
        });
    }
}

criterion_group!(credential, benches);
criterion_main!(credential);
