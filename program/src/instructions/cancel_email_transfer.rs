use anchor_lang::prelude::*;
use anchor_spl::token_2022::{self, Revoke};
use anchor_spl::token_interface::TokenInterface;

use crate::constants::{DELEGATION_SEED, MINT_SEED};
use crate::error::TicketingError;
use crate::nft::{self, ticket_token_address};
use crate::state::{Delegation, Event, Ticket};

/// The owner withdraws an open email transfer (before or after its expiry) and revokes the
/// event PDA's approval on the token.
#[derive(Accounts)]
pub struct CancelEmailTransfer<'info> {
    #[account(mut)]
    pub owner: Signer<'info>,
    pub event: Account<'info, Event>,
    #[account(
        mut,
        constraint = ticket.belongs_to(&ticket.key(), &event.key()) @ TicketingError::WrongEvent,
        has_one = owner @ TicketingError::NotTicketOwner,
    )]
    pub ticket: Account<'info, Ticket>,
    #[account(
        mut,
        close = owner,
        has_one = ticket @ TicketingError::WrongAccount,
        has_one = owner @ TicketingError::NotTicketOwner,
        seeds = [DELEGATION_SEED, ticket.key().as_ref()],
        bump = delegation.bump,
    )]
    pub delegation: Account<'info, Delegation>,
    /// CHECK: the ticket's mint, verified by its PDA seeds.
    #[account(seeds = [MINT_SEED, ticket.key().as_ref()], bump = ticket.mint_bump)]
    pub mint: UncheckedAccount<'info>,
    /// CHECK: the owner's associated token account for the mint (address constrained).
    #[account(
        mut,
        address = ticket_token_address(&owner.key(), &mint.key(), &event.token_program()) @ TicketingError::WrongAccount,
    )]
    pub owner_token: UncheckedAccount<'info>,
    #[account(address = event.token_program() @ TicketingError::WrongTokenProgram)]
    pub token_program: Interface<'info, TokenInterface>,
}

pub(crate) fn handler(ctx: Context<CancelEmailTransfer>) -> Result<()> {
    let accounts = &ctx.accounts;
    let signer = accounts.event.signer();
    let seeds = signer.seeds();
    let token_program = accounts.token_program.to_account_info();
    let event = accounts.event.to_account_info();
    let mint = accounts.mint.to_account_info();
    let owner_token = accounts.owner_token.to_account_info();
    nft::thaw(&token_program, &owner_token, &mint, &event, &seeds)?;
    token_2022::revoke(CpiContext::new(
        token_program.key(),
        Revoke {
            source: owner_token.clone(),
            authority: accounts.owner.to_account_info(),
        },
    ))?;
    nft::freeze(&token_program, &owner_token, &mint, &event, &seeds)?;
    ctx.accounts.ticket.transfer_pending = false;
    Ok(())
}
