//! The ticket credential: what a ticket's QR code holds.
//!
//! # Binary layout, version 1 (big-endian integers)
//!
//! | offset | size | field                                                     |
//! |-------:|-----:|-----------------------------------------------------------|
//! |      0 |    1 | format version (`1`)                                      |
//! |      1 |    1 | flags: bit 0 = a holder proof follows; other bits must be 0 |
//! |      2 |    8 | event id (the on-chain event's id)                         |
//! |     10 |    4 | ticket id (number of the ticket inside its event)          |
//! |     14 |    1 | tier index                                                 |
//! |     15 |   32 | owner wallet (ed25519 public key)                          |
//! |     47 |    4 | generation (increases on every transfer)                   |
//! |     51 |   64 | issuer signature                                           |
//! |    115 |    4 | holder proof: signing time, Unix seconds (only if flagged) |
//! |    119 |   64 | holder proof: owner's signature (only if flagged)          |
//!
//! The issuer (the event's credential key, published on chain in the event
//! account) signs `ISSUER_DOMAIN || 0x01 || bytes[2..51]`. The flags byte is
//! left out of the signed bytes on purpose: the holder's wallet appends and
//! refreshes its proof without the issuer, and a proof that is stripped or
//! added is caught by the holder-proof policy, not by the issuer signature.
//!
//! The version 1 holder proof is the owner's wallet signing
//! `HOLDER_DOMAIN || event id || ticket id || generation || signed_at`: the
//! code on the phone changes every few seconds, and a gate refuses a proof
//! outside its window, so a screenshot is worthless where an event asks for it.
//!
//! # Binary layout, version 2: the delegated holder proof
//!
//! A wallet cannot be asked to sign every few seconds, so version 2 carries
//! a session key the owner's wallet approved once ([`Delegation`]) and a
//! proof that key signed ([`session`] explains the scheme). Bytes 1 to 114
//! are version 1's, and the issuer signature is the same one (still over
//! `ISSUER_DOMAIN || 0x01 || bytes[2..51]`), so the page showing the code
//! turns the server's version 1 code into a version 2 one by itself.
//!
//! | offset | size | field                                                     |
//! |-------:|-----:|-----------------------------------------------------------|
//! |      0 |    1 | format version (`2`)                                      |
//! |      1 |    1 | flags: must be 0 (reserved)                               |
//! |    2.. |  113 | as version 1: body (49 bytes) and issuer signature (64)   |
//! |    115 |    1 | delegation scope: 0 = this ticket at this generation, 1 = every ticket of the owner at the event |
//! |    116 |   32 | session public key (ed25519)                               |
//! |    148 |    4 | delegation valid from, Unix seconds (inclusive)           |
//! |    152 |    4 | delegation valid until, Unix seconds (exclusive)          |
//! |    156 |   64 | owner wallet's signature of the delegation message        |
//! |    220 |    4 | proof time, Unix seconds                                  |
//! |    224 |   64 | session key's signature of the proof message              |
//!
//! 288 bytes in all. The delegation message is readable text
//! ([`DelegationRequest::message`]) that a browser wallet's `signMessage`
//! signs as it is; the proof message is [`session::session_proof_message`].
//! Both are rebuilt from the code's fields by whoever verifies. See
//! `docs/holder-proof.md` for the reference and test vectors.
//!
//! # Text form
//!
//! The bytes are written as unpadded RFC 4648 base32 (`A-Z`, `2-7`). Every
//! character is in the QR alphanumeric set (compact QR), is a plain key on any
//! keyboard layout a wedge scanner emulates, and contains no space or
//! terminator a serial scanner could mangle. Decoding ignores surrounding
//! whitespace and letter case, because a keyboard-wedge scanner typing into a
//! host with Caps Lock on delivers lowercase letters. 115 bytes make 184
//! characters (a version 8 QR at level M); with a version 1 holder proof,
//! 183 bytes make 293 characters (version 10 at level M); version 2's 288
//! bytes make 461 characters (version 13 at level M, 69 modules a side).

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::UnixSeconds;
use crate::keys::PublicKeyBytes;

