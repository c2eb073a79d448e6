//! Hardware profiles shipped as data files in `firmware-config/`: serial scanner
//! models (line settings and framing) and boards (which GPIO line drives what).
//! Loading validates them, so a typo in a profile is caught by `config check`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read profile {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("profile {path} is not valid: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Serial settings and framing of one scanner model.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScannerProfile {
    pub model: String,
    /// `cdc-acm` (USB virtual serial; baud is ignored by the device) or `rs232`.
    pub link: SerialLink,
    pub baud: u32,
    #[serde(default = "default_data_bits")]
    pub data_bits: u8,
    #[serde(default)]
    pub parity: Parity,
    #[serde(default = "default_stop_bits")]
    pub stop_bits: u8,
    /// Suffix the scanner sends after each code (factory default of the model).
    pub terminator: String,
    /// Longest line accepted; anything longer is dropped as garbage.
    #[serde(default = "default_max_line")]
    pub max_line: usize,
    /// A partial line older than this is dropped (scanner reset mid-code).
    #[serde(default = "default_line_timeout_ms")]
    pub line_timeout_ms: u64,
    /// Free text for the technician (how to program the suffix, etc.).
    #[serde(default)]
    pub notes: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SerialLink {
    CdcAcm,
    Rs232,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    #[default]
    None,
    Even,
    Odd,
}

fn default_data_bits() -> u8 {
    8
}
fn default_stop_bits() -> u8 {
    1
}
fn default_max_line() -> usize {
    512
}
fn default_line_timeout_ms() -> u64 {
    500
}

impl ScannerProfile {
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let profile: Self = read_toml(path)?;
        let invalid = |message: String| ProfileError::Invalid {
            path: path.to_owned(),
            message,
        };
        if !(300..=4_000_000).contains(&profile.baud) {
            return Err(invalid(format!("baud {} is not usable", profile.baud)));
        }
        if !(5..=8).contains(&profile.data_bits) {
            return Err(invalid(format!(
                "data_bits {} must be 5..=8",
                profile.data_bits
            )));
        }
        if !(1..=2).contains(&profile.stop_bits) {
            return Err(invalid(format!(
                "stop_bits {} must be 1 or 2",
                profile.stop_bits
            )));
        }
        if profile.terminator.is_empty() {
            return Err(invalid("terminator must not be empty".into()));
        }
        if !(16..=65536).contains(&profile.max_line) {
            return Err(invalid(format!(
                "max_line {} is outside 16..=65536",
                profile.max_line
            )));
        }
        Ok(profile)
    }
}

/// GPIO wiring of a turnstile board: the character device and one line per function.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardProfile {
    pub board: String,
    /// GPIO character device, e.g. `/dev/gpiochip0`.
    pub chip: PathBuf,
    pub relay: LineSpec,
    pub green_led: LineSpec,
    pub red_led: LineSpec,
    pub buzzer: LineSpec,
    /// Input: the turnstile's passage contact (closes once per turn of the
    /// arm). Optional; with it, `outputs.passage_timeout_ms` can undo an
    /// admission whose holder did not pass.
    #[serde(default)]
    pub passage: Option<LineSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineSpec {
    /// Line offset on the chip (the BCM GPIO number on a Raspberry Pi).
    pub line: u32,
    #[serde(default)]
    pub active_low: bool,
    /// Header pin, for the technician's wiring check.
    #[serde(default)]
    pub header_pin: Option<u8>,
}

impl BoardProfile {
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let profile: Self = read_toml(path)?;
        let mut seen = HashSet::new();
        let passage = profile.passage.as_ref().map(|spec| ("passage", spec));
        for (name, spec) in profile.lines().into_iter().chain(passage) {
            if !seen.insert(spec.line) {
                return Err(ProfileError::Invalid {
                    path: path.to_owned(),
                    message: format!("line {} of {name} is used twice", spec.line),
                });
            }
        }
        Ok(profile)
    }

    /// The output lines (the passage contact is an input).
    pub fn lines(&self) -> [(&'static str, &LineSpec); 4] {
        [
            ("relay", &self.relay),
            ("green_led", &self.green_led),
            ("red_led", &self.red_led),
            ("buzzer", &self.buzzer),
        ]
    }
}

fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ProfileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ProfileError::Invalid {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_with_a_line_used_twice_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.toml");
        std::fs::write(
            &p,
            "board = \"x\"\nchip = \"/dev/gpiochip0\"\nrelay = { line = 17 }\n\
             green_led = { line = 17 }\nred_led = { line = 22 }\nbuzzer = { line = 23 }\n",
        )
        .unwrap();
        let err = BoardProfile::load(&p).unwrap_err().to_string();
        assert!(err.contains("line 17 of green_led is used twice"), "{err}");
        std::fs::write(
            &p,
            "board = \"x\"\nchip = \"/dev/gpiochip0\"\nrelay = { line = 17 }\n\
             green_led = { line = 27 }\nred_led = { line = 22 }\nbuzzer = { line = 23 }\n\
             passage = { line = 23 }\n",
        )
        .unwrap();
        let err = BoardProfile::load(&p).unwrap_err().to_string();
        assert!(err.contains("line 23 of passage is used twice"), "{err}");
    }

    #[test]
    fn the_shipped_board_has_a_passage_contact() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../firmware-config/boards/turnstile-hat-rpi.toml");
        let board = BoardProfile::load(&path).unwrap();
        assert_eq!(board.passage.map(|p| p.line), Some(24));
    }
}
