use anchor_lang::prelude::*;

use crate::error::TicketingError;
use crate::state::{Event, Ticket, TicketStatus};

/// Accounts of the organizer's actions on one ticket (security hold, release).
#[derive(Accounts)]
pub struct ManageTicket<'info> {
    pub organizer: Signer<'info>,
    #[account(has_one = organizer @ TicketingError::NotOrganizer)]
    pub event: Account<'info, Event>,
    #[account(mut, constraint = ticket.belongs_to(&ticket.key(), &event.key()) @ TicketingError::WrongEvent)]
    pub ticket: Account<'info, Ticket>,
}

/// Security hold: gates refuse the ticket and it cannot be transferred until released.
pub(crate) fn handler(ctx: Context<ManageTicket>) -> Result<()> {
    let ticket = &mut ctx.accounts.ticket;
    require!(
        ticket.status == TicketStatus::Active,
        TicketingError::TicketNotActive
    );
    ticket.status = TicketStatus::Frozen;
    Ok(())
}
