use anchor_lang::prelude::*;

use crate::error::TicketingError;
use crate::state::{Event, EventParams};

/// Accounts of the organizer's changes to a live event (update, cancel, validator list).
#[derive(Accounts)]
pub struct ManageEvent<'info> {
    pub organizer: Signer<'info>,
    #[account(
        mut,
        has_one = organizer @ TicketingError::NotOrganizer,
        constraint = !event.is_cancelled() @ TicketingError::EventCancelled,
    )]
    pub event: Account<'info, Event>,
}

/// Tiers keep their index and sales; capacity and tier supply cannot drop below what is sold.
pub(crate) fn handler(ctx: Context<ManageEvent>, params: EventParams) -> Result<()> {
    ctx.accounts.event.apply_params(params)
}
