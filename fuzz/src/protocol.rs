//! Harnesses of the protocol crate's decoders: each takes arbitrary bytes,
//! must not panic, and asserts what must hold of whatever it could read.
//!
//! The fuzz targets call these functions, and so does `shared`'s corpus
//! regression test on stable (it includes this file), so every corpus input
//! and every crash found runs in CI without nightly.

use std::fmt::Debug;

use ed25519_dalek::{Signer, SigningKey};
use serde::Serialize;
use serde::de::DeserializeOwned;
use shared::credential::verify_text;
use shared::device_request::{DeviceHeaders, DeviceRequestError, MAX_NONCE_LEN};
use shared::wire::{
    CacheDelta, CacheSnapshot, CachedEvent, EnrolRequest, EnrolResponse, ErrorBody, JournalAck,
    JournalBatch, PROTOCOL_VERSION, PROTOCOL_VERSION_WITHOUT_HEADER, ScanRecord, SignedKind,
    SignedPayload, device_request_message,
};
use shared::{
    Credential, CredentialBody, CredentialError, Direction, DoorsWindow, EventStatus, GatePolicy,
    HolderProofPolicy, IssuerKeys, PublicKeyBytes, ReentryPolicy, UnixSeconds, UnknownTicketPolicy,
    evaluate,
};

/// The event every harness's issuer key signs for.
pub const EVENT_ID: u64 = 42;
/// The harnesses' "now" (the server's or the gate's clock).
pub const NOW: UnixSeconds = 1_700_000_000;
/// The holder-proof window of the policy that asks for one.
pub const PROOF_WINDOW_SECS: u32 = 30;
/// The server's device-request window.
pub const REQUEST_WINDOW_SECS: u32 = 120;

pub fn issuer_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

pub fn server_key() -> SigningKey {
    SigningKey::from_bytes(&[3; 32])
}

pub fn device_key() -> SigningKey {
    SigningKey::from_bytes(&[5; 32])
}

fn issuer_keys() -> impl IssuerKeys {
    let key = PublicKeyBytes::from(&issuer_key().verifying_key());
    move |event_id: u64| {
        if event_id == EVENT_ID {
            vec![key]
        } else {
            Vec::new()
        }
    }
}

fn policy(holder_proof: HolderProofPolicy) -> GatePolicy {
    GatePolicy {
        event_id: EVENT_ID,
        gate: 1,
        direction: Direction::Entry,
        event_status: EventStatus::Active,
        doors: DoorsWindow {
            opens_at: NOW - 3600,
            closes_at: NOW + 3600,
        },
        allowed_tiers: None,
        tier_gates: Vec::new(),
        ends_at: NOW + 7200,
        end_grace_secs: 0,
        reentry: ReentryPolicy::Forbidden,
        unknown_tickets: UnknownTicketPolicy::AdmitIfSigned,
        holder_proof,
        undo_window_secs: 0,
    }
}

const POLICIES: [HolderProofPolicy; 2] = [
    HolderProofPolicy::NotRequired,
    HolderProofPolicy::Required {
        window_secs: PROOF_WINDOW_SECS,
    },
];

/// A scanned line, as a gate gets it: decoded, verified and decided.
pub fn credential_text(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match Credential::decode(&text) {
        Ok(credential) => {
            // One credential has one text: two different codes never read
            // as the same ticket.
            assert_eq!(credential.encode(), text.trim().to_ascii_uppercase());
            let _ = credential.verify(&issuer_keys());
        }
        Err(error) => assert!(error.is_unreadable(), "{error:?} is not a reading error"),
    }
    for holder_proof in POLICIES {
        let evaluation = evaluate(
            &text,
            &issuer_keys(),
            |_, _| None,
            &policy(holder_proof),
            NOW,
        );
        let decision = evaluation.decision;
        assert!(!decision.code().is_empty());
        assert!(!decision.staff_text(NOW).is_empty());
    }
}

