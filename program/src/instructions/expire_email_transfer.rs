use anchor_lang::prelude::*;

use crate::constants::DELEGATION_SEED;
use crate::error::TicketingError;
use crate::state::{Delegation, Ticket};

/// Anyone may close an expired email transfer: the ticket becomes transferable by its owner
/// again and the rent returns to the owner. The approval left on the owner's token account is
/// inert: the program moves a token as delegate only inside a claim of a live delegation.
#[derive(Accounts)]
pub struct ExpireEmailTransfer<'info> {
    /// CHECK: the wallet that opened the transfer; receives the delegation's rent.
    #[account(mut, address = delegation.owner @ TicketingError::WrongAccount)]
    pub owner: UncheckedAccount<'info>,
    #[account(mut)]
    pub ticket: Account<'info, Ticket>,
    #[account(
        mut,
        close = owner,
        has_one = ticket @ TicketingError::WrongAccount,
        seeds = [DELEGATION_SEED, ticket.key().as_ref()],
        bump = delegation.bump,
    )]
    pub delegation: Account<'info, Delegation>,
}

pub(crate) fn handler(ctx: Context<ExpireEmailTransfer>) -> Result<()> {
    let now = Clock::get()?.unix_timestamp;
    require!(
        now >= ctx.accounts.delegation.expires_at,
        TicketingError::DelegationNotExpired
    );
    ctx.accounts.ticket.transfer_pending = false;
    Ok(())
}
