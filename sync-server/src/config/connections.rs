//! `[connections]`: how long the server waits on a client, and how many
//! clients it serves at once. Without these, a client that opens a socket
//! and says nothing (or trickles its headers or its body) holds a file
//! descriptor forever, and enough of them starve everyone, `/health`
//! included.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[connections]`: timeouts and the cap on open connections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionSettings {
    /// A request's headers must be in within this many seconds of the
    /// connection opening, or of the first byte of a later request on a
    /// kept-alive connection; otherwise the connection is closed.
    pub header_timeout_secs: u32,
    /// A request's body must be in whole within this many seconds of its
    /// headers; otherwise the answer is 408 `request_timeout` and the
    /// connection is closed.
    pub body_timeout_secs: u32,
    /// A kept-alive connection with no request for this many seconds is
    /// closed. A request being answered (a gate's long poll) is not idle.
    pub idle_timeout_secs: u32,
    /// Connections open at once. At the cap, a new connection closes the
    /// one that has waited longest for a request (idle, or still sending
    /// its headers); when every one is busy answering, the newcomer gets
    /// 503 `overloaded`. Keep it below the open-file limit
    /// (`ulimit -n`) with room for the database and files.
    pub max_connections: u32,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        Self {
            header_timeout_secs: 10,
            body_timeout_secs: 60,
            idle_timeout_secs: 60,
            max_connections: 512,
        }
    }
}

impl ConnectionSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("connections.header_timeout_secs", self.header_timeout_secs),
            ("connections.body_timeout_secs", self.body_timeout_secs),
            ("connections.idle_timeout_secs", self.idle_timeout_secs),
        ] {
            if !(1..=3600).contains(&value) {
                return Err(ConfigError::Invalid {
                    key,
                    message: format!("{value} is outside 1 to 3600 seconds"),
                });
            }
        }
        if !(1..=100_000).contains(&self.max_connections) {
            return Err(ConfigError::Invalid {
                key: "connections.max_connections",
                message: format!("{} is outside 1 to 100000", self.max_connections),
            });
        }
        Ok(())
    }
}
