//! The expiry sweep: closes open email transfers whose expiry passed on
//! chain, so the ticket is its holder's to use again, and drops prepared
//! transfers that can no longer be opened, with their secrets.

use std::time::Duration;

use tokio::sync::watch;

use super::{PREPARED_TTL_SECS, ended_on_chain, event_address};
use crate::chain::{ChainError, ops};
use crate::services::Services;
use crate::services::organizer::{self, OrganizerError};
use crate::store::TransferStatus;

/// How often [`run`] looks for expired transfers.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Most expired transfers one sweep handles.
const SWEEP_BATCH: i64 = 100;

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepSummary {
    /// Open transfers closed on chain as expired.
    pub expired: usize,
    /// Open transfers found already closed on chain (claimed or cancelled
    /// without this server), recorded as such.
    pub settled: usize,
    /// Prepared transfers dropped, never submitted.
    pub dropped: u64,
    /// Transfers the chain refused to expire; tried again next round.
    pub failed: usize,
}

/// One round of the expiry sweep: sends `expire_email_transfer` (paid by
/// the server's authority) for every open transfer whose expiry passed on
/// the chain's clock, marks it expired and republishes its ticket; drops
/// prepared transfers that can no longer be opened, with their secrets.
pub async fn sweep_expired(services: &Services) -> Result<SweepSummary, OrganizerError> {
    let ctx = services.chain.as_deref().ok_or(OrganizerError::NoChain)?;
    let chain_now = ctx.chain.unix_time().await?;
    let now = services.clock.now();
    let mut summary = SweepSummary {
        dropped: services
            .store
            .drop_stale_prepared_email_transfers(chain_now, now - PREPARED_TTL_SECS)
            .await?,
        ..SweepSummary::default()
    };
    for transfer in services
        .store
        .expired_email_transfers(chain_now, SWEEP_BATCH)
        .await?
    {
        let event = event_address(ctx, transfer.event_id);
        let instruction =
            ticketing::client::expire_email_transfer(&transfer.sender, &event, transfer.ticket_id);
        let outcome = match ops::send(ctx.chain.as_ref(), &ctx.authority, &[instruction], &[]).await
        {
            Ok(_) => TransferStatus::Expired,
            Err(ChainError::Refused(reason)) => {
                match ended_on_chain(ctx, &transfer, chain_now).await? {
                    Some(ended) => ended,
                    None => {
                        tracing::warn!(
                            event = transfer.event_id,
                            ticket = transfer.ticket_id,
                            %reason,
                            "the chain refused to expire an email transfer"
                        );
                        summary.failed += 1;
                        continue;
                    }
                }
            }
            Err(e) => return Err(e.into()),
        };
        services
            .store
            .set_email_transfer_status(
                &transfer.claim_key,
                TransferStatus::Open,
                outcome,
                None,
                now,
            )
            .await?;
        if outcome == TransferStatus::Expired {
            summary.expired += 1;
        } else {
            summary.settled += 1;
        }
        organizer::refresh_tickets(services, transfer.event_id, &[transfer.ticket_id]).await?;
    }
    Ok(summary)
}

/// Sweeps every [`SWEEP_INTERVAL`] until `shutdown` turns true.
pub async fn run(services: Services, mut shutdown: watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow() {
            break;
        }
        match sweep_expired(&services).await {
            Ok(summary) if summary != SweepSummary::default() => {
                tracing::info!(?summary, "email transfer sweep");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "email transfer sweep failed; retrying later"),
        }
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
            _ = shutdown.changed() => {}
        }
    }
}
