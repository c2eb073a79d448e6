//! The agent's one configuration struct and how it is assembled:
//! built-in defaults < TOML file < `GATE_AGENT__SECTION__KEY` environment
//! variables < command-line flags (`--set section.key=value` and a few named flags).
//!
//! Validation collects every problem at once so a technician fixes a file in one
//! pass; `gate-agent config check FILE` prints them and exits non-zero.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::profiles::{BoardProfile, ScannerProfile};

/// Prefix of environment variables that override the file, e.g.
/// `GATE_AGENT__STORE__PATH=/var/lib/gate-agent/gate.db`.
pub const ENV_PREFIX: &str = "GATE_AGENT__";

/// Everything the agent needs to run. Paths that are relative in the file are
/// resolved against the file's folder when loaded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub gate: GateConfig,
    pub store: StoreConfig,
    pub outputs: OutputsConfig,
    pub qr: QrConfig,
    pub status: StatusConfig,
    pub sync: SyncConfig,
    pub log: LogConfig,
    /// Scanner inputs; several run at once, each feeding the one decision loop.
    #[serde(rename = "scanner")]
    pub scanners: Vec<ScannerConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GateConfig {
    /// This gate's number within the event (journal, "already inside ... at gate N").
    pub number: u32,
    /// Name shown on the kiosk page.
    pub name: String,
    /// Which event this gate admits to; unset means the only event in the cache.
    pub event_id: Option<u64>,
    /// `entry` or `exit`.
    pub direction: Direction,
    /// Tier indexes admitted here; unset admits every tier.
    pub allowed_tiers: Option<Vec<u8>>,
    /// Base58 public key of the server that signs cache files. Unset: the first
    /// imported cache's signer is trusted and later imports must match it.
    pub server_key: Option<String>,
}

pub use shared::Direction;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// SQLite file holding the ticket cache and the scan journal.
    pub path: PathBuf,
    /// What the gate does when a scan cannot be written to the journal.
    pub on_journal_failure: JournalFailurePolicy,
}

