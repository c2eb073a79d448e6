//! Enrolment: the box's device key and what the sync server said when the box
//! enrolled (device id, event, gate, the server's cache-signing key, URL).
//!
//! The key lives in `device.key` beside the store file (mode 0600, created
//! once, never replaced). The enrolment lives in the store's `meta` table, and
//! [`Enrolment::apply_to`] makes it the gate's identity for `run`, `verify`
//! and `cache import`: an enrolled gate takes its number, name, direction,
//! tiers, event and trusted server key from the server, not from the file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use shared::PublicKeyBytes;
use shared::wire::{EnrolRequest, EnrolResponse, ErrorBody, GateInfo, PROTOCOL_VERSION};
use uuid::Uuid;

use crate::config::Config;
use crate::store::{Store, StoreError};

const KEY_FILE: &str = "device.key";

/// What the server told this box at enrolment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    pub device_id: Uuid,
    pub event_id: u64,
    pub gate: GateInfo,
    pub server_key: PublicKeyBytes,
    pub server_url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    #[error(
        "this gate is already enrolled (device {device_id}, gate {gate} of event {event_id}, server {server_url}); \
         to enrol it again, stop the agent and move {db} and {key} aside first"
    )]
    AlreadyEnrolled {
        device_id: Uuid,
        gate: u32,
        event_id: u64,
        server_url: String,
        db: PathBuf,
        key: PathBuf,
    },
    #[error("the server refused the enrolment token ({code}): {message}")]
    TokenRefused { code: String, message: String },
    #[error("the server refused the enrolment ({status}, {code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    #[error("cannot reach the sync server at {url}: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    #[error("the server's answer is not an enrolment response: {0}")]
    BadResponse(String),
    #[error("server URL \"{0}\" must start with http:// or https://")]
    BadUrl(String),
    #[error("device key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Enrolment {
    /// The enrolment recorded in the store, if the box is enrolled.
    pub fn load(store: &Store) -> Result<Option<Self>, StoreError> {
        let Some(device_id) = store.meta("device_id")? else {
            return Ok(None);
        };
        let corrupt = |what: &str| StoreError::Corrupt(format!("enrolment: {what}"));
        let device_id = Uuid::parse_str(&device_id).map_err(|_| corrupt("device id"))?;
        let event_id = store
            .meta("enrolled_event_id")?
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| corrupt("event id"))?;
        let gate: GateInfo = store
            .meta("enrolled_gate")?
            .and_then(|v| serde_json::from_str(&v).ok())
            .ok_or_else(|| corrupt("gate"))?;
        let server_key = store
            .meta("enrolled_server_key")?
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| corrupt("server key"))?;
        let server_url = store
            .meta("server_url")?
            .ok_or_else(|| corrupt("server url"))?;
        Ok(Some(Self {
            device_id,
            event_id,
            gate,
            server_key,
            server_url,
        }))
    }

    fn save(&self, store: &mut Store) -> Result<(), StoreError> {
        let gate =
            serde_json::to_string(&self.gate).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        store.set_meta(&[
            ("device_id", self.device_id.to_string()),
            ("enrolled_event_id", self.event_id.to_string()),
            ("enrolled_gate", gate),
            ("enrolled_server_key", self.server_key.to_base58()),
            ("server_url", self.server_url.clone()),
        ])
    }

    /// Makes the server's view of this gate the one the agent runs with.
    pub fn apply_to(&self, config: &mut Config) {
        config.gate.number = self.gate.number;
        config.gate.name = self.gate.name.clone();
        config.gate.direction = self.gate.direction;
        config.gate.allowed_tiers = self.gate.allowed_tiers.clone();
        config.gate.event_id = Some(self.event_id);
        config.gate.server_key = Some(self.server_key.to_base58());
    }

    /// The URL the sync task talks to: the config's override, else the enrolled one.
    pub fn server_url<'a>(&'a self, config: &'a Config) -> &'a str {
        config.sync.server.as_deref().unwrap_or(&self.server_url)
    }
}

/// Reads the enrolment from the configured store (when the file exists) and
/// applies it to `config`. Returns the enrolment.
pub fn apply_stored(config: &mut Config) -> Result<Option<Enrolment>, StoreError> {
    if !config.store.path.exists() {
        return Ok(None);
    }
    let store = Store::open(&config.store.path)?;
    let enrolment = Enrolment::load(&store)?;
    if let Some(e) = &enrolment {
        e.apply_to(config);
    }
    Ok(enrolment)
}

