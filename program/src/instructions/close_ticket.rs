use anchor_lang::prelude::*;

use crate::error::TicketingError;
use crate::state::{Event, Ticket};

/// After the event (or once it is cancelled) the organizer closes ticket accounts and takes
/// their rent back. The NFT stays in the holder's wallet as a souvenir.
#[derive(Accounts)]
pub struct CloseTicket<'info> {
    #[account(mut)]
    pub organizer: Signer<'info>,
    #[account(mut, has_one = organizer @ TicketingError::NotOrganizer)]
    pub event: Account<'info, Event>,
    #[account(
        mut,
        close = organizer,
        constraint = ticket.belongs_to(&ticket.key(), &event.key()) @ TicketingError::WrongEvent,
        constraint = !ticket.transfer_pending @ TicketingError::TransferPending,
    )]
    pub ticket: Account<'info, Ticket>,
}

pub(crate) fn handler(ctx: Context<CloseTicket>) -> Result<()> {
    let now = Clock::get()?.unix_timestamp;
    let event = &mut ctx.accounts.event;
    require!(
        event.is_cancelled() || event.has_ended(now),
        TicketingError::EventNotEnded
    );
    event.open_tickets = event
        .open_tickets
        .checked_sub(1)
        .ok_or(TicketingError::Overflow)?;
    Ok(())
}
