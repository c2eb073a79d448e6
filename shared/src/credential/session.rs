//! The delegated holder proof (format version 2): the owner's wallet signs
//! once a *delegation* of a session key that a browser made, and that key
//! signs (ticket, time) every few seconds.
//!
//! A wallet cannot be asked to sign every few seconds, but a browser can:
//! the ticket page makes an ed25519 key it cannot export, has the wallet
//! approve it for a while (for one ticket, or for every ticket the wallet
//! holds at the event), and then signs a fresh proof with it whenever the
//! code is redrawn. The gate checks, offline, that the wallet which approved
//! the key is the ticket's owner and that the proof is recent on its clock.
//!
//! What the wallet signs is readable text (wallets show it before signing);
//! what the session key signs is a short domain-separated byte string. Both
//! are rebuilt here from the code's fields, never carried in the code.
//! `docs/holder-proof.md` is the reference for the page that makes them.

use std::fmt::Write as _;

use ed25519_dalek::{Signer, SigningKey};

use super::CredentialBody;
use crate::keys::PublicKeyBytes;

/// Domain separation for session-key proofs: the bytes a session key signs
/// start with it, so such a signature is never anything else.
pub const SESSION_PROOF_DOMAIN: &[u8] = b"nft-gate/session-proof/v1";

/// The first line of a delegation message (the text a wallet signs). It
/// separates a delegation from every other message a wallet may sign.
pub const DELEGATION_HEADER_TICKET: &str =
    "nft-gate: allow this browser key to show my ticket at the gate";
/// The first line of a delegation for every ticket of the event.
pub const DELEGATION_HEADER_EVENT: &str =
    "nft-gate: allow this browser key to show my tickets at the gate";

/// Which tickets a delegated session key may show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DelegationScope {
    /// This ticket, while it stays at this generation: any transfer (even
    /// one back to the same wallet) voids the delegation.
    Ticket,
    /// Every ticket the signing wallet holds for the event. A ticket the
    /// wallet transferred away is no longer covered: its owner is then
    /// someone else.
    Event,
}

impl DelegationScope {
    /// The scope's byte in the binary layout.
    pub fn to_byte(self) -> u8 {
        match self {
            Self::Ticket => 0,
            Self::Event => 1,
        }
    }

    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Self::Ticket),
            1 => Some(Self::Event),
            _ => None,
        }
    }

    /// The scope's name in the API (`ticket`, `event`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Ticket => "ticket",
            Self::Event => "event",
        }
    }
}

/// The owner wallet's approval of a session key: what the code carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delegation {
    pub scope: DelegationScope,
    /// The browser's ed25519 public key.
    pub session_key: PublicKeyBytes,
    /// First second the key may sign proofs (Unix seconds, inclusive).
    pub valid_from: u32,
    /// First second it may no longer (exclusive).
    pub valid_until: u32,
    /// The owner wallet's signature of [`Delegation::message`].
    pub owner_signature: [u8; 64],
}

/// What the ticket's owner wallet is asked to approve: a delegation without
/// its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DelegationRequest {
    pub scope: DelegationScope,
    pub session_key: PublicKeyBytes,
    pub valid_from: u32,
    pub valid_until: u32,
}

impl DelegationRequest {
    /// The exact text the owner's wallet signs (UTF-8, in fact ASCII; lines
    /// end with `\n`; no newline after the last line). For a ticket:
    ///
    /// ```text
    /// nft-gate: allow this browser key to show my ticket at the gate
    /// key: <session key, base58>
    /// event: <event id>
    /// ticket: <ticket id> (generation <generation>)
    /// valid: <YYYY-MM-DD HH:MM:SS> UTC to <YYYY-MM-DD HH:MM:SS> UTC
    /// ```
    ///
    /// For every ticket of the event the first line says "my tickets" and
    /// the ticket line is `ticket: every ticket I hold for this event`.
    pub fn message(&self, body: &CredentialBody) -> String {
        let mut text = String::with_capacity(256);
        let header = match self.scope {
            DelegationScope::Ticket => DELEGATION_HEADER_TICKET,
            DelegationScope::Event => DELEGATION_HEADER_EVENT,
        };
        // Writing to a String cannot fail.
        let _ = write!(
            text,
            "{header}\nkey: {}\nevent: {}\n",
            self.session_key.to_base58(),
            body.event_id
        );
        let _ = match self.scope {
            DelegationScope::Ticket => writeln!(
                text,
                "ticket: {} (generation {})",
                body.ticket_id, body.generation
            ),
            DelegationScope::Event => writeln!(text, "ticket: every ticket I hold for this event"),
        };
        let _ = write!(
            text,
            "valid: {} UTC to {} UTC",
            utc_text(self.valid_from),
            utc_text(self.valid_until)
        );
        text
    }

    /// Signs the request with the owner's wallet key (what a wallet's
    /// `signMessage` does with [`Self::message`]'s bytes).
    pub fn sign(self, owner_wallet: &SigningKey, body: &CredentialBody) -> Delegation {
        let signature = owner_wallet.sign(self.message(body).as_bytes());
        Delegation {
            scope: self.scope,
            session_key: self.session_key,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            owner_signature: signature.to_bytes(),
        }
    }
}

impl Delegation {
    /// The request this delegation approves.
    pub fn request(&self) -> DelegationRequest {
        DelegationRequest {
            scope: self.scope,
            session_key: self.session_key,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
        }
    }
}

/// The exact bytes a session key signs for a proof at `signed_at`:
/// `SESSION_PROOF_DOMAIN || event id (u64) || ticket id (u32) || generation
/// (u32) || signed_at (u32)`, integers big-endian; 45 bytes.
pub fn session_proof_message(body: &CredentialBody, signed_at: u32) -> Vec<u8> {
    let mut msg = Vec::with_capacity(SESSION_PROOF_DOMAIN.len() + 20);
    msg.extend_from_slice(SESSION_PROOF_DOMAIN);
    msg.extend_from_slice(&body.event_id.to_be_bytes());
    msg.extend_from_slice(&body.ticket_id.to_be_bytes());
    msg.extend_from_slice(&body.generation.to_be_bytes());
    msg.extend_from_slice(&signed_at.to_be_bytes());
    msg
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS` in UTC (what JavaScript's
/// `toISOString()` gives, without the `T`, the milliseconds and the `Z`).
pub fn utc_text(secs: u32) -> String {
    let secs = i64::from(secs);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let of_day = secs.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_text_matches_the_calendar() {
        assert_eq!(utc_text(0), "1970-01-01 00:00:00");
        assert_eq!(utc_text(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc_text(1_764_072_000), "2025-11-25 12:00:00");
        assert_eq!(utc_text(1_798_761_599), "2026-12-31 23:59:59");
        assert_eq!(utc_text(u32::MAX), "2106-02-07 06:28:15");
    }
}