pub mod session;

pub use session::{Delegation, DelegationRequest, DelegationScope};

/// The format version of a code without a holder proof or with the owner
/// wallet's own proof, and the version the issuer's signature names.
pub const FORMAT_VERSION: u8 = 1;
/// The format version of a code with a delegated holder proof.
pub const FORMAT_VERSION_DELEGATED: u8 = 2;
/// Domain separation for issuer signatures: a signature over a credential can
/// never be replayed as any other kind of signed message.
pub const ISSUER_DOMAIN: &[u8] = b"nft-gate/credential/v1";
/// Domain separation for holder proofs.
pub const HOLDER_DOMAIN: &[u8] = b"nft-gate/holder-proof/v1";

const FLAG_HOLDER_PROOF: u8 = 0b0000_0001;
const BODY_LEN: usize = 49;
const SIGNED_LEN: usize = 2 + BODY_LEN;
/// Length of a credential without a holder proof, in bytes.
pub const BASE_LEN: usize = SIGNED_LEN + 64;
/// Length of a credential with a holder proof, in bytes.
pub const WITH_PROOF_LEN: usize = BASE_LEN + 4 + 64;
/// Length of a delegation in the binary form: scope, session key, validity,
/// owner signature.
const DELEGATION_LEN: usize = 1 + 32 + 4 + 4 + 64;
/// Length of a credential with a delegated holder proof (format version 2).
pub const WITH_DELEGATED_PROOF_LEN: usize = BASE_LEN + DELEGATION_LEN + 4 + 64;
/// The longest text a decoder looks at; anything longer is refused unread.
pub const MAX_TEXT_LEN: usize = 512;

/// The facts a credential asserts about a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CredentialBody {
    pub event_id: u64,
    pub ticket_id: u32,
    pub tier: u8,
    pub owner: PublicKeyBytes,
    pub generation: u32,
}

/// The holder's rotating proof that they control the owner wallet right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HolderProof {
    /// Format version 1: the owner's wallet signed (ticket, time) itself.
    Wallet {
        /// When the wallet signed, in Unix seconds.
        signed_at: u32,
        signature: [u8; 64],
    },
    /// Format version 2: a session key the owner's wallet approved signed
    /// (ticket, time).
    Session {
        delegation: Delegation,
        /// When the session key signed, in Unix seconds.
        signed_at: u32,
        signature: [u8; 64],
    },
}

impl HolderProof {
    /// When the proof was signed, in Unix seconds.
    pub fn signed_at(&self) -> u32 {
        match self {
            Self::Wallet { signed_at, .. } | Self::Session { signed_at, .. } => *signed_at,
        }
    }
}

/// A decoded but not yet verified credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub body: CredentialBody,
    pub issuer_signature: [u8; 64],
    pub holder_proof: Option<HolderProof>,
}

/// A holder proof whose signatures were checked: what the admission rules
/// judge by time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckedHolderProof {
    /// Signed by the owner's wallet itself.
    Wallet { signed_at: UnixSeconds },
    /// Signed by a session key the owner's wallet approved for `scope`
    /// from `key_valid_from` (inclusive) to `key_valid_until` (exclusive).
    Session {
        signed_at: UnixSeconds,
        scope: DelegationScope,
        key_valid_from: UnixSeconds,
        key_valid_until: UnixSeconds,
    },
}

impl CheckedHolderProof {
    pub fn signed_at(&self) -> UnixSeconds {
        match self {
            Self::Wallet { signed_at } | Self::Session { signed_at, .. } => *signed_at,
        }
    }
}

/// A credential whose issuer signature was checked against the event's keys,
/// and whose holder proof, if any, was checked against the owner key (for a
/// delegated proof: the delegation against the owner key, the proof against
/// the delegated key).
///
/// Only [`Credential::verify`] makes one: holding a `VerifiedCredential` means
/// the signatures are good. Whether a proof is fresh enough, and whether the
/// owner is the ticket's current one, are rules of the gate's policy and
/// cache, so they are judged by [`crate::decide`], not here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCredential {
    body: CredentialBody,
    holder_proof: Option<CheckedHolderProof>,
}