/// `reject` (fail closed, the default): the turnstile stays shut and staff see why.
/// `admit` (fail open): the verdict stands without a journal entry; use only where
/// the venue prefers flow over a complete record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JournalFailurePolicy {
    Reject,
    Admit,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputsConfig {
    /// `gpio` (turnstile HAT), `file` (append each actuation to `file`, fsynced),
    /// or `log` (bench setups without hardware).
    pub kind: OutputKind,
    /// Board profile with the GPIO lines; required for `gpio`.
    pub board_profile: Option<PathBuf>,
    /// Actuation log for `file`.
    pub file: Option<PathBuf>,
    pub relay_pulse_ms: u64,
    pub led_ms: u64,
    pub buzzer_admit_ms: u64,
    pub buzzer_reject_ms: u64,
    /// With a passage contact on the board (`passage` in the board
    /// profile): an admission whose holder has not passed this long after
    /// the relay opened is undone by the gate, within the event's undo
    /// window. 0 (the default) leaves undos to staff.
    pub passage_timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    Gpio,
    File,
    Log,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QrConfig {
    /// Time a camera frame may take to decode before harder (slower) passes are skipped.
    pub frame_budget_ms: u64,
    /// The same code seen again within this window after a verdict is ignored.
    pub repeat_suppress_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatusConfig {
    pub enabled: bool,
    /// Kiosk page, SSE feed and Prometheus metrics. Keep it on localhost.
    pub listen: SocketAddr,
}

/// Talking to the sync server. The server URL, device id and keys come from
/// `gate-agent enrol`; `server` here only overrides the enrolled URL (e.g. when
/// the server moved).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncConfig {
    /// Turns the sync task off even when enrolled (the gate then runs on
    /// cache files and journal exports only).
    pub enabled: bool,
    /// Overrides the server URL stored at enrolment, e.g. `http://sync.venue.lan:8080`.
    pub server: Option<String>,
    /// How long the server may hold a delta request open waiting for a change.
    pub poll_wait_secs: u32,
    /// A request that takes longer than this (beyond the long-poll wait) is
    /// given up and counts as failed.
    pub request_timeout_secs: u64,
    /// The gate goes offline after this many failed or slow requests in a
    /// row, and online again only after both the cache feed and the journal
    /// upload made a healthy round trip (see `crate::online`).
    pub offline_after_failures: u32,
    /// A request answered later than this (beyond the long-poll wait)
    /// counts as slow: the link is too poor to call the gate online.
    pub slow_request_ms: u64,
    /// Journal rows per upload.
    pub upload_batch: usize,
    /// Longest pause between retries after failures (exponential backoff with jitter).
    pub max_backoff_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `RUST_LOG` syntax; the `RUST_LOG` variable wins when set.
    pub filter: String,
    pub json: bool,
}

/// One scanner input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ScannerConfig {
    /// Serial scanner (USB CDC-ACM or RS-232) sending one code per line.
    Serial {
        name: Option<String>,
        device: PathBuf,
        /// Scanner profile file (baud, framing); fields below override it.
        profile: Option<PathBuf>,
        baud: Option<u32>,
        /// Line terminator, e.g. "\r\n".
        terminator: Option<String>,
        max_line: Option<usize>,
        /// A partial line older than this is dropped as garbage.
        line_timeout_ms: Option<u64>,
        /// How often to try reopening an unplugged port.
        reopen_ms: Option<u64>,
    },
    /// USB HID keyboard-wedge scanner read from evdev with an exclusive grab.
    Wedge {
        name: Option<String>,
        /// e.g. /dev/input/by-id/usb-...-event-kbd
        device: PathBuf,
        reopen_ms: Option<u64>,
    },
    /// V4L2 camera (needs the `camera` build feature).
    Camera {
        name: Option<String>,
        index: u32,
        width: u32,
        height: u32,
        fps: u32,
    },
    /// Images played from files or folders through the camera path (bench and tests).
    Images {
        name: Option<String>,
        paths: Vec<PathBuf>,
        /// Delay between frames.
        interval_ms: Option<u64>,
    },
    /// One code per line on standard input (bench and tests).
    Stdin { name: Option<String> },
}

impl ScannerConfig {
    /// Name used in the journal's `input` column and in logs.
    pub fn name(&self) -> String {
        let (name, fallback) = match self {
            Self::Serial { name, device, .. } => (name, format!("serial:{}", device.display())),
            Self::Wedge { name, device, .. } => (name, format!("wedge:{}", device.display())),
            Self::Camera { name, index, .. } => (name, format!("camera:{index}")),
            Self::Images { name, .. } => (name, "images".to_owned()),
            Self::Stdin { name } => (name, "stdin".to_owned()),
        };
        name.clone().unwrap_or(fallback)
    }
}

impl Default for GateConfig {
    fn default() -> Self {
        Self {
            number: 1,
            name: "Gate 1".to_owned(),
            event_id: None,
            direction: Direction::Entry,
            allowed_tiers: None,
            server_key: None,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("/var/lib/gate-agent/gate.db"),
            on_journal_failure: JournalFailurePolicy::Reject,
        }
    }
}

impl Default for OutputsConfig {
    fn default() -> Self {
        Self {
            kind: OutputKind::Log,
            board_profile: None,
            file: None,
            relay_pulse_ms: 200,
            led_ms: 1500,
            buzzer_admit_ms: 80,
            buzzer_reject_ms: 400,
            passage_timeout_ms: 0,
        }
    }
}

impl Default for QrConfig {
    fn default() -> Self {
        Self {
            frame_budget_ms: 120,
            repeat_suppress_ms: 3000,
        }
    }
}

