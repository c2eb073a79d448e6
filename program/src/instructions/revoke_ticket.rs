use anchor_lang::prelude::*;

use crate::error::TicketingError;
use crate::state::{Event, Ticket, TicketStatus};

/// The organizer invalidates a ticket; a price paid on chain goes back to the current holder
/// from the event's proceeds. Allowed on a cancelled event: that is how it refunds.
#[derive(Accounts)]
pub struct RevokeTicket<'info> {
    pub organizer: Signer<'info>,
    #[account(mut, has_one = organizer @ TicketingError::NotOrganizer)]
    pub event: Account<'info, Event>,
    #[account(mut, constraint = ticket.belongs_to(&ticket.key(), &event.key()) @ TicketingError::WrongEvent)]
    pub ticket: Account<'info, Ticket>,
    /// CHECK: the ticket's current holder (address constrained); receives the refund.
    #[account(mut, address = ticket.owner @ TicketingError::WrongAccount)]
    pub holder: UncheckedAccount<'info>,
}

pub(crate) fn handler(ctx: Context<RevokeTicket>) -> Result<()> {
    let ticket = &mut ctx.accounts.ticket;
    require!(
        matches!(ticket.status, TicketStatus::Active | TicketStatus::Frozen),
        TicketingError::TicketNotActive
    );
    let refund = ticket.paid;
    if refund == 0 {
        ticket.status = TicketStatus::Revoked;
        return Ok(());
    }
    let event = &mut ctx.accounts.event;
    event.proceeds = event
        .proceeds
        .checked_sub(refund)
        .ok_or(TicketingError::Overflow)?;
    event.sub_lamports(refund)?;
    ctx.accounts.holder.add_lamports(refund)?;
    ticket.paid = 0;
    ticket.status = TicketStatus::Refunded;
    Ok(())
}