/// Where the device key is kept: beside the store file.
pub fn key_path(config: &Config) -> PathBuf {
    config.store.path.with_file_name(KEY_FILE)
}

/// Reads the device key.
pub fn load_key(path: &Path) -> Result<SigningKey, EnrolError> {
    let err = |message: String| EnrolError::Key {
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let bytes = bs58::decode(text.trim())
        .into_vec()
        .map_err(|_| err("not a base58 key".into()))?;
    let secret: [u8; 32] = bytes
        .try_into()
        .map_err(|_| err("a device key is 32 bytes".into()))?;
    Ok(SigningKey::from_bytes(&secret))
}

/// The device key: the existing one (a key file is never replaced), or a new
/// one written with mode 0600.
pub fn load_or_create_key(path: &Path) -> Result<SigningKey, EnrolError> {
    if path.exists() {
        return load_key(path);
    }
    let err = |message: String| EnrolError::Key {
        path: path.to_owned(),
        message,
    };
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| err(format!("no randomness: {e}")))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    }
    write_private(path, bs58::encode(secret).into_string().as_bytes())
        .map_err(|e| err(e.to_string()))?;
    tracing::info!(path = %path.display(), "created the device key");
    Ok(SigningKey::from_bytes(&secret))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// `gate-agent enrol`: registers this box's key with a one-time token and
/// records the answer in the store.
pub async fn enrol(config: &Config, server: &str, token: &str) -> Result<Enrolment, EnrolError> {
    let server = server.trim_end_matches('/').to_owned();
    if !server.starts_with("http://") && !server.starts_with("https://") {
        return Err(EnrolError::BadUrl(server));
    }
    let mut store = Store::open(&config.store.path)?;
    let key_path = key_path(config);
    if let Some(existing) = Enrolment::load(&store)? {
        return Err(EnrolError::AlreadyEnrolled {
            device_id: existing.device_id,
            gate: existing.gate.number,
            event_id: existing.event_id,
            server_url: existing.server_url,
            db: config.store.path.clone(),
            key: key_path,
        });
    }
    let key = load_or_create_key(&key_path)?;
    let request = EnrolRequest {
        v: PROTOCOL_VERSION,
        token: token.trim().to_owned(),
        device_key: PublicKeyBytes::from(&key.verifying_key()),
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        hostname: std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty()),
    };
    let url = format!("{server}/gate/v1/enrol");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(config.sync.request_timeout_secs))
        .build()
        .map_err(|source| EnrolError::Unreachable {
            url: url.clone(),
            source,
        })?;
    let response = client
        .post(&url)
        .json(&request)
        .send()
        .await
        .map_err(|source| EnrolError::Unreachable {
            url: url.clone(),
            source,
        })?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|source| EnrolError::Unreachable {
            url: url.clone(),
            source,
        })?;
    if !status.is_success() {
        let (code, message) = error_body(&body);
        return Err(if status.as_u16() == 401 {
            EnrolError::TokenRefused { code, message }
        } else {
            EnrolError::Refused {
                status: status.as_u16(),
                code,
                message,
            }
        });
    }
    let answer: EnrolResponse =
        serde_json::from_slice(&body).map_err(|e| EnrolError::BadResponse(e.to_string()))?;
    let enrolment = Enrolment {
        device_id: answer.device_id,
        event_id: answer.event_id,
        gate: answer.gate,
        server_key: answer.server_key,
        server_url: server,
    };
    enrolment.save(&mut store)?;
    Ok(enrolment)
}

/// The code and message of a server's error answer ([`ErrorBody`]); for
/// anything else (a proxy's page, a cut-off body) `unknown` and the start of
/// the raw text, so the operator still sees what came back.
pub(crate) fn error_body(body: &[u8]) -> (String, String) {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => (e.error.into_owned(), e.message),
        Err(_) => (
            "unknown".to_owned(),
            String::from_utf8_lossy(body).chars().take(200).collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_error_gives_its_code_and_message_and_anything_else_its_text() {
        assert_eq!(
            error_body(br#"{"error":"unknown_token","message":"no such token","field":null}"#),
            ("unknown_token".to_owned(), "no such token".to_owned())
        );
        assert_eq!(
            error_body(b"<html>502 Bad Gateway</html>"),
            (
                "unknown".to_owned(),
                "<html>502 Bad Gateway</html>".to_owned()
            )
        );
        let long = "x".repeat(500);
        assert_eq!(error_body(long.as_bytes()).1.len(), 200);
    }
}
