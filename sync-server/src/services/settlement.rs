//! After the event: the organizer withdraws the SOL proceeds to the event's
//! treasury (`withdraw_proceeds`), closes the ticket accounts
//! (`close_ticket`) and then the event account (`close_event`) to take their
//! rent back. What the program requires is checked first on the chain's own
//! clock and state, so a request it would refuse is a conflict (409) naming
//! the reason rather than a transaction that fails; what the program still
//! refuses is `ChainRefused`.
//!
//! Amounts are read off the chain: the lamports the event account gave up
//! for a withdrawal, and the lamports the closed accounts held (all of which
//! go to the organizer, the proceeds left in a closed event to the treasury).
//! Each result is recorded (`event_settlements`) once the chain took the
//! transaction, so what closing gave back can be read after the accounts are
//! gone ([`status`]).

use solana_sdk::pubkey::Pubkey;
use solana_sdk::signature::Signer;
use ticketing::client::Event;

use super::organizer::{ChainContext, OrganizerError, chain_of};
use super::{ServiceError, Services};
use crate::chain::ops;
use crate::store::SettlementRecord;

/// `close_ticket` instructions per transaction: each names three accounts
/// beside the shared ones, well within a legacy transaction.
const CLOSE_BATCH: usize = 10;

/// What a withdrawal moved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Withdrawal {
    /// Lamports moved from the event account to the treasury (0 when there
    /// was nothing to withdraw: nothing is sent then).
    pub lamports: u64,
    /// The event's treasury wallet (base58).
    pub treasury: String,
}

/// What closing an event's tickets did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct TicketsClosed {
    /// Ticket accounts closed by this call.
    pub closed: u32,
    /// Tickets the program does not let close yet (an email transfer is
    /// open): cancel or expire it, then close again.
    pub skipped: Vec<u32>,
    /// Ticket accounts still open on chain after this call.
    pub open_tickets: u32,
    /// The closed accounts' lamports, now the organizer's.
    pub lamports_reclaimed: u64,
}

/// What closing the event account did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct EventClosed {
    /// The event account's rent, now the organizer's.
    pub lamports_reclaimed: u64,
    /// Proceeds still in the account, sent to the treasury.
    pub proceeds_to_treasury: u64,
}

/// The event on chain, for an event this server created: not found when the
/// database does not know it, a conflict when its account was closed.
async fn event_of(
    services: &Services,
    ctx: &ChainContext,
    event_id: u64,
) -> Result<(Pubkey, Event), ServiceError> {
    services
        .store
        .event_chain(event_id)
        .await?
        .ok_or(OrganizerError::UnknownEvent(event_id))?;
    let organizer = ctx.authority.pubkey();
    let address = ticketing::client::event_address(&organizer, event_id).0;
    let event = ops::event(ctx.chain.as_ref(), &organizer, event_id)
        .await
        .map_err(OrganizerError::from)?
        .ok_or_else(|| {
            ServiceError::Conflict(format!("event {event_id} is closed on chain already"))
        })?;
    Ok((address, event))
}

/// Refuses unless the event has ended on the chain's clock (or, when
/// `cancelled_will_do`, was cancelled).
async fn require_over(
    ctx: &ChainContext,
    event: &Event,
    cancelled_will_do: bool,
) -> Result<(), ServiceError> {
    if cancelled_will_do && event.is_cancelled() {
        return Ok(());
    }
    let now = ctx.chain.unix_time().await.map_err(OrganizerError::from)?;
    if !event.has_ended(now) {
        return Err(ServiceError::Conflict(format!(
            "the event has not ended: it ends at {} and the chain's clock reads {now}",
            event.ends_at
        )));
    }
    Ok(())
}

/// Withdraws the event's SOL proceeds to its treasury, once it has ended.
/// A cancelled event's proceeds are for refunds: conflict.
pub async fn withdraw(services: &Services, event_id: u64) -> Result<Withdrawal, ServiceError> {
    let ctx = chain_of(services)?;
    let (address, event) = event_of(services, ctx, event_id).await?;
    if event.is_cancelled() {
        return Err(ServiceError::Conflict(
            "the event is cancelled: its proceeds refund its tickets".into(),
        ));
    }
    require_over(ctx, &event, false).await?;
    let treasury = event.treasury.to_string();
    if event.proceeds == 0 {
        return Ok(Withdrawal {
            lamports: 0,
            treasury,
        });
    }
    let chain = ctx.chain.as_ref();
    let before = ops::balance(chain, &address)
        .await
        .map_err(OrganizerError::from)?;
    ops::send(
        chain,
        &ctx.authority,
        &[ticketing::client::withdraw_proceeds(
            &ctx.authority.pubkey(),
            &address,
            &event.treasury,
        )],
        &[],
    )
    .await
    .map_err(OrganizerError::from)?;
    let after = ops::balance(chain, &address)
        .await
        .map_err(OrganizerError::from)?;
    let lamports = before.saturating_sub(after);
    services
        .store
        .record_withdrawal(event_id, lamports, &treasury, services.clock.now())
        .await?;
    Ok(Withdrawal { lamports, treasury })
}

