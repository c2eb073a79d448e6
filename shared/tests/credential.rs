//! The credential's format and signatures, from bytes to a real QR image.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use ed25519_dalek::SigningKey;
use image::{GrayImage, Luma, imageops};
use proptest::prelude::*;
use qrcode::{EcLevel, QrCode, Version};
use shared::credential::{BASE_LEN, verify_text};
use shared::{Credential, CredentialBody, CredentialError, IssuerKeys, PublicKeyBytes};

fn issuer() -> SigningKey {
    SigningKey::from_bytes(&[11; 32])
}

fn holder() -> SigningKey {
    SigningKey::from_bytes(&[22; 32])
}

fn body() -> CredentialBody {
    CredentialBody {
        event_id: 1_732_000_000_123,
        ticket_id: 4711,
        tier: 1,
        owner: PublicKeyBytes::from(&holder().verifying_key()),
        generation: 2,
    }
}

fn trusted() -> impl IssuerKeys {
    let key = PublicKeyBytes::from(&issuer().verifying_key());
    move |event: u64| {
        if event == body().event_id {
            vec![key]
        } else {
            vec![]
        }
    }
}

#[test]
fn issue_encode_decode_verify_round_trip() {
    let cred = Credential::issue(body(), &issuer());
    let text = cred.encode();
    let decoded = Credential::decode(&text).unwrap();
    assert_eq!(decoded, cred);
    let verified = decoded.verify(&trusted()).unwrap();
    assert_eq!(*verified.body(), body());
    assert_eq!(verified.holder_proof_signed_at(), None);

    let with_proof = cred.with_holder_proof(&holder(), 1_800_000_000);
    let verified = verify_text(&with_proof.encode(), &trusted()).unwrap();
    assert_eq!(verified.holder_proof_signed_at(), Some(1_800_000_000));
}

#[test]
fn every_single_byte_change_of_the_binary_form_is_refused() {
    for cred in [
        Credential::issue(body(), &issuer()),
        Credential::issue(body(), &issuer()).with_holder_proof(&holder(), 5),
    ] {
        let bytes = cred.to_bytes();
        for i in 0..bytes.len() {
            for delta in [1u8, 0x80, 0xff] {
                let mut changed = bytes.clone();
                changed[i] ^= delta;
                let result = Credential::from_bytes(&changed).and_then(|c| c.verify(&trusted()));
                assert!(result.is_err(), "byte {i} ^ {delta:#x} was accepted");
            }
        }
    }
}

#[test]
fn every_single_character_change_of_the_text_is_refused_or_only_changes_case() {
    let cred = Credential::issue(body(), &issuer()).with_holder_proof(&holder(), 5);
    let text = cred.encode();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567abcdefghijklmnopqrstuvwxyz0189=-/ ";
    for (i, original) in text.char_indices() {
        for replacement in alphabet.chars().filter(|c| *c != original) {
            let mut changed = text.clone();
            changed.replace_range(i..i + 1, &replacement.to_string());
            match verify_text(&changed, &trusted()) {
                Err(_) => {}
                Ok(_) => assert!(
                    replacement.eq_ignore_ascii_case(&original),
                    "position {i}: {original:?} -> {replacement:?} was accepted"
                ),
            }
        }
    }
}

#[test]
fn credential_signed_by_another_key_is_refused() {
    let forger = SigningKey::from_bytes(&[99; 32]);
    let forged = Credential::issue(body(), &forger).encode();
    assert_eq!(
        verify_text(&forged, &trusted()),
        Err(CredentialError::BadIssuerSignature)
    );
}

#[test]
fn issuer_signature_moved_to_another_ticket_is_refused() {
    let genuine = Credential::issue(body(), &issuer());
    let mut other = genuine.clone();
    other.body.ticket_id += 1;
    assert_eq!(
        other.verify(&trusted()),
        Err(CredentialError::BadIssuerSignature)
    );
}

