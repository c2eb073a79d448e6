//! Cancelling an event: the organizer asks once ([`cancel`]), the work runs
//! in the background ([`drive`]) and anyone managing the event reads how
//! far it is ([`progress`]).
//!
//! The steps, each recorded in `event_cancellations` before the next starts,
//! so a crash resumes where it stopped and a repeat changes nothing:
//!
//! 1. `cancel_event` on chain (skipped when the chain has it cancelled),
//!    then the event published to the gates as cancelled: they refuse every
//!    ticket of it from their next delta.
//! 2. Every ticket revoked on chain in id order, [`REVOKE_BATCH`] per
//!    transaction; a price paid on chain goes back to the holder with it.
//!    Each batch's tickets are read first, so one a crash cut off after the
//!    chain took it is not sent again; then they are published to the gates
//!    and the next id is recorded.
//! 3. Card purchases paid for the event marked as owed a refund, purchases
//!    still waiting for payment ended (their PaymentIntents cancelled), and
//!    the purchase worker's round run: its refund path refunds each once
//!    (idempotency key `refund-<purchase>`) and mails the buyer the refund
//!    notice. The step is done when no refund is owed and every notice owed
//!    was sent or refused for good (with no mail relay, none is owed).
//!
//! One task drives a cancellation at a time (a lease in its row); the
//! request's own task does it at once, and [`run`], started with the other
//! workers, picks up any a crash or an outage left unfinished.

use std::time::Duration;

use solana_sdk::signature::Signer;
use tokio::sync::watch;

use super::organizer::{self, OrganizerError, chain_of};
use super::{ServiceError, Services};
use crate::chain::ops;
use crate::store::{Cancellation, CancellationPhase, PurchaseStatus};

/// Revocations per transaction: each names the ticket and its holder beside
/// the shared accounts, so ten fit a legacy transaction with room to spare.
pub const REVOKE_BATCH: usize = 10;

/// How long one task may drive a cancellation before another may take over.
const LEASE_SECS: i64 = 120;

/// Purchase worker rounds one drive runs before leaving the refunds to the
/// next (the provider may be down).
const REFUND_ROUNDS: usize = 5;

/// One step's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct StepCount {
    pub done: u64,
    pub total: u64,
}

/// How far a cancellation is, step by step.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct CancellationProgress {
    pub event_id: u64,
    /// `cancelling`, `revoking`, `refunding` or `done`.
    pub phase: CancellationPhase,
    /// The event cancelled on chain and for the gates (0 or 1 of 1).
    pub event: StepCount,
    /// Tickets revoked on chain (or found revoked, refunded or closed
    /// already), of those minted; `total` is 0 until the event is cancelled
    /// on chain.
    pub tickets: StepCount,
    /// Of the tickets done, those this cancellation revoked.
    pub tickets_revoked: u64,
    /// Card purchases refunded (or refused a refund for good), of those
    /// owed one.
    pub refunds: StepCount,
    /// Refund notices sent (or refused for good by the relay), of those
    /// owed to buyers who gave an address; 0 of 0 without a mail relay.
    pub mail: StepCount,
    pub requested_at: i64,
    pub finished_at: Option<i64>,
    /// Why the last attempt stopped short; it is tried again.
    pub last_error: Option<String>,
}

/// Asks for the cancellation of `event_id` and does its first step (the
/// event cancelled on chain and for the gates) before answering, so the
/// program's refusal reaches the caller; the rest goes on in the background.
/// Asking again answers the progress and changes nothing.
pub async fn cancel(
    services: &Services,
    event_id: u64,
) -> Result<CancellationProgress, ServiceError> {
    let ctx = chain_of(services)?;
    services
        .store
        .event_chain(event_id)
        .await?
        .ok_or(OrganizerError::UnknownEvent(event_id))?;
    if services.store.cancellation(event_id).await?.is_none() {
        // A closed event account can no longer be cancelled.
        if ops::event(ctx.chain.as_ref(), &ctx.authority.pubkey(), event_id)
            .await
            .map_err(OrganizerError::from)?
            .is_none()
        {
            return Err(ServiceError::Conflict(format!(
                "event {event_id} is closed on chain"
            )));
        }
    }
    let row = services
        .store
        .start_cancellation(event_id, services.clock.now())
        .await?;
    if row.phase == CancellationPhase::Cancelling {
        cancel_on_chain(services, event_id).await?;
    }
    let background = services.clone();
    tokio::spawn(async move {
        if let Err(e) = drive(&background, event_id).await {
            tracing::warn!(event = event_id, error = %e, "cancellation not finished; the worker resumes it");
        }
    });
    progress(services, event_id).await
}

