//! The check of a gate's signed HTTP request, short of its nonce.
//!
//! A gate signs every request with its device key over
//! [`device_request_message`] and sends the signature in the `x-gate-*`
//! headers. Reading those headers and checking the signature is pure: the
//! device's key, the server's clock and its window are passed in. Whether the
//! device exists, is revoked, or has used the nonce before is the server's
//! store's to say.

use std::fmt;

use ed25519_dalek::Signature;
use uuid::Uuid;

use crate::UnixSeconds;
use crate::keys::PublicKeyBytes;
use crate::wire::device_request_message;

/// Most bytes of a request nonce.
pub const MAX_NONCE_LEN: usize = 64;

/// The signature headers of a device request as they arrived (`None`: the
/// header is missing or not readable text).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceHeaders<'a> {
    pub device_id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Signature headers that are all present and well formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceSignature<'a> {
    pub device_id: Uuid,
    /// When the device signed, by its clock (Unix seconds).
    pub timestamp: UnixSeconds,
    pub nonce: &'a str,
    pub signature: [u8; 64],
}

/// Why a device request is refused. The text is what the gate is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceRequestError {
    MissingHeader,
    MalformedDeviceId,
    MalformedTimestamp,
    BadNonce,
    MalformedSignature,
    /// The timestamp is further from the server's clock than its window.
    OutsideWindow,
    /// The key on record for the device is not a valid ed25519 key.
    InvalidKey,
    BadSignature,
}

impl DeviceRequestError {
    /// The reason in words, for the gate's log and the server's answer.
    pub fn reason(self) -> &'static str {
        match self {
            Self::MissingHeader => "missing or unreadable device signature headers",
            Self::MalformedDeviceId => "malformed device id",
            Self::MalformedTimestamp => "malformed timestamp",
            Self::BadNonce => "nonce must be 1 to 64 characters",
            Self::MalformedSignature => "malformed signature",
            Self::OutsideWindow => {
                "request timestamp outside the allowed window; check the gate's clock"
            }
            Self::InvalidKey => "device key is invalid",
            Self::BadSignature => "bad device signature",
        }
    }
}

impl fmt::Display for DeviceRequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for DeviceRequestError {}

impl<'a> DeviceHeaders<'a> {
    /// Reads the headers: all four present, a UUID device id, an integer
    /// timestamp, a nonce of 1 to [`MAX_NONCE_LEN`] bytes and a base58
    /// 64-byte signature.
    pub fn parse(&self) -> Result<DeviceSignature<'a>, DeviceRequestError> {
        let present = |h: Option<&'a str>| h.ok_or(DeviceRequestError::MissingHeader);
        let device_id = Uuid::parse_str(present(self.device_id)?)
            .map_err(|_| DeviceRequestError::MalformedDeviceId)?;
        let timestamp = present(self.timestamp)?
            .parse()
            .map_err(|_| DeviceRequestError::MalformedTimestamp)?;
        let nonce = present(self.nonce)?;
        if nonce.is_empty() || nonce.len() > MAX_NONCE_LEN {
            return Err(DeviceRequestError::BadNonce);
        }
        let signature = bs58::decode(present(self.signature)?)
            .into_vec()
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .ok_or(DeviceRequestError::MalformedSignature)?;
        Ok(DeviceSignature {
            device_id,
            timestamp,
            nonce,
            signature,
        })
    }
}

impl DeviceSignature<'_> {
    /// Checks the timestamp against the server's clock (at most
    /// `window_secs` apart either way) and the signature over (method, path
    /// with query, timestamp, nonce, body hash) against the device's key.
    pub fn check(
        &self,
        device_key: &PublicKeyBytes,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        now: UnixSeconds,
        window_secs: u32,
    ) -> Result<(), DeviceRequestError> {
        if now.abs_diff(self.timestamp) > u64::from(window_secs) {
            return Err(DeviceRequestError::OutsideWindow);
        }
        let key = device_key
            .verifying_key()
            .ok_or(DeviceRequestError::InvalidKey)?;
        let message =
            device_request_message(method, path_and_query, self.timestamp, self.nonce, body);
        key.verify_strict(&message, &Signature::from_bytes(&self.signature))
            .map_err(|_| DeviceRequestError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;

    const NOW: UnixSeconds = 1_700_000_000;

    fn signed(key: &SigningKey, timestamp: UnixSeconds) -> (String, String) {
        let message = device_request_message("POST", "/gate/v1/journal", timestamp, "n1", b"{}");
        (
            timestamp.to_string(),
            bs58::encode(key.sign(&message).to_bytes()).into_string(),
        )
    }

    fn check(timestamp: &str, signature: &str, key: &SigningKey) -> Result<(), DeviceRequestError> {
        let headers = DeviceHeaders {
            device_id: Some("0190f5a0-0000-7000-8000-000000000001"),
            timestamp: Some(timestamp),
            nonce: Some("n1"),
            signature: Some(signature),
        };
        headers.parse()?.check(
            &PublicKeyBytes::from(&key.verifying_key()),
            "post",
            "/gate/v1/journal",
            b"{}",
            NOW,
            120,
        )
    }

    #[test]
    fn a_request_signed_by_the_device_inside_the_window_passes() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let (timestamp, signature) = signed(&key, NOW - 120);
        assert_eq!(check(&timestamp, &signature, &key), Ok(()));
        let other = SigningKey::from_bytes(&[6; 32]);
        assert_eq!(
            check(&timestamp, &signature, &other),
            Err(DeviceRequestError::BadSignature)
        );
        let (late, signature) = signed(&key, NOW + 121);
        assert_eq!(
            check(&late, &signature, &key),
            Err(DeviceRequestError::OutsideWindow)
        );
    }

    #[test]
    fn timestamps_at_the_ends_of_the_integer_range_are_outside_the_window() {
        let key = SigningKey::from_bytes(&[5; 32]);
        for timestamp in [i64::MIN, i64::MAX] {
            let (text, signature) = signed(&key, timestamp);
            assert_eq!(
                check(&text, &signature, &key),
                Err(DeviceRequestError::OutsideWindow)
            );
        }
    }

    #[test]
    fn missing_and_malformed_headers_are_named() {
        let parse = |headers: DeviceHeaders<'_>| headers.parse().map(|_| ());
        assert_eq!(
            parse(DeviceHeaders::default()),
            Err(DeviceRequestError::MissingHeader)
        );
        let good = DeviceHeaders {
            device_id: Some("0190f5a0-0000-7000-8000-000000000001"),
            timestamp: Some("1"),
            nonce: Some("n"),
            signature: Some("1"),
        };
        assert_eq!(parse(good), Err(DeviceRequestError::MalformedSignature));
        let long_nonce = "n".repeat(MAX_NONCE_LEN + 1);
        for (headers, error) in [
            (
                DeviceHeaders {
                    device_id: Some("gate-1"),
                    ..good
                },
                DeviceRequestError::MalformedDeviceId,
            ),
            (
                DeviceHeaders {
                    timestamp: Some("soon"),
                    ..good
                },
                DeviceRequestError::MalformedTimestamp,
            ),
            (
                DeviceHeaders {
                    nonce: Some(""),
                    ..good
                },
                DeviceRequestError::BadNonce,
            ),
            (
                DeviceHeaders {
                    nonce: Some(&long_nonce),
                    ..good
                },
                DeviceRequestError::BadNonce,
            ),
        ] {
            assert_eq!(parse(headers), Err(error));
        }
    }
}
