use anchor_lang::prelude::*;

use crate::instructions::ManageEvent;
use crate::state::EventStatus;

/// Stops minting, transfers and entries. Refunds (`revoke_ticket`) and closing stay possible.
pub(crate) fn handler(ctx: Context<ManageEvent>) -> Result<()> {
    ctx.accounts.event.status = EventStatus::Cancelled;
    Ok(())
}
