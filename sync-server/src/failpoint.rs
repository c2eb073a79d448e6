//! Crash points for recovery tests: the process aborts, as a power cut
//! would, at a named step.

/// Environment variable naming a failpoint at which the process aborts, so
/// crash-recovery tests can stop the server at an exact step (for example
/// right after the chain accepted a transaction and before the database
/// heard of it). Unset in production; costs one lookup per step. Not under
/// the `SYNC_` prefix, which is the configuration's.
pub const FAILPOINT_ENV: &str = "NFT_GATE_FAILPOINT";

/// Aborts the process, as a power cut would, when [`FAILPOINT_ENV`] names
/// `name`.
pub fn failpoint(name: &str) {
    if std::env::var(FAILPOINT_ENV).is_ok_and(|v| v == name) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
}