impl VerifiedCredential {
    pub fn body(&self) -> &CredentialBody {
        &self.body
    }

    /// The holder proof the code carried, its signatures checked.
    pub fn holder_proof(&self) -> Option<CheckedHolderProof> {
        self.holder_proof
    }

    /// When the holder proof was signed, if the code carried one.
    pub fn holder_proof_signed_at(&self) -> Option<UnixSeconds> {
        self.holder_proof.map(|p| p.signed_at())
    }
}

/// Why a scanned text is not a valid credential. One variant per cause the
/// gate reports differently.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("the code is empty")]
    Empty,
    #[error("the code is {len} characters long; no ticket code is longer than {MAX_TEXT_LEN}")]
    Oversized { len: usize },
    #[error("the code is not base32 text (bad character or length at position {position})")]
    BadEncoding { position: usize },
    #[error(
        "the code is {len} bytes long; a ticket code is {BASE_LEN}, {WITH_PROOF_LEN} or {WITH_DELEGATED_PROOF_LEN}"
    )]
    WrongLength { len: usize },
    #[error("ticket code format version {0} is not supported by this build")]
    UnsupportedVersion(u8),
    #[error("unknown flags {0:#04x} in the ticket code")]
    UnknownFlags(u8),
    #[error("unknown delegation scope {0} in the ticket code")]
    UnknownDelegationScope(u8),
    #[error("no issuer key is known for event {event_id}")]
    UnknownIssuer { event_id: u64 },
    #[error("the issuer signature does not match")]
    BadIssuerSignature,
    #[error("the holder proof is not signed by the ticket's owner")]
    BadHolderSignature,
    #[error("the phone's code key was not approved by the wallet that owns the ticket")]
    BadDelegationSignature,
    #[error("the live code is not signed by the phone key the owner approved")]
    BadSessionSignature,
}

impl CredentialError {
    /// True when the text could not even be read as a ticket code (as opposed
    /// to a readable code whose signatures are wrong).
    pub fn is_unreadable(&self) -> bool {
        matches!(
            self,
            Self::Empty
                | Self::Oversized { .. }
                | Self::BadEncoding { .. }
                | Self::WrongLength { .. }
                | Self::UnsupportedVersion(_)
                | Self::UnknownFlags(_)
                | Self::UnknownDelegationScope(_)
        )
    }
}

/// Where a verifier finds the issuer keys it trusts for an event. An event may
/// have more than one during a key rotation.
pub trait IssuerKeys {
    fn issuer_keys(&self, event_id: u64) -> Vec<PublicKeyBytes>;
}

impl IssuerKeys for std::collections::HashMap<u64, Vec<PublicKeyBytes>> {
    fn issuer_keys(&self, event_id: u64) -> Vec<PublicKeyBytes> {
        self.get(&event_id).cloned().unwrap_or_default()
    }
}

impl<F: Fn(u64) -> Vec<PublicKeyBytes>> IssuerKeys for F {
    fn issuer_keys(&self, event_id: u64) -> Vec<PublicKeyBytes> {
        self(event_id)
    }
}

impl CredentialBody {
    fn write_signed_part(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.event_id.to_be_bytes());
        out.extend_from_slice(&self.ticket_id.to_be_bytes());
        out.push(self.tier);
        out.extend_from_slice(&self.owner.0);
        out.extend_from_slice(&self.generation.to_be_bytes());
    }

    fn issuer_message(&self) -> Vec<u8> {
        let mut msg = Vec::with_capacity(ISSUER_DOMAIN.len() + 1 + BODY_LEN);
        msg.extend_from_slice(ISSUER_DOMAIN);
        msg.push(FORMAT_VERSION);
        self.write_signed_part(&mut msg);
        msg
    }

    /// The exact bytes a holder's wallet signs for a proof at `signed_at`.
    /// Wallet apps build their proof from this.
    pub fn holder_message(&self, signed_at: u32) -> Vec<u8> {
        let mut msg = Vec::with_capacity(HOLDER_DOMAIN.len() + 20);
        msg.extend_from_slice(HOLDER_DOMAIN);
        msg.extend_from_slice(&self.event_id.to_be_bytes());
        msg.extend_from_slice(&self.ticket_id.to_be_bytes());
        msg.extend_from_slice(&self.generation.to_be_bytes());
        msg.extend_from_slice(&signed_at.to_be_bytes());
        msg
    }

    fn read(bytes: &[u8; BODY_LEN]) -> Self {
        let (event, rest) = bytes.split_at(8);
        let (ticket, rest) = rest.split_at(4);
        let (tier, rest) = rest.split_at(1);
        let (owner, generation) = rest.split_at(32);
        Self {
            event_id: u64::from_be_bytes(array(event)),
            ticket_id: u32::from_be_bytes(array(ticket)),
            tier: tier[0],
            owner: PublicKeyBytes(array(owner)),
            generation: u32::from_be_bytes(array(generation)),
        }
    }
}

