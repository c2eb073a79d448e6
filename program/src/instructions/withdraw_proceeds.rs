use anchor_lang::prelude::*;

use crate::error::TicketingError;
use crate::state::Event;

/// Moves the on-chain ticket proceeds from the event account to the event's treasury wallet,
/// once the event has ended. Not on a cancelled event: its proceeds are for refunds.
#[derive(Accounts)]
pub struct WithdrawProceeds<'info> {
    pub organizer: Signer<'info>,
    #[account(
        mut,
        has_one = organizer @ TicketingError::NotOrganizer,
        has_one = treasury @ TicketingError::WrongAccount,
        constraint = !event.is_cancelled() @ TicketingError::EventCancelled,
    )]
    pub event: Account<'info, Event>,
    /// CHECK: the event's treasury wallet (constrained by `has_one`).
    #[account(mut)]
    pub treasury: UncheckedAccount<'info>,
}

pub(crate) fn handler(ctx: Context<WithdrawProceeds>) -> Result<()> {
    let now = Clock::get()?.unix_timestamp;
    let event = &mut ctx.accounts.event;
    require!(event.has_ended(now), TicketingError::EventNotEnded);
    let amount = event.proceeds;
    event.proceeds = 0;
    event.sub_lamports(amount)?;
    ctx.accounts.treasury.add_lamports(amount)?;
    Ok(())
}
