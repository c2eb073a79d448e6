//! An event's live view, as the organizer console shows it and streams it:
//! per-gate figures with online state, refusals by reason, admissions per
//! minute, the replay's progress on chain, and the conflicts and incidents
//! to review. One function builds it from the same store queries the JSON
//! API answers with, so the page and the API never disagree.

use serde::Serialize;
use shared::wire::CachedEvent;

use super::{ServiceError, Services, gates, incidents};
use crate::store::{GateCounts, MinuteCount, RefusalCount, ReplaySummary};

/// How far back the admissions chart goes.
pub const CHART_MINUTES: i64 = 60;

/// One gate's figures and whether it was heard from lately.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GateLive {
    #[serde(flatten)]
    pub counts: GateCounts,
    pub online: bool,
}

/// Everything the live page shows of one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveView {
    pub event: CachedEvent,
    /// When this view was built (Unix seconds, the server's clock).
    pub at: i64,
    pub gates: Vec<GateLive>,
    /// Holders inside now, over all gates.
    pub inside: u64,
    pub admitted: u64,
    pub refused: u64,
    pub refusals: Vec<RefusalCount>,
    /// Admissions per minute over the last [`CHART_MINUTES`] minutes.
    pub per_minute: Vec<MinuteCount>,
    pub replay: ReplaySummary,
    pub incidents: incidents::IncidentReport,
}

/// The live view of `event_id`; not found for an unknown event.
pub async fn view(services: &Services, event_id: u64) -> Result<LiveView, ServiceError> {
    let event = services
        .store
        .event(event_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no event {event_id}")))?;
    let now = services.clock.now();
    let gates: Vec<GateLive> = gates::gate_counts(services, event_id)
        .await?
        .into_iter()
        .map(|(counts, online)| GateLive { counts, online })
        .collect();
    Ok(LiveView {
        inside: gates.iter().map(|g| g.counts.inside).sum(),
        admitted: gates.iter().map(|g| g.counts.admitted).sum(),
        refused: gates.iter().map(|g| g.counts.rejected).sum(),
        gates,
        refusals: services.store.refusals_by_reason(event_id).await?,
        per_minute: services
            .store
            .entries_per_minute(event_id, now - CHART_MINUTES * 60)
            .await?,
        replay: services.store.replay_summary(event_id).await?,
        incidents: incidents::report(services, event_id).await?,
        event,
        at: now,
    })
}
