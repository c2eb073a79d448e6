//! The server's configuration: defaults < TOML file < environment < flags.
//!
//! Environment variables are `SYNC_` followed by the key in capitals, with
//! `__` between a section and its key (`SYNC_GATES__MAX_WAIT_SECS=20`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod api;
mod connections;
mod smtp;
mod stripe;

pub use api::{ApiSettings, MIN_JWT_SECRET_BYTES, Quota, REDIS_KEY_PREFIX, RateLimitSettings};
pub use connections::ConnectionSettings;
pub use smtp::{SmtpSettings, SmtpTls};
pub use stripe::StripeSettings;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// `sqlite://FILE` (the default, created when missing) or
    /// `postgres://user@host/db`.
    pub database_url: String,
    /// File holding the server's ed25519 key, which signs gate cache
    /// snapshots and deltas. Created (mode 0600) when missing.
    pub server_key_file: PathBuf,
    /// Bearer token for the organizer endpoints under `/api/admin`.
    /// Leave empty to disable them.
    pub admin_token: String,
    pub connections: ConnectionSettings,
    pub gates: GateSettings,
    pub chain: ChainSettings,
    pub replay: ReplaySettings,
    pub api: ApiSettings,
    pub smtp: SmtpSettings,
    pub stripe: StripeSettings,
}

/// Which database a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// `None` for a URL that is neither `sqlite:` nor `postgres:`.
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

/// Which chain the server uses, and the keys it holds for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChainSettings {
    /// `embedded` (the program in an in-process runtime, kept in
    /// `embedded_file`) or the URL of a cluster's JSON-RPC endpoint.
    pub rpc_url: String,
    /// Where the embedded chain keeps its accounts (SQLite).
    pub embedded_file: PathBuf,
    /// The server's chain key (Solana CLI keypair format): organizer of the
    /// events it creates and payer of their transactions. Created when missing.
    pub authority_key_file: PathBuf,
    /// The ed25519 key that signs ticket QR credentials (hex, like
    /// `server_key_file`). Gates verify credentials against its public half.
    pub issuer_key_file: PathBuf,
    /// Timeout of one RPC request, in seconds.
    pub rpc_timeout_secs: u32,
    /// With the embedded chain: also serve it as Solana JSON-RPC on this
    /// address (e.g. `127.0.0.1:8899`), so the `solana` CLI and wallets can
    /// read it. Empty: off.
    pub rpc_listen: String,
}

/// The replay worker, which records gate scans on chain in batches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplaySettings {
    /// Run the worker in this server (several servers may share the work).
    pub enabled: bool,
    /// Most entry records (one per ticket) per transaction (at most 21, what a
    /// legacy transaction holds).
    pub batch_max: u32,
    /// Pause between rounds when there is nothing to do, in milliseconds
    /// (new uploads wake the worker at once).
    pub idle_ms: u32,
    /// A batch whose transaction fails this many times is marked failed.
    pub max_attempts: u32,
    /// How long one server holds an event's replay before others may take
    /// it over (it renews while working), in seconds.
    pub lease_secs: u32,
    /// Keep a validator key at least this funded (lamports) for fees.
    pub validator_min_lamports: u64,
}

impl Default for ChainSettings {
    fn default() -> Self {
        Self {
            rpc_url: "embedded".into(),
            embedded_file: "chain.sqlite".into(),
            authority_key_file: "chain-authority.json".into(),
            issuer_key_file: "issuer-key.json".into(),
            rpc_timeout_secs: 30,
            rpc_listen: String::new(),
        }
    }
}

