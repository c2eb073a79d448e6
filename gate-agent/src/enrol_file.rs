//! First-boot enrolment from a file: the technician writes `gate-enrol.toml`
//! (the server's URL and a one-time token) on the boot partition, and the box
//! enrols by itself when it first reaches the server.
//!
//! The network may not be up yet at boot, or the server may be restarting,
//! so [`enrol_until`] tries again (with backoff) while the server cannot be
//! reached or answers 5xx/429, until its deadline. A refusal the server means
//! (a used, expired or unknown token; a box already enrolled) ends it at once:
//! waiting would not change the answer.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::config::Config;
use crate::enrolment::{self, EnrolError, Enrolment};

/// `gate-enrol.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolFile {
    /// The sync server's base URL, e.g. `http://sync.venue.lan:8080`.
    pub server: String,
    /// The one-time enrolment token the organizer issued for this gate.
    pub token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EnrolFileError {
    #[error("cannot read the enrolment file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "enrolment file {path}: {message}\n(it holds two lines: server = \"http://HOST:PORT\" and token = \"...\")"
    )]
    Parse { path: PathBuf, message: String },
}

/// Reads and checks an enrolment file.
pub fn read(path: &Path) -> Result<EnrolFile, EnrolFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| EnrolFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    let file: EnrolFile = toml::from_str(&text).map_err(|e| EnrolFileError::Parse {
        path: path.to_owned(),
        message: e.message().to_owned(),
    })?;
    if file.token.trim().is_empty() {
        return Err(EnrolFileError::Parse {
            path: path.to_owned(),
            message: "token is empty".into(),
        });
    }
    Ok(file)
}

/// Whether trying again later could succeed: the server was not reached, or
/// answered that it is overloaded or broken. A refused token is final.
pub fn is_transient(error: &EnrolError) -> bool {
    match error {
        EnrolError::Unreachable { .. } => true,
        EnrolError::Refused { status, .. } => *status >= 500 || *status == 429,
        _ => false,
    }
}

/// Enrols with `file`, trying again while [`is_transient`] failures last,
/// until `wait` has passed (then the last failure is returned).
pub async fn enrol_until(
    config: &Config,
    file: &EnrolFile,
    wait: Duration,
) -> Result<Enrolment, EnrolError> {
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_secs(1);
    let mut attempt = 1u32;
    loop {
        match enrolment::enrol(config, &file.server, &file.token).await {
            Ok(enrolled) => return Ok(enrolled),
            Err(e) if is_transient(&e) && Instant::now() + pause < deadline => {
                tracing::warn!(attempt, error = %e, retry_in = ?pause, "enrolment failed; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(30));
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<EnrolFile, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("gate-enrol.toml");
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        read(&path).map_err(|e| e.to_string())
    }

    #[test]
    fn a_file_holds_a_server_and_a_token_and_nothing_else() {
        assert_eq!(
            parsed("server = \"http://sync.lan:8080\"\ntoken = \"7Q2x\"\n"),
            Ok(EnrolFile {
                server: "http://sync.lan:8080".into(),
                token: "7Q2x".into()
            })
        );
        for (text, says) in [
            ("server = \"http://a\"\n", "missing field `token`"),
            ("server = \"http://a\"\ntoken = \" \"\n", "token is empty"),
            (
                "server = \"http://a\"\ntoken = \"t\"\ngate = 3\n",
                "unknown field `gate`",
            ),
            ("server = http://a\n", "server = \"http://HOST:PORT\""),
        ] {
            let error = parsed(text).expect_err(text);
            assert!(error.contains(says), "{text:?}: {error}");
        }
        let missing = read(Path::new("/nonexistent/gate-enrol.toml")).expect_err("missing");
        assert!(missing.to_string().contains("cannot read"), "{missing}");
    }

    #[test]
    fn only_an_unreachable_or_failing_server_is_worth_waiting_for() {
        let refused = |status| EnrolError::Refused {
            status,
            code: "x".into(),
            message: "y".into(),
        };
        assert!(is_transient(&refused(503)));
        assert!(is_transient(&refused(429)));
        assert!(!is_transient(&refused(409)));
        assert!(!is_transient(&EnrolError::TokenRefused {
            code: "token_used".into(),
            message: "used".into()
        }));
        assert!(!is_transient(&EnrolError::BadUrl("ftp://x".into())));
    }
}