/// Copies a slice whose length the caller has already fixed into an array.
fn array<const N: usize>(slice: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(slice);
    out
}

/// Reads fixed-size fields off the front of a slice whose total length the
/// caller has checked.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let (head, rest) = self.0.split_at(N);
        self.0 = rest;
        array(head)
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.take())
    }
}

impl Credential {
    /// Issues (signs) a credential with the event's issuer key.
    pub fn issue(body: CredentialBody, issuer: &SigningKey) -> Self {
        let signature = issuer.sign(&body.issuer_message());
        Self {
            body,
            issuer_signature: signature.to_bytes(),
            holder_proof: None,
        }
    }

    /// Adds (or replaces) the holder's rotating proof, signed by the owner's
    /// wallet key at `signed_at` (format version 1).
    pub fn with_holder_proof(mut self, owner_wallet: &SigningKey, signed_at: u32) -> Self {
        let signature = owner_wallet.sign(&self.body.holder_message(signed_at));
        self.holder_proof = Some(HolderProof::Wallet {
            signed_at,
            signature: signature.to_bytes(),
        });
        self
    }

    /// Adds (or replaces) a delegated holder proof: `delegation` (signed by
    /// the owner's wallet) and a proof at `signed_at` signed by the session
    /// key it approves (format version 2).
    pub fn with_session_proof(
        mut self,
        delegation: Delegation,
        session_key: &SigningKey,
        signed_at: u32,
    ) -> Self {
        let message = session::session_proof_message(&self.body, signed_at);
        self.holder_proof = Some(HolderProof::Session {
            delegation,
            signed_at,
            signature: session_key.sign(&message).to_bytes(),
        });
        self
    }