impl Default for ReplaySettings {
    fn default() -> Self {
        Self {
            enabled: true,
            batch_max: 21,
            idle_ms: 1000,
            max_attempts: 8,
            lease_secs: 30,
            validator_min_lamports: 50_000_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GateSettings {
    /// How far a device's request timestamp may be from the server's clock.
    pub signature_window_secs: u32,
    /// A gate heard from within this long is shown online.
    pub online_within_secs: u32,
    /// Longest a delta request waits for a change before answering empty.
    pub max_wait_secs: u32,
    /// Largest journal batch accepted in one upload.
    pub max_batch: u32,
    /// Lifetime of a new enrolment token.
    pub enrol_token_ttl_secs: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: "sqlite://sync-server.db".into(),
            server_key_file: "server-key.json".into(),
            admin_token: String::new(),
            connections: ConnectionSettings::default(),
            gates: GateSettings::default(),
            chain: ChainSettings::default(),
            replay: ReplaySettings::default(),
            api: Default::default(),
            smtp: Default::default(),
            stripe: Default::default(),
        }
    }
}

impl Default for GateSettings {
    fn default() -> Self {
        Self {
            signature_window_secs: 120,
            online_within_secs: 30,
            max_wait_secs: 25,
            max_batch: 1000,
            enrol_token_ttl_secs: 7 * 24 * 3600,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: String, message: String },
    #[error("invalid setting {key}: {message}")]
    Invalid { key: &'static str, message: String },
}

impl Config {
    /// Defaults, then the file (if given), then `SYNC_*` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table =
            toml::Table::try_from(Config::default()).map_err(|e| ConfigError::Invalid {
                key: "defaults",
                message: e.to_string(),
            })?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            let from_file: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::Parse {
                        path: path.to_owned(),
                        message: e.to_string(),
                    })?;
            merge(&mut table, from_file);
        }
        for (name, value) in env {
            let Some(key) = name.strip_prefix("SYNC_") else {
                continue;
            };
            let path: Vec<String> = key
                .to_ascii_lowercase()
                .split("__")
                .map(str::to_owned)
                .collect();
            set_path(&mut table, &path, &value).map_err(|message| ConfigError::Env {
                name: name.clone(),
                message,
            })?;
        }
        let config: Config = table
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                path: file
                    .map(Path::to_owned)
                    .unwrap_or_else(|| "environment".into()),
                message: e.to_string(),
            })?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if Backend::from_url(&self.database_url).is_none() {
            return Err(ConfigError::Invalid {
                key: "database_url",
                message: format!(
                    "database URL {:?} is neither sqlite: nor postgres:",
                    self.database_url
                ),
            });
        }
        if self.gates.max_batch == 0 {
            return Err(ConfigError::Invalid {
                key: "gates.max_batch",
                message: "must be at least 1".into(),
            });
        }
        if self.gates.signature_window_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "gates.signature_window_secs",
                message: "must be at least 1".into(),
            });
        }
        if self.api.public_url.trim_end_matches('/').len() > 60
            || !(self.api.public_url.starts_with("http://")
                || self.api.public_url.starts_with("https://"))
        {
            return Err(ConfigError::Invalid {
                key: "api.public_url",
                message:
                    "an http(s):// URL of at most 60 characters (it goes into every ticket NFT)"
                        .into(),
            });
        }
        if self.chain.rpc_url != "embedded"
            && !(self.chain.rpc_url.starts_with("http://")
                || self.chain.rpc_url.starts_with("https://"))
        {
            return Err(ConfigError::Invalid {
                key: "chain.rpc_url",
                message: "use `embedded` or an http(s):// JSON-RPC URL".into(),
            });
        }
        if !self.chain.rpc_listen.is_empty() {
            if self.chain.rpc_url != "embedded" {
                return Err(ConfigError::Invalid {
                    key: "chain.rpc_listen",
                    message: "only the embedded chain can be served over RPC".into(),
                });
            }
            self.chain
                .rpc_listen
                .parse::<SocketAddr>()
                .map_err(|e| ConfigError::Invalid {
                    key: "chain.rpc_listen",
                    message: format!("not an address like 127.0.0.1:8899: {e}"),
                })?;
        }
        if !(1..=ticketing::client::MAX_ENTRIES_PER_LEGACY_TX as u32)
            .contains(&self.replay.batch_max)
        {
            return Err(ConfigError::Invalid {
                key: "replay.batch_max",
                message: format!(
                    "must be 1 to {}",
                    ticketing::client::MAX_ENTRIES_PER_LEGACY_TX
                ),
            });
        }
        if self.replay.max_attempts == 0 || self.replay.lease_secs < 5 {
            return Err(ConfigError::Invalid {
                key: "replay",
                message: "max_attempts must be at least 1 and lease_secs at least 5".into(),
            });
        }
        if !self.admin_token.is_empty() && self.admin_token.len() < 16 {
            return Err(ConfigError::Invalid {
                key: "admin_token",
                message: "use at least 16 characters (or leave empty to disable the admin API)"
                    .into(),
            });
        }
        self.connections.validate()?;
        self.api.validate()?;
        self.smtp.validate()?;
        self.stripe.validate()?;
        Ok(())
    }
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Sets `path` in the table from an environment string, keeping the type of
/// the default it replaces (so numbers stay numbers).
fn set_path(table: &mut toml::Table, path: &[String], raw: &str) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("empty key")?;
    let mut current = table;
    for part in parents {
        current = match current.get_mut(part) {
            Some(toml::Value::Table(t)) => t,
            _ => return Err(format!("no section {part:?}")),
        };
    }
    let value = match current.get(last) {
        None => return Err(format!("no setting {last:?}")),
        Some(toml::Value::Integer(_)) => toml::Value::Integer(
            raw.parse()
                .map_err(|_| format!("{raw:?} is not a whole number"))?,
        ),
        Some(toml::Value::Boolean(_)) => toml::Value::Boolean(
            raw.parse()
                .map_err(|_| format!("{raw:?} is not true or false"))?,
        ),
        Some(_) => toml::Value::String(raw.to_owned()),
    };
    current.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.toml");
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:9000\"\n[gates]\nmax_wait_secs = 5\n",
        )
        .unwrap();
        let env = [
            ("SYNC_GATES__MAX_BATCH".to_owned(), "50".to_owned()),
            (
                "SYNC_DATABASE_URL".to_owned(),
                "postgres://postgres@localhost/x".to_owned(),
            ),
            ("UNRELATED".to_owned(), "x".to_owned()),
        ];
        let config = Config::load(Some(&path), env).unwrap();
        assert_eq!(config.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(config.gates.max_wait_secs, 5);
        assert_eq!(config.gates.max_batch, 50);
        assert_eq!(config.gates.online_within_secs, 30, "untouched default");
        assert_eq!(config.database_url, "postgres://postgres@localhost/x");
    }

    #[test]
    fn bad_files_and_values_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "listen = \"0.0.0.0:9000\"\nlisten_typo = 1\n").unwrap();
        let err = Config::load(Some(&path), []).unwrap_err().to_string();
        assert!(err.contains("listen_typo"), "{err}");

        std::fs::write(&path, "database_url = \"mysql://x\"\n").unwrap();
        let err = Config::load(Some(&path), []).unwrap_err().to_string();
        assert!(err.contains("database_url"), "{err}");

        let env = [("SYNC_GATES__MAX_BATCH".to_owned(), "lots".to_owned())];
        let err = Config::load(None, env).unwrap_err().to_string();
        assert!(err.contains("SYNC_GATES__MAX_BATCH"), "{err}");

        let err = Config::load(Some(&dir.path().join("missing.toml")), [])
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.toml"), "{err}");
    }
}

#[cfg(test)]
mod example_file {
    use super::*;

    #[test]
    fn shipped_example_is_valid_and_matches_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("sync-server.example.toml");
        let config = Config::load(Some(&path), []).unwrap();
        assert_eq!(config, Config::default());
    }
}
