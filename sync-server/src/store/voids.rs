//! Turnstile undos: a gate's record that voids its own admission (the
//! holder did not pass). The admission keeps its row, marked `voided_by`;
//! from then on it counts in no figure, moves nobody in the presence fold,
//! and never goes on chain. One already on its way to the chain (sent or
//! confirmed) cannot be taken back: it is recorded as an incident
//! (`undone_after_chain`) for the organizer instead.

use shared::ReentryPolicy;
use shared::presence::FoldRules;
use shared::wire::ScanRecord;
use sqlx::Row;

use super::gates::Device;
use super::{ReplayState, Store, StoreError, corrupt, i64_of, unjson};

/// The incident reason of an undo that came after its admission went to
/// the chain.
pub const UNDONE_AFTER_CHAIN: &str = "undone_after_chain";

impl Store {
    /// Marks the admissions that `scans`' undo records void (each at the
    /// uploading device's own gate and event, once), in the upload's
    /// transaction. Returns the tickets whose presence must be folded again.
    pub(super) async fn apply_undos(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        device: &Device,
        scans: &[ScanRecord],
        now: i64,
    ) -> Result<Vec<u32>, StoreError> {
        let mut touched = Vec::new();
        for undo in scans.iter().filter(|s| !s.opened) {
            let Some(voided) = undo.voids else { continue };
            let row = sqlx::query(
                "UPDATE scans SET voided_by = $1,
                     replay_state = CASE WHEN replay_state = 'ingested' THEN $2 ELSE replay_state END
                 WHERE scan_id = $3 AND event_id = $4 AND gate = $5 AND opened = 1
                     AND direction = 'entry' AND voided_by IS NULL
                 RETURNING ticket_id, replay_state",
            )
            .bind(undo.scan_id.to_string())
            .bind(ReplayState::Voided.as_str())
            .bind(voided.to_string())
            .bind(i64_of(device.event_id)?)
            .bind(i64::from(device.gate_number))
            .fetch_optional(&mut **tx)
            .await?;
            let Some(row) = row else { continue };
            let ticket: Option<i64> = row.try_get("ticket_id")?;
            let ticket = ticket.map(u32::try_from).transpose().map_err(corrupt)?;
            touched.extend(ticket);
            let state: String = row.try_get("replay_state")?;
            if state == ReplayState::Submitted.as_str() || state == ReplayState::Confirmed.as_str()
            {
                tracing::warn!(admission = %voided, undo = %undo.scan_id,
                    "an admission was undone after it went to the chain");
                sqlx::query(
                    "INSERT INTO incidents (scan_id, event_id, ticket_id, gate, reason, scanned_at_ms, recorded_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (scan_id) DO NOTHING",
                )
                .bind(undo.scan_id.to_string())
                .bind(i64_of(device.event_id)?)
                .bind(ticket.map(i64::from))
                .bind(i64::from(device.gate_number))
                .bind(UNDONE_AFTER_CHAIN)
                .bind(undo.scanned_at_ms)
                .bind(now)
                .execute(&mut **tx)
                .await?;
            }
        }
        Ok(touched)
    }

    /// What of `event_id`'s rules its presence fold applies (the defaults
    /// for an event the server does not hold).
    pub(super) async fn fold_rules(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        event_id: u64,
    ) -> Result<FoldRules, StoreError> {
        let row = sqlx::query("SELECT reentry FROM events WHERE event_id = $1")
            .bind(i64_of(event_id)?)
            .fetch_optional(&mut **tx)
            .await?;
        let Some(row) = row else {
            return Ok(FoldRules::default());
        };
        let reentry: ReentryPolicy = unjson(&row.try_get::<String, _>("reentry")?)?;
        Ok(FoldRules::for_reentry(&reentry))
    }
}
