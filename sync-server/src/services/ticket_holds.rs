//! The organizer's security hold on a ticket: `freeze_ticket` on chain, and
//! `unfreeze_ticket` to release it. Each is chain first, then the ticket as
//! the chain now has it is published to the gates (the change feed, as a
//! revocation is), so running gates refuse a frozen ticket from their next
//! delta and admit it again after the release.
//!
//! Both are idempotent: freezing a frozen ticket or releasing an active one
//! sends nothing and answers the ticket as it is. A revoked or refunded
//! ticket can be neither (409).

use shared::wire::CachedTicket;
use solana_sdk::signature::Signer;
use ticketing::client::TicketStatus as ChainStatus;

use super::organizer::{self, OrganizerError, chain_of};
use super::{ServiceError, Services};
use crate::chain::ops;

/// What the organizer does to the ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    Freeze,
    Release,
}

/// Freezes (`Hold::Freeze`) or releases a ticket on chain and publishes it
/// to the gates. Not found for an event this server did not create or a
/// ticket the chain does not have.
pub async fn set_hold(
    services: &Services,
    event_id: u64,
    ticket_id: u32,
    hold: Hold,
) -> Result<CachedTicket, ServiceError> {
    let ctx = chain_of(services)?;
    services
        .store
        .event_chain(event_id)
        .await?
        .ok_or(OrganizerError::UnknownEvent(event_id))?;
    let organizer = ctx.authority.pubkey();
    let event = ticketing::client::event_address(&organizer, event_id).0;
    let ticket = ops::tickets(ctx.chain.as_ref(), &event, &[ticket_id])
        .await
        .map_err(OrganizerError::from)?
        .pop()
        .flatten()
        .ok_or_else(|| {
            ServiceError::NotFound(format!(
                "event {event_id} has no ticket {ticket_id} on chain"
            ))
        })?;
    let instruction = match (hold, ticket.status) {
        (Hold::Freeze, ChainStatus::Active) => Some(ticketing::client::freeze_ticket(
            &organizer, &event, ticket_id,
        )),
        (Hold::Release, ChainStatus::Frozen) => Some(ticketing::client::unfreeze_ticket(
            &organizer, &event, ticket_id,
        )),
        (Hold::Freeze, ChainStatus::Frozen) | (Hold::Release, ChainStatus::Active) => None,
        (_, ChainStatus::Revoked | ChainStatus::Refunded) => {
            return Err(ServiceError::Conflict(format!(
                "ticket {ticket_id} is {}: it can be neither frozen nor released",
                if ticket.status == ChainStatus::Revoked {
                    "revoked"
                } else {
                    "refunded"
                }
            )));
        }
    };
    if let Some(instruction) = instruction {
        ops::send(ctx.chain.as_ref(), &ctx.authority, &[instruction], &[])
            .await
            .map_err(OrganizerError::from)?;
    }
    organizer::refresh_tickets(services, event_id, &[ticket_id])
        .await?
        .pop()
        .ok_or_else(|| ServiceError::NotFound(format!("no ticket {ticket_id}")))
}
