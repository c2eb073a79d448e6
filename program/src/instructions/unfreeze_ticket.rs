use anchor_lang::prelude::*;

use crate::error::TicketingError;
use crate::instructions::ManageTicket;
use crate::state::TicketStatus;

pub(crate) fn handler(ctx: Context<ManageTicket>) -> Result<()> {
    let ticket = &mut ctx.accounts.ticket;
    require!(
        ticket.status == TicketStatus::Frozen,
        TicketingError::TicketNotFrozen
    );
    ticket.status = TicketStatus::Active;
    Ok(())
}
