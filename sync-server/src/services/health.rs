//! What `/health` reports about the parts the server depends on. Probing
//! the mail relay opens an SMTP session, so its answer is reused for
//! `smtp.health_cache_secs`: a load balancer polling `/health` every second
//! must not turn into a stream of sessions at the relay.

use std::time::Duration;

use tokio::sync::Mutex;

use super::Services;

/// The last answer of the mail relay: when it was asked (server clock,
/// Unix seconds) and whether it greeted.
#[derive(Debug, Default)]
pub struct SmtpProbe {
    last: Mutex<Option<(i64, bool)>>,
}

/// The chain answers a blockhash within this long, or it counts as down.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether the chain answers; `None` when the server runs without one.
pub async fn chain(services: &Services) -> Option<bool> {
    let ctx = services.chain.as_ref()?;
    let answered = tokio::time::timeout(PROBE_TIMEOUT, ctx.chain.latest_blockhash()).await;
    Some(matches!(answered, Ok(Ok(_))))
}

/// Whether the configured mail relay greets (asked at most once per
/// `smtp.health_cache_secs`); `None` without one. Concurrent callers
/// wait for one probe rather than each opening a session.
pub async fn smtp(services: &Services) -> Option<bool> {
    let mailer = services.mailer.as_ref()?;
    let mut last = services.smtp_probe.last.lock().await;
    let now = services.clock.now();
    let fresh_for = i64::from(services.config.smtp.health_cache_secs);
    if let Some((asked_at, answer)) = *last
        && (asked_at..asked_at + fresh_for).contains(&now)
    {
        return Some(answer);
    }
    let answered = tokio::time::timeout(PROBE_TIMEOUT, mailer.check()).await;
    let answer = matches!(answered, Ok(Ok(())));
    *last = Some((now, answer));
    Some(answer)
}
