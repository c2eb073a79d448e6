use anchor_lang::prelude::*;
use anchor_spl::token_2022::{self, Approve};
use anchor_spl::token_interface::TokenInterface;

use crate::constants::{DELEGATION_SEED, MINT_SEED};
use crate::error::TicketingError;
use crate::instructions::transfer_ticket::check_transferable;
use crate::nft::{self, ticket_token_address};
use crate::state::{Delegation, Event, Ticket};

/// The holder offers the ticket to whoever holds the secret of `claim_key` (sent by email).
#[derive(Accounts)]
pub struct OpenEmailTransfer<'info> {
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
        init,
        payer = owner,
        space = Delegation::SPACE,
        seeds = [DELEGATION_SEED, ticket.key().as_ref()],
        bump,
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
    pub system_program: Program<'info, System>,
}

/// The token stays in the owner's account; the event PDA becomes its approved delegate so the
/// claim can move it without the owner. `email_hash` is sha256 of the normalized address.
pub(crate) fn handler(
    ctx: Context<OpenEmailTransfer>,
    email_hash: [u8; 32],
    claim_key: Pubkey,
    expires_at: i64,
) -> Result<()> {
    let now = Clock::get()?.unix_timestamp;
    let accounts = &ctx.accounts;
    check_transferable(&accounts.event, &accounts.ticket, now)?;
    require!(
        !accounts.ticket.transfer_pending,
        TicketingError::TransferPending
    );
    require!(expires_at > now, TicketingError::InvalidExpiry);

    let signer = accounts.event.signer();
    let seeds = signer.seeds();
    let token_program = accounts.token_program.to_account_info();
    let event = accounts.event.to_account_info();
    let mint = accounts.mint.to_account_info();
    let owner_token = accounts.owner_token.to_account_info();
    nft::thaw(&token_program, &owner_token, &mint, &event, &seeds)?;
    token_2022::approve(
        CpiContext::new(
            token_program.key(),
            Approve {
                to: owner_token.clone(),
                delegate: event.clone(),
                authority: accounts.owner.to_account_info(),
            },
        ),
        1,
    )?;
    nft::freeze(&token_program, &owner_token, &mint, &event, &seeds)?;

    let ticket_key = accounts.ticket.key();
    let owner_key = accounts.owner.key();
    let generation = accounts.ticket.generation;
    let delegation = &mut ctx.accounts.delegation;
    delegation.ticket = ticket_key;
    delegation.owner = owner_key;
    delegation.email_hash = email_hash;
    delegation.claim_key = claim_key;
    delegation.expires_at = expires_at;
    delegation.generation = generation;
    delegation.bump = ctx.bumps.delegation;
    ctx.accounts.ticket.transfer_pending = true;
    Ok(())
}
