//! Where the server reads the time. Every rule that depends on time takes
//! it from a [`Clock`], so tests run on a fixed or stepped one.

use shared::UnixSeconds;

/// Where the server reads the time. Tests use a fixed or stepped clock.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> UnixSeconds;
}

/// The real clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixSeconds {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default()
    }
}