impl Default for StatusConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 8088)),
        }
    }
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            server: None,
            poll_wait_secs: 25,
            request_timeout_secs: 10,
            offline_after_failures: 3,
            slow_request_ms: 5000,
            upload_batch: 200,
            max_backoff_secs: 60,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: "info".to_owned(),
            json: false,
        }
    }
}

impl OutputsConfig {
    pub fn relay_pulse(&self) -> Duration {
        Duration::from_millis(self.relay_pulse_ms)
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("flag --set {setting}: {message}")]
    Flag { setting: String, message: String },
    #[error("{}", Problems(.0))]
    Invalid(Vec<Problem>),
}

/// One thing wrong with a configuration, at a dotted path such as `scanner[0].baud`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub at: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

struct Problems<'a>(&'a [Problem]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} problem(s) in the configuration", self.0.len())?;
        for p in self.0 {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

/// Where configuration comes from, in increasing priority after the defaults.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    pub file: Option<PathBuf>,
    /// (name, value) pairs; only names starting with [`ENV_PREFIX`] are used.
    pub env: Vec<(String, String)>,
    /// `section.key=value` settings from the command line, applied last.
    pub flags: Vec<String>,
}

impl Sources {
    pub fn from_process_env(file: Option<PathBuf>, flags: Vec<String>) -> Self {
        Self {
            file,
            env: std::env::vars().collect(),
            flags,
        }
    }
}