/// How far the cancellation of `event_id` is; not found when none was asked.
pub async fn progress(
    services: &Services,
    event_id: u64,
) -> Result<CancellationProgress, ServiceError> {
    let row = services
        .store
        .cancellation(event_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("event {event_id} is not cancelled")))?;
    let counts = services.store.refund_counts(event_id).await?;
    let mail = if services.mailer.is_some() {
        StepCount {
            done: counts.mail_done,
            total: counts.mail_total,
        }
    } else {
        StepCount { done: 0, total: 0 }
    };
    let cancelled = u64::from(row.phase != CancellationPhase::Cancelling);
    Ok(CancellationProgress {
        event_id,
        phase: row.phase,
        event: StepCount {
            done: cancelled,
            total: 1,
        },
        tickets: StepCount {
            done: u64::from(row.next_ticket),
            total: u64::from(row.tickets_total.unwrap_or(0)),
        },
        tickets_revoked: u64::from(row.tickets_revoked),
        refunds: StepCount {
            done: counts.refunds_done,
            total: counts.refunds_total,
        },
        mail,
        requested_at: row.requested_at,
        finished_at: row.finished_at,
        last_error: row.last_error,
    })
}

/// Step 1: the event cancelled on chain (unless it is) and published to the
/// gates as cancelled; then the minted counter, final now, is recorded and
/// revoking starts.
async fn cancel_on_chain(services: &Services, event_id: u64) -> Result<(), ServiceError> {
    let ctx = chain_of(services)?;
    let organizer = ctx.authority.pubkey();
    let chain = ctx.chain.as_ref();
    let on_chain = ops::event(chain, &organizer, event_id)
        .await
        .map_err(OrganizerError::from)?
        .ok_or_else(|| ServiceError::Conflict(format!("event {event_id} is closed on chain")))?;
    if !on_chain.is_cancelled() {
        let address = ticketing::client::event_address(&organizer, event_id).0;
        ops::send(
            chain,
            &ctx.authority,
            &[ticketing::client::cancel_event(&organizer, &address)],
            &[],
        )
        .await
        .map_err(OrganizerError::from)?;
    }
    if let Some(mut cached) = services.store.event(event_id).await?
        && cached.status != shared::EventStatus::Cancelled
    {
        cached.status = shared::EventStatus::Cancelled;
        let recorded = super::events::organizer_of(services, event_id).await?;
        services.publish_event(&cached, &recorded).await?;
    }
    let minted = ops::event(chain, &organizer, event_id)
        .await
        .map_err(OrganizerError::from)?
        .map_or(0, |event| event.minted);
    services
        .store
        .cancellation_revoking(event_id, minted)
        .await?;
    Ok(())
}

/// Takes the cancellation of `event_id` as far as it can go now, under its
/// lease; returns without work when another task holds it or it is done.
pub async fn drive(services: &Services, event_id: u64) -> Result<(), ServiceError> {
    let now = services.clock.now();
    if !services
        .store
        .lease_cancellation(event_id, now, now + LEASE_SECS)
        .await?
    {
        return Ok(());
    }
    let outcome = drive_leased(services, event_id).await;
    let error = outcome.as_ref().err().map(ToString::to_string);
    services
        .store
        .release_cancellation(event_id, error.as_deref())
        .await?;
    outcome
}

async fn drive_leased(services: &Services, event_id: u64) -> Result<(), ServiceError> {
    let mut row = current(services, event_id).await?;
    if row.phase == CancellationPhase::Cancelling {
        cancel_on_chain(services, event_id).await?;
        row = current(services, event_id).await?;
    }
    if row.phase == CancellationPhase::Revoking {
        revoke_all(services, &row).await?;
        let now = services.clock.now();
        services
            .store
            .cancellation_phase(event_id, CancellationPhase::Refunding, now)
            .await?;
        row = current(services, event_id).await?;
    }
    if row.phase == CancellationPhase::Refunding && refund_all(services, event_id).await? {
        let now = services.clock.now();
        services
            .store
            .cancellation_phase(event_id, CancellationPhase::Done, now)
            .await?;
    }
    Ok(())
}

