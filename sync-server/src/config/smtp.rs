//! `[smtp]`: the relay that sends the API's mail.

use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};

use super::ConfigError;

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text. Only for a relay on the same host or a trusted network.
    None,
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// `[smtp]`: the relay that sends the API's mail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpSettings {
    /// Relay host name; empty disables mail.
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// Login at the relay; leave both empty for none.
    pub username: String,
    pub password: String,
    /// Sender, `Name <address>` or a bare address.
    pub from: String,
    /// Page where a recipient claims an emailed ticket; the one-time code is
    /// added as `?code=`. Empty: this server's own claim page,
    /// `{api.public_url}/claim`.
    pub claim_url: String,
    /// Longest wait for the relay per command.
    pub timeout_secs: u32,
    /// `/health` reuses the relay's last answer for this many seconds
    /// instead of opening an SMTP session on every call.
    pub health_cache_secs: u32,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 587,
            tls: SmtpTls::Starttls,
            username: String::new(),
            password: String::new(),
            from: "Tickets <tickets@example.invalid>".into(),
            claim_url: String::new(),
            timeout_secs: 30,
            health_cache_secs: 60,
        }
    }
}

impl SmtpSettings {
    /// The claim page the mail links to: `claim_url`, or the buyer pages'
    /// claim page at `public_url` when it is empty.
    pub fn claim_page(&self, public_url: &str) -> String {
        if self.claim_url.is_empty() {
            format!("{}/claim", public_url.trim_end_matches('/'))
        } else {
            self.claim_url.clone()
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: String| Err(ConfigError::Invalid { key, message });
        if self.from.parse::<Mailbox>().is_err() {
            return invalid(
                "smtp.from",
                format!("{:?} is not a mail address", self.from),
            );
        }
        if !(self.claim_url.is_empty()
            || self.claim_url.starts_with("https://")
            || self.claim_url.starts_with("http://"))
        {
            return invalid("smtp.claim_url", "use an http:// or https:// URL".into());
        }
        if self.claim_url.contains('#') {
            return invalid(
                "smtp.claim_url",
                "a fragment (#) would swallow the code".into(),
            );
        }
        if self.username.is_empty() != self.password.is_empty() {
            return invalid(
                "smtp.username",
                "set both username and password, or neither".into(),
            );
        }
        if self.health_cache_secs == 0 {
            return invalid("smtp.health_cache_secs", "must be at least 1".into());
        }
        if self.port == 0 || self.timeout_secs == 0 {
            return invalid(
                "smtp.port",
                "port and timeout_secs must be at least 1".into(),
            );
        }
        Ok(())
    }
}
