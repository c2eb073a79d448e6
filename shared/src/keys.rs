//! Public keys as they travel between the pieces.
//!
//! Solana wallets, event issuer keys and gate device keys are all ed25519
//! public keys. In human-readable formats (JSON, TOML) they are written in
//! base58 like every Solana address; in binary formats they are 32 raw bytes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A 32-byte ed25519 public key (also a Solana address).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(
        value_type = String,
        description = "An ed25519 public key (a Solana address), base58.",
        example = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"
    )
)]
pub struct PublicKeyBytes(pub [u8; 32]);

/// A string that is not a base58 32-byte key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a base58 public key of 32 bytes: {0:?}")]
pub struct ParseKeyError(pub String);

impl PublicKeyBytes {
    pub fn to_base58(&self) -> String {
        bs58::encode(self.0).into_string()
    }

    /// The key as an ed25519 verifying key, or `None` when the bytes are not a
    /// valid curve point (such a key can never have signed anything).
    pub fn verifying_key(&self) -> Option<ed25519_dalek::VerifyingKey> {
        ed25519_dalek::VerifyingKey::from_bytes(&self.0).ok()
    }
}

impl From<[u8; 32]> for PublicKeyBytes {
    fn from(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl From<&ed25519_dalek::VerifyingKey> for PublicKeyBytes {
    fn from(key: &ed25519_dalek::VerifyingKey) -> Self {
        Self(key.to_bytes())
    }
}

impl FromStr for PublicKeyBytes {
    type Err = ParseKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        match bs58::decode(s.trim()).onto(&mut out) {
            Ok(32) => Ok(Self(out)),
            _ => Err(ParseKeyError(s.to_owned())),
        }
    }
}

impl fmt::Display for PublicKeyBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base58())
    }
}

impl fmt::Debug for PublicKeyBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKeyBytes({})", self.to_base58())
    }
}

impl Serialize for PublicKeyBytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_base58())
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for PublicKeyBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            <[u8; 32]>::deserialize(deserializer).map(Self)
        }
    }
}

/// 64-byte signatures in serde: base58 in human-readable formats, raw bytes in
/// binary ones (serde has no built-in impl for arrays longer than 32).
pub(crate) mod signature_serde {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(sig: &[u8; 64], serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&bs58::encode(sig).into_string())
        } else {
            serializer.serialize_bytes(sig)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 64], D::Error> {
        let bytes: Vec<u8> = if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            bs58::decode(text).into_vec().map_err(D::Error::custom)?
        } else {
            serde_bytes_vec(deserializer)?
        };
        bytes
            .try_into()
            .map_err(|v: Vec<u8>| D::Error::custom(format!("signature of {} bytes", v.len())))
    }

    fn serde_bytes_vec<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("64 signature bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_borrowed_bytes<E: serde::de::Error>(self, v: &'de [u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        deserializer.deserialize_bytes(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base58_round_trip_and_refusals() {
        let key = PublicKeyBytes([7u8; 32]);
        let text = key.to_base58();
        assert_eq!(text.parse::<PublicKeyBytes>(), Ok(key));
        assert!("".parse::<PublicKeyBytes>().is_err());
        assert!(
            "0OIl".parse::<PublicKeyBytes>().is_err(),
            "not base58 characters"
        );
        assert!(
            bs58::encode([1u8; 31])
                .into_string()
                .parse::<PublicKeyBytes>()
                .is_err(),
            "31 bytes is not a key"
        );
        assert!(
            bs58::encode([1u8; 33])
                .into_string()
                .parse::<PublicKeyBytes>()
                .is_err(),
            "33 bytes is not a key"
        );
    }
}
