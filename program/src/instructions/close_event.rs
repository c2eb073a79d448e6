use anchor_lang::prelude::*;

use crate::error::TicketingError;
use crate::state::Event;

/// Closes an ended or cancelled event once all its ticket accounts are closed: remaining
/// proceeds go to the treasury and the rent to the organizer.
#[derive(Accounts)]
pub struct CloseEvent<'info> {
    #[account(mut)]
    pub organizer: Signer<'info>,
    #[account(
        mut,
        close = organizer,
        has_one = organizer @ TicketingError::NotOrganizer,
        has_one = treasury @ TicketingError::WrongAccount,
    )]
    pub event: Account<'info, Event>,
    /// CHECK: the event's treasury wallet (constrained by `has_one`).
    #[account(mut)]
    pub treasury: UncheckedAccount<'info>,
}

pub(crate) fn handler(ctx: Context<CloseEvent>) -> Result<()> {
    let now = Clock::get()?.unix_timestamp;
    let event = &mut ctx.accounts.event;
    require!(
        event.is_cancelled() || event.has_ended(now),
        TicketingError::EventNotEnded
    );
    require!(event.open_tickets == 0, TicketingError::TicketsOutstanding);
    let amount = event.proceeds;
    event.proceeds = 0;
    event.sub_lamports(amount)?;
    ctx.accounts.treasury.add_lamports(amount)?;
    Ok(())
}