#[test]
fn bad_input_gets_a_typed_error() {
    let good = Credential::issue(body(), &issuer()).to_bytes();
    let b32 = |bytes: &[u8]| data_encoding::BASE32_NOPAD.encode(bytes);
    let mut wrong_version = good.clone();
    wrong_version[0] = 3;
    let mut wrong_flags = good.clone();
    wrong_flags[1] = 0b10;
    let cases: Vec<(String, CredentialError)> = vec![
        (String::new(), CredentialError::Empty),
        ("  \r\n".into(), CredentialError::Empty),
        ("A".repeat(600), CredentialError::Oversized { len: 600 }),
        (
            "https://example.com/ticket".into(),
            CredentialError::BadEncoding { position: 5 },
        ),
        (
            b32(&good[..BASE_LEN - 1]),
            CredentialError::WrongLength { len: BASE_LEN - 1 },
        ),
        (
            b32(&[good.as_slice(), &[0]].concat()),
            CredentialError::WrongLength { len: BASE_LEN + 1 },
        ),
        (b32(&wrong_version), CredentialError::UnsupportedVersion(3)),
        (b32(&wrong_flags), CredentialError::UnknownFlags(0b10)),
        (b32(&[1]), CredentialError::WrongLength { len: 1 }),
    ];
    for (input, expected) in cases {
        assert_eq!(
            Credential::decode(&input),
            Err(expected.clone()),
            "input {input:?}"
        );
        assert!(expected.is_unreadable());
    }
}

proptest! {
    #[test]
    fn decoder_never_panics_on_arbitrary_text(text in ".{0,700}") {
        let _ = verify_text(&text, &trusted());
    }

    #[test]
    fn decoder_never_panics_on_arbitrary_base32(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let text = data_encoding::BASE32_NOPAD.encode(&bytes);
        let _ = verify_text(&text, &trusted());
    }

    #[test]
    fn decoder_never_panics_on_mutated_credentials(
        index in 0usize..183, value in any::<u8>(), cut in 0usize..184
    ) {
        let mut bytes = Credential::issue(body(), &issuer()).with_holder_proof(&holder(), 7).to_bytes();
        bytes[index] = value;
        bytes.truncate(cut);
        let _ = Credential::from_bytes(&bytes).and_then(|c| c.verify(&trusted()));
    }
}

/// Renders `text` as a QR code at level M, `module_px` pixels per module,
/// with the standard 4-module quiet zone. Returns the image and the version.
fn render_qr(text: &str, module_px: u32) -> (GrayImage, i16) {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).unwrap();
    let Version::Normal(version) = code.version() else {
        panic!("micro QR")
    };
    let image = code
        .render::<Luma<u8>>()
        .module_dimensions(module_px, module_px)
        .quiet_zone(true)
        .build();
    (image, version)
}

fn decode_qr(image: &GrayImage) -> Option<String> {
    let (w, h) = image.dimensions();
    rxing::helpers::detect_in_luma(
        image.as_raw().clone(),
        w,
        h,
        Some(rxing::BarcodeFormat::QR_CODE),
    )
    .ok()
    .map(|r| r.getText().to_owned())
}

/// Deterministic noise so the test is repeatable: xorshift on a fixed seed.
fn add_noise(image: &mut GrayImage, amplitude: i16) {
    let mut state: u32 = 0x9e37_79b9;
    for pixel in image.pixels_mut() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let offset = (state % (2 * amplitude as u32 + 1)) as i16 - amplitude;
        pixel.0[0] = (i16::from(pixel.0[0]) + offset).clamp(0, 255) as u8;
    }
}

#[test]
fn real_qr_round_trip_survives_scaling_blur_and_noise() {
    let plain = Credential::issue(body(), &issuer());
    let proofed = plain.clone().with_holder_proof(&holder(), 1_800_000_000);
    for cred in [plain, proofed] {
        let text = cred.encode();
        let (image, version) = render_qr(&text, 6);
        assert!(version <= 10, "needs QR version {version}");

        let clean = decode_qr(&image).expect("clean render decodes");
        assert_eq!(verify_text(&clean, &trusted()).unwrap().body(), &body());

        // Scaled down to about 2.5 pixels per module, as from a distant camera.
        let (w, h) = image.dimensions();
        let small = imageops::resize(
            &image,
            w * 5 / 12,
            h * 5 / 12,
            imageops::FilterType::Triangle,
        );
        let blurred = imageops::blur(&image, 1.5);
        let mut noisy = image.clone();
        add_noise(&mut noisy, 60);
        let mut everything = imageops::blur(&small, 0.6);
        add_noise(&mut everything, 25);
        for (name, degraded) in [
            ("scaled", small),
            ("blurred", blurred),
            ("noisy", noisy),
            ("all", everything),
        ] {
            let read = decode_qr(&degraded).unwrap_or_else(|| panic!("{name} image unreadable"));
            assert_eq!(read, text, "{name} image read differently");
            assert!(verify_text(&read, &trusted()).is_ok(), "{name}");
        }
    }
}