    /// The binary form (see the module documentation for the layouts).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(WITH_DELEGATED_PROOF_LEN);
        let (version, flags) = match &self.holder_proof {
            None => (FORMAT_VERSION, 0),
            Some(HolderProof::Wallet { .. }) => (FORMAT_VERSION, FLAG_HOLDER_PROOF),
            Some(HolderProof::Session { .. }) => (FORMAT_VERSION_DELEGATED, 0),
        };
        out.push(version);
        out.push(flags);
        self.body.write_signed_part(&mut out);
        out.extend_from_slice(&self.issuer_signature);
        match &self.holder_proof {
            None => {}
            Some(HolderProof::Wallet {
                signed_at,
                signature,
            }) => {
                out.extend_from_slice(&signed_at.to_be_bytes());
                out.extend_from_slice(signature);
            }
            Some(HolderProof::Session {
                delegation,
                signed_at,
                signature,
            }) => {
                out.push(delegation.scope.to_byte());
                out.extend_from_slice(&delegation.session_key.0);
                out.extend_from_slice(&delegation.valid_from.to_be_bytes());
                out.extend_from_slice(&delegation.valid_until.to_be_bytes());
                out.extend_from_slice(&delegation.owner_signature);
                out.extend_from_slice(&signed_at.to_be_bytes());
                out.extend_from_slice(signature);
            }
        }
        out
    }

    /// Parses the binary form. Checks structure only, not signatures. Every
    /// length is checked before a field is read, so no input panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CredentialError> {
        let Some((&version, rest)) = bytes.split_first() else {
            return Err(CredentialError::Empty);
        };
        if version != FORMAT_VERSION && version != FORMAT_VERSION_DELEGATED {
            return Err(CredentialError::UnsupportedVersion(version));
        }
        let Some((&flags, _)) = rest.split_first() else {
            return Err(CredentialError::WrongLength { len: bytes.len() });
        };
        let allowed_flags = if version == FORMAT_VERSION {
            FLAG_HOLDER_PROOF
        } else {
            0
        };
        if flags & !allowed_flags != 0 {
            return Err(CredentialError::UnknownFlags(flags));
        }
        let expected = match (version, flags & FLAG_HOLDER_PROOF != 0) {
            (FORMAT_VERSION, false) => BASE_LEN,
            (FORMAT_VERSION, true) => WITH_PROOF_LEN,
            _ => WITH_DELEGATED_PROOF_LEN,
        };
        if bytes.len() != expected {
            return Err(CredentialError::WrongLength { len: bytes.len() });
        }
        let mut fields = Fields(&bytes[SIGNED_LEN..]);
        let body = CredentialBody::read(&array(&bytes[2..SIGNED_LEN]));
        let issuer_signature = fields.take();
        let holder_proof = match expected {
            BASE_LEN => None,
            WITH_PROOF_LEN => Some(HolderProof::Wallet {
                signed_at: fields.u32(),
                signature: fields.take(),
            }),
            _ => {
                let [scope] = fields.take();
                let scope = DelegationScope::from_byte(scope)
                    .ok_or(CredentialError::UnknownDelegationScope(scope))?;
                let delegation = Delegation {
                    scope,
                    session_key: PublicKeyBytes(fields.take()),
                    valid_from: fields.u32(),
                    valid_until: fields.u32(),
                    owner_signature: fields.take(),
                };
                Some(HolderProof::Session {
                    delegation,
                    signed_at: fields.u32(),
                    signature: fields.take(),
                })
            }
        };
        Ok(Self {
            body,
            issuer_signature,
            holder_proof,
        })
    }

    /// The keyboard-safe text a QR code, a serial scanner or a keyboard-wedge
    /// scanner carries.
    pub fn encode(&self) -> String {
        data_encoding::BASE32_NOPAD.encode(&self.to_bytes())
    }

    /// Reads the text form. Surrounding whitespace (a scanner's CR/LF) and
    /// letter case are ignored; anything else that is off is an error.
    pub fn decode(text: &str) -> Result<Self, CredentialError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(CredentialError::Empty);
        }
        if text.len() > MAX_TEXT_LEN {
            return Err(CredentialError::Oversized { len: text.len() });
        }
        let upper = text.to_ascii_uppercase();
        let bytes = data_encoding::BASE32_NOPAD
            .decode(upper.as_bytes())
            .map_err(|e| CredentialError::BadEncoding {
                position: e.position,
            })?;
        Self::from_bytes(&bytes)
    }

    /// Checks the issuer signature against the keys trusted for the event, and
    /// the holder proof (if present): a wallet proof against the owner key; a
    /// delegated one's delegation against the owner key and its proof against
    /// the delegated session key.
    pub fn verify(&self, keys: &impl IssuerKeys) -> Result<VerifiedCredential, CredentialError> {
        let trusted = keys.issuer_keys(self.body.event_id);
        if trusted.is_empty() {
            return Err(CredentialError::UnknownIssuer {
                event_id: self.body.event_id,
            });
        }
        let message = self.body.issuer_message();
        let signature = Signature::from_bytes(&self.issuer_signature);
        let issuer_ok = trusted
            .iter()
            .filter_map(PublicKeyBytes::verifying_key)
            .any(|key| key.verify_strict(&message, &signature).is_ok());
        if !issuer_ok {
            return Err(CredentialError::BadIssuerSignature);
        }
        let holder_proof = match &self.holder_proof {
            None => None,
            Some(HolderProof::Wallet {
                signed_at,
                signature,
            }) => {
                let message = self.body.holder_message(*signed_at);
                check(&self.body.owner, &message, signature)
                    .ok_or(CredentialError::BadHolderSignature)?;
                Some(CheckedHolderProof::Wallet {
                    signed_at: UnixSeconds::from(*signed_at),
                })
            }
            Some(HolderProof::Session {
                delegation,
                signed_at,
                signature,
            }) => {
                let approval = delegation.request().message(&self.body);
                check(
                    &self.body.owner,
                    approval.as_bytes(),
                    &delegation.owner_signature,
                )
                .ok_or(CredentialError::BadDelegationSignature)?;
                let proof = session::session_proof_message(&self.body, *signed_at);
                check(&delegation.session_key, &proof, signature)
                    .ok_or(CredentialError::BadSessionSignature)?;
                Some(CheckedHolderProof::Session {
                    signed_at: UnixSeconds::from(*signed_at),
                    scope: delegation.scope,
                    key_valid_from: UnixSeconds::from(delegation.valid_from),
                    key_valid_until: UnixSeconds::from(delegation.valid_until),
                })
            }
        };
        Ok(VerifiedCredential {
            body: self.body,
            holder_proof,
        })
    }
}