impl Config {
    /// Loads and validates: defaults < file < environment < flags.
    pub fn load(sources: &Sources) -> Result<Self, ConfigError> {
        let mut tree =
            toml::Value::try_from(Config::default()).map_err(|e| ConfigError::Parse {
                path: PathBuf::from("<defaults>"),
                message: e.to_string(),
            })?;
        let mut base_dir = None;
        if let Some(path) = &sources.file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            let file: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::Parse {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
            merge(&mut tree, toml::Value::Table(file));
            base_dir = path.parent().map(Path::to_path_buf);
        }
        let mut env: Vec<_> = sources
            .env
            .iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        env.sort();
        for (var, value) in env {
            let dotted = var[ENV_PREFIX.len()..]
                .to_ascii_lowercase()
                .replace("__", ".");
            set_path(&mut tree, &dotted, value).map_err(|message| ConfigError::Env {
                var: var.clone(),
                message,
            })?;
        }
        for setting in &sources.flags {
            let (key, value) = setting.split_once('=').ok_or_else(|| ConfigError::Flag {
                setting: setting.clone(),
                message: "expected section.key=value".to_owned(),
            })?;
            set_path(&mut tree, key.trim(), value.trim()).map_err(|message| ConfigError::Flag {
                setting: setting.clone(),
                message,
            })?;
        }
        let path = sources
            .file
            .clone()
            .unwrap_or_else(|| PathBuf::from("<defaults>"));
        let mut config: Config =
            tree.try_into()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    path,
                    message: e.to_string(),
                })?;
        if let Some(dir) = base_dir {
            config.resolve_paths(&dir);
        }
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// Parses a TOML string alone (no environment), for tests and tools.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let file: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                path: PathBuf::from("<string>"),
                message: e.to_string(),
            })?;
        let mut tree =
            toml::Value::try_from(Config::default()).map_err(|e| ConfigError::Parse {
                path: PathBuf::from("<defaults>"),
                message: e.to_string(),
            })?;
        merge(&mut tree, toml::Value::Table(file));
        let config: Config = tree
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                path: PathBuf::from("<string>"),
                message: e.to_string(),
            })?;
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    fn resolve_paths(&mut self, dir: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        fix(&mut self.store.path);
        if let Some(p) = &mut self.outputs.board_profile {
            fix(p);
        }
        if let Some(p) = &mut self.outputs.file {
            fix(p);
        }
        for s in &mut self.scanners {
            match s {
                ScannerConfig::Serial {
                    profile: Some(p), ..
                } => fix(p),
                ScannerConfig::Images { paths, .. } => paths.iter_mut().for_each(fix),
                _ => {}
            }
        }
    }

    /// Every problem found, including in the profile files the config points to.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut bad = |at: &str, message: String| {
            out.push(Problem {
                at: at.to_owned(),
                message,
            });
        };
        if self.gate.name.trim().is_empty() {
            bad("gate.name", "must not be empty".into());
        }
        if let Some(key) = &self.gate.server_key
            && key.parse::<shared::PublicKeyBytes>().is_err()
        {
            bad(
                "gate.server_key",
                format!("\"{key}\" is not a base58 ed25519 public key"),
            );
        }
        if self.store.path.as_os_str().is_empty() {
            bad("store.path", "must not be empty".into());
        }
        if let Some(url) = &self.sync.server
            && !url.starts_with("http://")
            && !url.starts_with("https://")
        {
            bad(
                "sync.server",
                format!("\"{url}\" must start with http:// or https://"),
            );
        }
        if !(1..=500).contains(&self.sync.upload_batch) {
            bad(
                "sync.upload_batch",
                format!("{} is outside 1..=500", self.sync.upload_batch),
            );
        }
        if !(1..=300).contains(&self.sync.request_timeout_secs) {
            bad(
                "sync.request_timeout_secs",
                format!("{} is outside 1..=300", self.sync.request_timeout_secs),
            );
        }
        if self.sync.poll_wait_secs > 300 {
            bad(
                "sync.poll_wait_secs",
                format!("{} is above 300", self.sync.poll_wait_secs),
            );
        }
        if self.sync.max_backoff_secs == 0 {
            bad("sync.max_backoff_secs", "must be at least 1".into());
        }
        if !(1..=100).contains(&self.sync.offline_after_failures) {
            bad(
                "sync.offline_after_failures",
                format!("{} is outside 1..=100", self.sync.offline_after_failures),
            );
        }
        let timeout_ms = self.sync.request_timeout_secs.saturating_mul(1000);
        if !(100..=timeout_ms).contains(&self.sync.slow_request_ms) {
            bad(
                "sync.slow_request_ms",
                format!(
                    "{} is outside 100..={timeout_ms} (up to sync.request_timeout_secs)",
                    self.sync.slow_request_ms
                ),
            );
        }
        if !(20..=5000).contains(&self.outputs.relay_pulse_ms) {
            bad(
                "outputs.relay_pulse_ms",
                format!("{} is outside 20..=5000 ms", self.outputs.relay_pulse_ms),
            );
        }
        let timeout = self.outputs.passage_timeout_ms;
        if timeout > 0 && !(1_000..=60_000).contains(&timeout) {
            bad(
                "outputs.passage_timeout_ms",
                format!("{timeout} is outside 1000..=60000 ms (0 turns it off)"),
            );
        }
        if timeout > 0 && self.outputs.kind != OutputKind::Gpio {
            bad(
                "outputs.passage_timeout_ms",
                "the passage contact is read through outputs.kind = \"gpio\"".into(),
            );
        }
        match self.outputs.kind {
            OutputKind::Gpio => match &self.outputs.board_profile {
                None => bad(
                    "outputs.board_profile",
                    "required when outputs.kind = \"gpio\"".into(),
                ),
                Some(p) => match BoardProfile::load(p) {
                    Err(e) => bad("outputs.board_profile", e.to_string()),
                    Ok(board) if board.passage.is_none() && self.outputs.passage_timeout_ms > 0 => {
                        bad(
                            "outputs.passage_timeout_ms",
                            format!("needs a passage line in the board profile {}", p.display()),
                        );
                    }
                    Ok(_) => {}
                },
            },
            OutputKind::File => {
                if self.outputs.file.is_none() {
                    bad(
                        "outputs.file",
                        "required when outputs.kind = \"file\"".into(),
                    );
                }
            }
            OutputKind::Log => {}
        }
        if self.qr.frame_budget_ms == 0 {
            bad("qr.frame_budget_ms", "must be at least 1".into());
        }
        let mut names = std::collections::HashSet::new();
        let mut stdin_count = 0;
        for (i, s) in self.scanners.iter().enumerate() {
            let at = |k: &str| format!("scanner[{i}].{k}");
            if !names.insert(s.name()) {
                bad(
                    &at("name"),
                    format!("\"{}\" is used by two scanners", s.name()),
                );
            }
            match s {
                ScannerConfig::Serial {
                    device,
                    profile,
                    baud,
                    terminator,
                    max_line,
                    ..
                } => {
                    if device.as_os_str().is_empty() {
                        bad(&at("device"), "must not be empty".into());
                    }
                    if let Some(p) = profile
                        && let Err(e) = ScannerProfile::load(p)
                    {
                        bad(&at("profile"), e.to_string());
                    }
                    if let Some(b) = baud
                        && !(300..=4_000_000).contains(b)
                    {
                        bad(&at("baud"), format!("{b} is not a usable baud rate"));
                    }
                    if terminator.as_deref() == Some("") {
                        bad(&at("terminator"), "must not be empty".into());
                    }
                    if let Some(m) = max_line
                        && !(16..=65536).contains(m)
                    {
                        bad(&at("max_line"), format!("{m} is outside 16..=65536"));
                    }
                }
                ScannerConfig::Wedge { device, .. } => {
                    if device.as_os_str().is_empty() {
                        bad(&at("device"), "must not be empty".into());
                    }
                }
                ScannerConfig::Camera {
                    width, height, fps, ..
                } => {
                    if *width == 0 || *height == 0 || *fps == 0 {
                        bad(
                            &at("width"),
                            "width, height and fps must be positive".into(),
                        );
                    }
                    if !cfg!(feature = "camera") {
                        bad(
                            &at("kind"),
                            "this build has no camera support (feature `camera`)".into(),
                        );
                    }
                }
                ScannerConfig::Images { paths, .. } => {
                    if paths.is_empty() {
                        bad(&at("paths"), "needs at least one file or folder".into());
                    }
                }
                ScannerConfig::Stdin { .. } => {
                    stdin_count += 1;
                    if stdin_count > 1 {
                        bad(&at("kind"), "only one stdin scanner is possible".into());
                    }
                }
            }
        }
        out
    }

    /// Things that are fine to start with but worth a technician's look: devices
    /// not present right now (the agent waits for them), outputs that only log.
    pub fn warnings(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        for (i, s) in self.scanners.iter().enumerate() {
            let device = match s {
                ScannerConfig::Serial { device, .. } | ScannerConfig::Wedge { device, .. } => {
                    device
                }
                _ => continue,
            };
            if !device.exists() {
                out.push(Problem {
                    at: format!("scanner[{i}].device"),
                    message: format!(
                        "{} is not present now; the agent will wait for it",
                        device.display()
                    ),
                });
            }
        }
        if self.scanners.is_empty() {
            out.push(Problem {
                at: "scanner".into(),
                message: "no scanner configured".into(),
            });
        }
        if self.outputs.kind == OutputKind::Log {
            out.push(Problem {
                at: "outputs.kind".into(),
                message: "\"log\": the turnstile will not be driven".into(),
            });
        }
        out
    }

    /// The effective configuration as TOML (for `config check --print`).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }
}