async fn current(services: &Services, event_id: u64) -> Result<Cancellation, ServiceError> {
    services
        .store
        .cancellation(event_id)
        .await?
        .ok_or_else(|| ServiceError::Internal(format!("cancellation of {event_id} vanished")))
}

/// Step 2: every ticket from the recorded next id on, a batch at a time.
async fn revoke_all(services: &Services, row: &Cancellation) -> Result<(), ServiceError> {
    let ctx = chain_of(services)?;
    let organizer = ctx.authority.pubkey();
    let event = ticketing::client::event_address(&organizer, row.event_id).0;
    let total = row.tickets_total.unwrap_or(0);
    let mut next = row.next_ticket;
    while next < total {
        let end = next.saturating_add(REVOKE_BATCH as u32).min(total);
        let ids: Vec<u32> = (next..end).collect();
        let tickets = ops::tickets(ctx.chain.as_ref(), &event, &ids)
            .await
            .map_err(OrganizerError::from)?;
        let mut instructions = Vec::new();
        let mut existing = Vec::new();
        for (id, ticket) in ids.iter().zip(tickets) {
            // A closed ticket has no account and nothing to revoke.
            let Some(ticket) = ticket else { continue };
            existing.push(*id);
            if matches!(
                ticket.status,
                ticketing::client::TicketStatus::Active | ticketing::client::TicketStatus::Frozen
            ) {
                instructions.push(ticketing::client::revoke_ticket(
                    &organizer,
                    &event,
                    *id,
                    &ticket.owner,
                ));
            }
        }
        if !instructions.is_empty() {
            ops::send(ctx.chain.as_ref(), &ctx.authority, &instructions, &[])
                .await
                .map_err(OrganizerError::from)?;
        }
        crate::failpoint::failpoint("cancellation.batch_revoked");
        if !existing.is_empty() {
            organizer::refresh_tickets(services, row.event_id, &existing).await?;
        }
        let revoked = u32::try_from(instructions.len()).unwrap_or(u32::MAX);
        services
            .store
            .cancellation_revoked(row.event_id, end, revoked)
            .await?;
        next = end;
    }
    Ok(())
}

/// Step 3: refunds owed and purchases ended, then the purchase worker's
/// rounds until nothing is owed. `true` when the step is complete.
async fn refund_all(services: &Services, event_id: u64) -> Result<bool, ServiceError> {
    let now = services.clock.now();
    let marked = services.store.refund_cancelled_event(event_id, now).await?;
    if marked > 0 {
        tracing::info!(
            event = event_id,
            purchases = marked,
            "card purchases of a cancelled event owed a refund"
        );
    }
    for purchase in services.store.pending_purchases_of(event_id).await? {
        let ended = services
            .store
            .end_purchase(
                &purchase,
                PurchaseStatus::Failed,
                "the event was cancelled",
                now,
            )
            .await?;
        if let (true, Some(intent), Some(provider)) =
            (ended, &purchase.payment_intent, &services.payments)
            && let Err(e) = provider.cancel_payment_intent(intent).await
        {
            tracing::info!(purchase = %purchase.id, error = %e, "payment intent not cancelled");
        }
    }
    for _ in 0..REFUND_ROUNDS {
        if step_complete(services, event_id).await? {
            return Ok(true);
        }
        super::purchases::round(services).await?;
    }
    step_complete(services, event_id).await
}

async fn step_complete(services: &Services, event_id: u64) -> Result<bool, ServiceError> {
    let counts = services.store.refund_counts(event_id).await?;
    let mailed = services.mailer.is_none() || counts.mail_done >= counts.mail_total;
    Ok(counts.refunds_done >= counts.refunds_total && mailed)
}

/// How often [`run`] looks for unfinished cancellations.
pub const ROUND_INTERVAL: Duration = Duration::from_secs(5);

/// The cancellation worker: every [`ROUND_INTERVAL`] until `stop`, drives
/// each unfinished cancellation no other task holds.
pub async fn run(services: Services, mut stop: watch::Receiver<bool>) {
    loop {
        match services.store.unfinished_cancellations().await {
            Ok(events) => {
                for event_id in events {
                    if let Err(e) = drive(&services, event_id).await {
                        tracing::warn!(event = event_id, error = %e, "cancellation not finished this round");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cancellations not read"),
        }
        tokio::select! {
            _ = tokio::time::sleep(ROUND_INTERVAL) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}