/// `Some(())` when `signature` over `message` verifies (strictly) with `key`.
fn check(key: &PublicKeyBytes, message: &[u8], signature: &[u8; 64]) -> Option<()> {
    let key: VerifyingKey = key.verifying_key()?;
    key.verify_strict(message, &Signature::from_bytes(signature))
        .ok()
}

/// Decodes and verifies in one step: what a gate does with a scanned line.
pub fn verify_text(
    text: &str,
    keys: &impl IssuerKeys,
) -> Result<VerifiedCredential, CredentialError> {
    Credential::decode(text)?.verify(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn body() -> CredentialBody {
        CredentialBody {
            event_id: 42,
            ticket_id: 7,
            tier: 1,
            owner: PublicKeyBytes::from(&key(9).verifying_key()),
            generation: 3,
        }
    }

    fn keys_for(issuer: &SigningKey) -> impl IssuerKeys {
        let public = PublicKeyBytes::from(&issuer.verifying_key());
        move |event_id: u64| if event_id == 42 { vec![public] } else { vec![] }
    }

    #[test]
    fn lengths_match_the_documented_layout() {
        let cred = Credential::issue(body(), &key(1));
        assert_eq!(cred.to_bytes().len(), BASE_LEN);
        assert_eq!(cred.encode().len(), 184);
        let with_proof = cred.with_holder_proof(&key(9), 1_700_000_000);
        assert_eq!(with_proof.to_bytes().len(), WITH_PROOF_LEN);
        assert_eq!(with_proof.encode().len(), 293);
    }

    #[test]
    fn text_is_keyboard_safe_and_case_insensitive() {
        let cred = Credential::issue(body(), &key(1));
        let text = cred.encode();
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        );
        let typed_with_caps_lock = format!("  {}\r\n", text.to_ascii_lowercase());
        assert_eq!(Credential::decode(&typed_with_caps_lock), Ok(cred));
    }

    #[test]
    fn second_issuer_key_during_rotation_is_accepted() {
        let old = key(1);
        let new = key(2);
        let keys = |_: u64| {
            vec![
                PublicKeyBytes::from(&old.verifying_key()),
                PublicKeyBytes::from(&new.verifying_key()),
            ]
        };
        let cred = Credential::issue(body(), &new);
        assert!(cred.verify(&keys).is_ok());
    }

    #[test]
    fn holder_proof_by_someone_else_is_refused() {
        let cred = Credential::issue(body(), &key(1)).with_holder_proof(&key(10), 5);
        assert_eq!(
            cred.verify(&keys_for(&key(1))),
            Err(CredentialError::BadHolderSignature)
        );
    }

    #[test]
    fn unknown_event_has_no_issuer() {
        let mut b = body();
        b.event_id = 43;
        let cred = Credential::issue(b, &key(1));
        assert_eq!(
            cred.verify(&keys_for(&key(1))),
            Err(CredentialError::UnknownIssuer { event_id: 43 })
        );
    }
}