/// Deep-merges `over` into `base`: tables merge key by key, anything else replaces.
fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Sets `a.b.c` (or `scanner.0.baud` for array items) to a value parsed as a
/// TOML scalar when it looks like one, else as a string.
fn set_path(tree: &mut toml::Value, dotted: &str, raw: &str) -> Result<(), String> {
    let parts: Vec<&str> = dotted.split('.').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Err("empty setting name".to_owned());
    }
    let value = parse_scalar(raw);
    let mut node = tree;
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        node = match node {
            toml::Value::Table(t) => {
                if last {
                    t.insert((*part).to_owned(), value);
                    return Ok(());
                }
                t.entry((*part).to_owned())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            }
            toml::Value::Array(a) => {
                let idx: usize = part
                    .parse()
                    .map_err(|_| format!("`{part}` is not an index into a list"))?;
                let len = a.len();
                let slot = a
                    .get_mut(idx)
                    .ok_or_else(|| format!("index {idx} out of range ({len} items)"))?;
                if last {
                    *slot = value;
                    return Ok(());
                }
                slot
            }
            _ => return Err(format!("`{}` is not a section", parts[..i].join("."))),
        };
    }
    Ok(())
}

fn parse_scalar(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => match t.remove("v") {
            Some(
                v @ (toml::Value::Integer(_)
                | toml::Value::Boolean(_)
                | toml::Value::Float(_)
                | toml::Value::String(_)),
            ) => v,
            Some(v @ toml::Value::Array(_)) => v,
            _ => toml::Value::String(raw.to_owned()),
        },
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(file: Option<PathBuf>, env: &[(&str, &str)], flags: &[&str]) -> Sources {
        Sources {
            file,
            env: env
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect(),
            flags: flags.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::load(&Sources::default()).unwrap();
        assert_eq!(c.outputs.relay_pulse_ms, 200);
        assert_eq!(c.store.on_journal_failure, JournalFailurePolicy::Reject);
    }

    #[test]
    fn file_then_env_then_flags_override_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("agent.toml");
        std::fs::write(
            &file,
            "[gate]\nname = \"from-file\"\n[store]\npath = \"gate.db\"\n[outputs]\nrelay_pulse_ms = 300\n",
        )
        .unwrap();
        let c = Config::load(&sources(Some(file.clone()), &[], &[])).unwrap();
        assert_eq!(c.gate.name, "from-file");
        assert_eq!(
            c.store.path,
            dir.path().join("gate.db"),
            "relative path resolved"
        );
        assert_eq!(c.outputs.relay_pulse_ms, 300);

        let c = Config::load(&sources(
            Some(file.clone()),
            &[
                ("GATE_AGENT__GATE__NAME", "from-env"),
                ("GATE_AGENT__OUTPUTS__RELAY_PULSE_MS", "250"),
            ],
            &[],
        ))
        .unwrap();
        assert_eq!(c.gate.name, "from-env");
        assert_eq!(c.outputs.relay_pulse_ms, 250);

        let c = Config::load(&sources(
            Some(file),
            &[("GATE_AGENT__GATE__NAME", "from-env")],
            &["gate.name=from-flag"],
        ))
        .unwrap();
        assert_eq!(c.gate.name, "from-flag");
    }

    #[test]
    fn unknown_key_is_reported_with_its_location() {
        let err = Config::from_toml_str("[store]\npaht = \"x\"\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("paht"), "{text}");
    }

    #[test]
    fn every_problem_is_listed() {
        let err = Config::from_toml_str(
            "[gate]\nname = \"\"\n[outputs]\nkind = \"gpio\"\nrelay_pulse_ms = 5\n\
             [[scanner]]\nkind = \"serial\"\ndevice = \"/dev/ttyACM0\"\nbaud = 7\n",
        )
        .unwrap_err();
        let ConfigError::Invalid(problems) = err else {
            panic!("{err}")
        };
        let at: Vec<_> = problems.iter().map(|p| p.at.as_str()).collect();
        assert_eq!(
            at,
            [
                "gate.name",
                "outputs.relay_pulse_ms",
                "outputs.board_profile",
                "scanner[0].baud"
            ]
        );
    }

    #[test]
    fn bad_env_value_names_the_variable() {
        let err = Config::load(&sources(
            None,
            &[("GATE_AGENT__OUTPUTS__RELAY_PULSE_MS", "soon")],
            &[],
        ))
        .unwrap_err();
        assert!(err.to_string().contains("relay_pulse_ms"), "{err}");
    }
}
