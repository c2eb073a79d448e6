//! Conflicts as organizers review them: both scans side by side, and the
//! resolution they record (kept beside the scans, which never change).
//! A conflict is named by its later scan's id, the one the scan fold marked
//! as admitted while the holder was already inside.

use uuid::Uuid;

use super::{ServiceError, Services, events};
use crate::store::{ConflictOutcome, ConflictReview, NewResolution};

/// Longest note an organizer may keep with a resolution.
pub const MAX_NOTE_CHARS: usize = 500;

/// An event's conflicts with both scans and their resolutions, oldest
/// first; not found for an unknown event.
pub async fn reviews(
    services: &Services,
    event_id: u64,
) -> Result<Vec<ConflictReview>, ServiceError> {
    events::organizer_of(services, event_id).await?;
    Ok(services.store.conflict_reviews(event_id).await?)
}

/// Records what `resolved_by` decided about conflict `conflict_id` of
/// `event_id` (replacing an earlier decision) and answers the conflict as
/// it now stands. Not found when the event has no such conflict.
pub async fn resolve(
    services: &Services,
    event_id: u64,
    conflict_id: Uuid,
    outcome: ConflictOutcome,
    note: &str,
    resolved_by: &str,
) -> Result<ConflictReview, ServiceError> {
    let note = note.trim();
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(ServiceError::invalid(
            "note",
            format_args!("at most {MAX_NOTE_CHARS} characters"),
        ));
    }
    if note
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(ServiceError::invalid("note", "holds control characters"));
    }
    if outcome == ConflictOutcome::Other && note.is_empty() {
        return Err(ServiceError::invalid(
            "note",
            "say what happened when the outcome is `other`",
        ));
    }
    let conflict = reviews(services, event_id)
        .await?
        .into_iter()
        .find(|c| c.conflict_id == conflict_id)
        .ok_or_else(|| {
            ServiceError::NotFound(format!("event {event_id} has no conflict {conflict_id}"))
        })?;
    services
        .store
        .record_conflict_resolution(&NewResolution {
            event_id,
            scan_id: conflict.later.scan_id,
            conflicts_with: conflict.earlier.scan_id,
            outcome,
            note,
            resolved_by,
            resolved_at: services.clock.now(),
        })
        .await?;
    services
        .store
        .conflict_reviews(event_id)
        .await?
        .into_iter()
        .find(|c| c.conflict_id == conflict_id)
        .ok_or_else(|| ServiceError::Internal("the conflict vanished".into()))
}