/// The binary form of a credential, with and without a holder proof.
///
/// Besides reading the input, it re-issues the body it read with the
/// event's real key (so the holder proof that came in is what gets judged),
/// and has a wallet whose key comes from the input sign a fresh proof (so a
/// good proof is verified and decided at the time it carries).
pub fn credential_bytes(data: &[u8]) {
    let Ok(credential) = Credential::from_bytes(data) else {
        return;
    };
    assert_eq!(credential.to_bytes(), data);
    assert_eq!(
        Credential::decode(&credential.encode()),
        Ok(credential.clone())
    );
    let _ = credential.verify(&issuer_keys());

    let body = CredentialBody {
        event_id: EVENT_ID,
        ..credential.body
    };
    let mut reissued = Credential::issue(body, &issuer_key());
    reissued.holder_proof = credential.holder_proof;
    match (reissued.verify(&issuer_keys()), credential.holder_proof) {
        (Ok(verified), None) => assert_eq!(verified.holder_proof_signed_at(), None),
        (Err(error), None) => panic!("a code the issuer signed is refused: {error}"),
        (Ok(verified), Some(proof)) => assert_eq!(
            verified.holder_proof_signed_at(),
            Some(UnixSeconds::from(proof.signed_at()))
        ),
        (Err(error), Some(_)) => assert_eq!(error, CredentialError::BadHolderSignature),
    }

    let mut seed = [0u8; 32];
    seed.copy_from_slice(&credential.issuer_signature[..32]);
    let wallet = SigningKey::from_bytes(&seed);
    let body = CredentialBody {
        owner: PublicKeyBytes::from(&wallet.verifying_key()),
        ..body
    };
    let signed_at = credential
        .holder_proof
        .map_or(NOW as u32, |proof| proof.signed_at());
    let text = Credential::issue(body, &issuer_key())
        .with_holder_proof(&wallet, signed_at)
        .encode();
    let verified = match verify_text(&text, &issuer_keys()) {
        Ok(verified) => verified,
        Err(error) => panic!("a proof by the owner's wallet is refused: {error}"),
    };
    assert_eq!(verified.body(), &body);
    assert_eq!(
        verified.holder_proof_signed_at(),
        Some(UnixSeconds::from(signed_at))
    );
    let fresh = NOW.abs_diff(UnixSeconds::from(signed_at)) <= u64::from(PROOF_WINDOW_SECS);
    let evaluation = evaluate(
        &text,
        &issuer_keys(),
        |_, _| None,
        &policy(POLICIES[1]),
        NOW,
    );
    assert_eq!(
        evaluation.decision.opens_gate(),
        fresh,
        "proof signed at {signed_at}, now {NOW}: {}",
        evaluation.decision.code()
    );
}

/// The binary wire: a cache file as a USB stick brings it, and snapshots
/// and deltas as postcard (what the signed envelope carries).
pub fn wire_binary(data: &[u8]) {
    if let Ok(envelope) = SignedPayload::from_file_bytes(data) {
        assert_eq!(
            SignedPayload::from_file_bytes(&envelope.to_file_bytes()).as_ref(),
            Ok(&envelope)
        );
        let _ = envelope.open::<CacheSnapshot>(None);
        let _ = envelope.open::<CacheDelta>(None);
    }
    signed_round_trip::<CacheSnapshot>(data);
    signed_round_trip::<CacheDelta>(data);
}

/// Whatever decodes as `T`, signed by the server for a gate of today's
/// version or of version 4 and opened by that gate with the server's key,
/// opens in that version and carries all that version can: the server
/// writes the version it names, whatever version the value came with.
fn signed_round_trip<T: SignedKind + PartialEq + Debug>(data: &[u8]) {
    let Ok(value) = postcard::from_bytes::<T>(data) else {
        return;
    };
    let server = server_key();
    let key = PublicKeyBytes::from(&server.verifying_key());
    for version in [PROTOCOL_VERSION_WITHOUT_HEADER, PROTOCOL_VERSION] {
        let file = SignedPayload::sign_for(&value, &server, version).to_file_bytes();
        let envelope = match SignedPayload::from_file_bytes(&file) {
            Ok(envelope) => envelope,
            Err(error) => panic!("a cache file the server wrote does not read back: {error}"),
        };
        assert_eq!(envelope.v, version);
        match envelope.open::<T>(Some(&key)) {
            Ok(opened) => {
                assert_eq!(opened.version(), version);
                assert_eq!(opened.encode(version), value.encode(version));
            }
            Err(error) => {
                panic!("a payload the server signed for version {version} does not open: {error}")
            }
        }
    }
}