/// Closes every ticket account of an ended or cancelled event that the
/// program lets close, in batches; the rent goes to the organizer. Closing
/// again closes what is left. While some of the event's scans are not yet
/// on chain this is a conflict: their tickets must stay to record them.
pub async fn close_tickets(
    services: &Services,
    event_id: u64,
) -> Result<TicketsClosed, ServiceError> {
    let ctx = chain_of(services)?;
    let (address, event) = event_of(services, ctx, event_id).await?;
    require_over(ctx, &event, true).await?;
    let replay = services.store.replay_summary(event_id).await?;
    if replay.waiting + replay.submitted > 0 {
        return Err(ServiceError::Conflict(format!(
            "{} of the event's scans are not on chain yet; close its tickets once they are",
            replay.waiting + replay.submitted
        )));
    }
    let organizer = ctx.authority.pubkey();
    let chain = ctx.chain.as_ref();
    let ids: Vec<u32> = (0..event.minted).collect();
    let mut report = TicketsClosed {
        closed: 0,
        skipped: Vec::new(),
        open_tickets: event.open_tickets,
        lamports_reclaimed: 0,
    };
    for chunk in ids.chunks(CLOSE_BATCH) {
        let addresses: Vec<Pubkey> = chunk
            .iter()
            .map(|id| ticketing::client::ticket_address(&address, *id).0)
            .collect();
        let accounts = chain
            .accounts(&addresses)
            .await
            .map_err(OrganizerError::from)?;
        let mut instructions = Vec::new();
        let mut lamports = 0u64;
        for (id, account) in chunk.iter().zip(accounts) {
            // A ticket closed before has no account any more.
            let Some(account) = account else { continue };
            let ticket = ticketing::client::decode_ticket(&account.data).map_err(|e| {
                ServiceError::Internal(format!("ticket {id} of event {event_id}: {e}"))
            })?;
            if ticket.transfer_pending {
                report.skipped.push(*id);
                continue;
            }
            instructions.push(ticketing::client::close_ticket(&organizer, &address, *id));
            lamports = lamports.saturating_add(account.lamports);
        }
        if instructions.is_empty() {
            continue;
        }
        ops::send(chain, &ctx.authority, &instructions, &[])
            .await
            .map_err(OrganizerError::from)?;
        report.closed += u32::try_from(instructions.len()).unwrap_or(u32::MAX);
        report.lamports_reclaimed = report.lamports_reclaimed.saturating_add(lamports);
    }
    if report.closed > 0 {
        services
            .store
            .record_tickets_closed(
                event_id,
                u64::from(report.closed),
                report.lamports_reclaimed,
                services.clock.now(),
            )
            .await?;
    }
    let (_, event) = event_of(services, ctx, event_id).await?;
    report.open_tickets = event.open_tickets;
    Ok(report)
}

/// Closes the event account of an ended or cancelled event whose ticket
/// accounts are all closed: its rent goes to the organizer, the proceeds
/// left in it to the treasury.
pub async fn close_event(services: &Services, event_id: u64) -> Result<EventClosed, ServiceError> {
    let ctx = chain_of(services)?;
    let (address, event) = event_of(services, ctx, event_id).await?;
    require_over(ctx, &event, true).await?;
    if event.open_tickets > 0 {
        return Err(ServiceError::Conflict(format!(
            "{} ticket accounts are still open: close the tickets first",
            event.open_tickets
        )));
    }
    let chain = ctx.chain.as_ref();
    let held = ops::balance(chain, &address)
        .await
        .map_err(OrganizerError::from)?;
    ops::send(
        chain,
        &ctx.authority,
        &[ticketing::client::close_event(
            &ctx.authority.pubkey(),
            &address,
            &event.treasury,
        )],
        &[],
    )
    .await
    .map_err(OrganizerError::from)?;
    let closed = EventClosed {
        lamports_reclaimed: held.saturating_sub(event.proceeds),
        proceeds_to_treasury: event.proceeds,
    };
    services
        .store
        .record_event_closed(
            event_id,
            closed.lamports_reclaimed,
            closed.proceeds_to_treasury,
            services.clock.now(),
        )
        .await?;
    Ok(closed)
}

/// The event's account as the chain has it now, for settling it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ChainSide {
    /// The chain's clock (Unix seconds).
    pub chain_time: i64,
    pub ends_at: i64,
    /// Ended on the chain's clock: proceeds may be withdrawn.
    pub ended: bool,
    pub cancelled: bool,
    /// SOL paid for tickets and not yet withdrawn (lamports).
    pub proceeds_lamports: u64,
    pub treasury: String,
    pub minted: u32,
    /// Ticket accounts still open.
    pub open_tickets: u32,
    /// Scans of the event not yet on chain (tickets wait for them).
    pub scans_not_on_chain: u64,
}

/// Where settling an event stands: its account on chain (`None` once it is
/// closed) and what was recorded of withdrawals and closings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct SettlementStatus {
    pub event_id: u64,
    pub chain: Option<ChainSide>,
    pub record: SettlementRecord,
}

/// Reads where settling `event_id` stands; changes nothing.
pub async fn status(services: &Services, event_id: u64) -> Result<SettlementStatus, ServiceError> {
    let ctx = chain_of(services)?;
    services
        .store
        .event_chain(event_id)
        .await?
        .ok_or(OrganizerError::UnknownEvent(event_id))?;
    let record = services.store.settlement_record(event_id).await?;
    let event = ops::event(ctx.chain.as_ref(), &ctx.authority.pubkey(), event_id)
        .await
        .map_err(OrganizerError::from)?;
    let chain = match event {
        None => None,
        Some(event) => {
            let now = ctx.chain.unix_time().await.map_err(OrganizerError::from)?;
            let replay = services.store.replay_summary(event_id).await?;
            Some(ChainSide {
                chain_time: now,
                ends_at: event.ends_at,
                ended: event.has_ended(now),
                cancelled: event.is_cancelled(),
                proceeds_lamports: event.proceeds,
                treasury: event.treasury.to_string(),
                minted: event.minted,
                open_tickets: event.open_tickets,
                scans_not_on_chain: replay.waiting + replay.submitted,
            })
        }
    };
    Ok(SettlementStatus {
        event_id,
        chain,
        record,
    })
}