/// The JSON wire: every body a gate or the server reads. What reads,
/// writes, and reads back the same.
pub fn wire_json(data: &[u8]) {
    json_round_trip::<EnrolRequest>(data);
    json_round_trip::<EnrolResponse>(data);
    json_round_trip::<JournalBatch>(data);
    json_round_trip::<JournalAck>(data);
    json_round_trip::<ErrorBody>(data);
    json_round_trip::<CachedEvent>(data);
    if let Some(record) = json_round_trip::<ScanRecord>(data) {
        let _ = record.unbounded_field();
    }
}

fn json_round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(data: &[u8]) -> Option<T> {
    let value: T = serde_json::from_slice(data).ok()?;
    let written = match serde_json::to_vec(&value) {
        Ok(written) => written,
        Err(error) => panic!("{value:?} does not serialise: {error}"),
    };
    match serde_json::from_slice::<T>(&written) {
        Ok(back) => assert_eq!(back, value),
        Err(error) => panic!(
            "{} does not read back: {error}",
            String::from_utf8_lossy(&written)
        ),
    }
    Some(value)
}

/// The server's check of a gate's signed request.
///
/// The input is a mode byte, then newline-separated method, path, device id,
/// timestamp, nonce, signature headers and the body (a header missing from
/// the input, or not UTF-8, is a missing header). With bit 0 of the mode
/// the device signs the request itself, so the whole check is reached: a
/// request the device signed must pass exactly when its headers are well
/// formed and its timestamp is inside the window.
pub fn device_request(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut parts = rest.splitn(7, |&b| b == b'\n');
    let mut next = || parts.next();
    let method = String::from_utf8_lossy(next().unwrap_or_default()).into_owned();
    let path = String::from_utf8_lossy(next().unwrap_or_default()).into_owned();
    let device_id = header(next());
    let timestamp = header(next());
    let nonce = header(next());
    let signature = header(next());
    let body = next().unwrap_or_default();

    let key = PublicKeyBytes::from(&device_key().verifying_key());
    let check = |headers: DeviceHeaders<'_>| {
        headers
            .parse()?
            .check(&key, &method, &path, body, NOW, REQUEST_WINDOW_SECS)
    };
    let headers = DeviceHeaders {
        device_id,
        timestamp,
        nonce,
        signature,
    };
    if check(headers).is_ok() {
        let parsed = headers.parse();
        assert!(parsed.is_ok_and(|p| NOW.abs_diff(p.timestamp) <= u64::from(REQUEST_WINDOW_SECS)));
    }

    if mode & 1 == 0 {
        return;
    }
    let Some(ts) = timestamp.and_then(|t| t.parse::<UnixSeconds>().ok()) else {
        return;
    };
    let nonce_text = nonce.unwrap_or_default();
    let message = device_request_message(&method, &path, ts, nonce_text, body);
    let signature = bs58::encode(device_key().sign(&message).to_bytes()).into_string();
    let device_id_ok = device_id.is_some_and(|d| uuid::Uuid::parse_str(d).is_ok());
    let nonce_ok = nonce.is_some_and(|n| (1..=MAX_NONCE_LEN).contains(&n.len()));
    let in_window = NOW.abs_diff(ts) <= u64::from(REQUEST_WINDOW_SECS);
    let result = check(DeviceHeaders {
        signature: Some(&signature),
        ..headers
    });
    let expected = match (device_id_ok, nonce_ok, in_window) {
        (false, _, _) if device_id.is_none() => Err(DeviceRequestError::MissingHeader),
        (false, _, _) => Err(DeviceRequestError::MalformedDeviceId),
        (true, false, _) if nonce.is_none() => Err(DeviceRequestError::MissingHeader),
        (true, false, _) => Err(DeviceRequestError::BadNonce),
        (true, true, false) => Err(DeviceRequestError::OutsideWindow),
        (true, true, true) => Ok(()),
    };
    assert_eq!(result, expected);
}

/// A header as the server reads it: missing, or not UTF-8, is `None`.
fn header(part: Option<&[u8]>) -> Option<&str> {
    part.and_then(|p| std::str::from_utf8(p).ok())
}
