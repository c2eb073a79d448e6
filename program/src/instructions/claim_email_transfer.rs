use anchor_lang::prelude::*;
use anchor_spl::associated_token::AssociatedToken;
use anchor_spl::token_interface::TokenInterface;

use crate::constants::{DELEGATION_SEED, MINT_SEED};
use crate::error::TicketingError;
use crate::instructions::transfer_ticket::check_transferable;
use crate::nft::{self, MoveAccounts, ticket_token_address};
use crate::state::{Delegation, Event, Ticket};

/// Whoever holds the one-time claim secret moves the ticket to `recipient`. The claim key's
/// signature covers the whole transaction, recipient included, so an observer can neither
/// replay it nor redirect it; closing the delegation makes a second claim impossible.
#[derive(Accounts)]
pub struct ClaimEmailTransfer<'info> {
    /// Pays for the recipient's token account and the transaction (the recipient or a relayer).
    #[account(mut)]
    pub payer: Signer<'info>,
    pub claim_key: Signer<'info>,
    /// CHECK: any wallet may receive a ticket.
    pub recipient: UncheckedAccount<'info>,
    /// CHECK: the wallet that opened the transfer; receives the delegation's rent.
    #[account(mut, address = delegation.owner @ TicketingError::WrongAccount)]
    pub owner: UncheckedAccount<'info>,
    pub event: Account<'info, Event>,
    #[account(
        mut,
        constraint = ticket.belongs_to(&ticket.key(), &event.key()) @ TicketingError::WrongEvent,
        has_one = owner @ TicketingError::StaleDelegation,
    )]
    pub ticket: Account<'info, Ticket>,
    #[account(
        mut,
        close = owner,
        has_one = ticket @ TicketingError::WrongAccount,
        constraint = delegation.claim_key == claim_key.key() @ TicketingError::WrongClaimKey,
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
    /// CHECK: the recipient's associated token account (address constrained; created if needed).
    #[account(
        mut,
        address = ticket_token_address(&recipient.key(), &mint.key(), &event.token_program()) @ TicketingError::WrongAccount,
    )]
    pub recipient_token: UncheckedAccount<'info>,
    #[account(address = event.token_program() @ TicketingError::WrongTokenProgram)]
    pub token_program: Interface<'info, TokenInterface>,
    pub associated_token_program: Program<'info, AssociatedToken>,
    pub system_program: Program<'info, System>,
}

pub(crate) fn handler(ctx: Context<ClaimEmailTransfer>) -> Result<()> {
    let now = Clock::get()?.unix_timestamp;
    let accounts = &ctx.accounts;
    require!(
        now < accounts.delegation.expires_at,
        TicketingError::DelegationExpired
    );
    require!(
        accounts.delegation.generation == accounts.ticket.generation,
        TicketingError::StaleDelegation
    );
    check_transferable(&accounts.event, &accounts.ticket, now)?;

    let event = accounts.event.to_account_info();
    let signer = accounts.event.signer();
    nft::move_ticket_token(
        &MoveAccounts {
            payer: &accounts.payer.to_account_info(),
            event: &event,
            mint: &accounts.mint.to_account_info(),
            from: &accounts.owner_token.to_account_info(),
            // The event PDA was approved as delegate when the transfer was opened.
            authority: &event,
            recipient: &accounts.recipient.to_account_info(),
            to: &accounts.recipient_token.to_account_info(),
            token_program: &accounts.token_program.to_account_info(),
            associated_token_program: &accounts.associated_token_program.to_account_info(),
            system_program: &accounts.system_program.to_account_info(),
        },
        &signer.seeds(),
    )?;

    let recipient = accounts.recipient.key();
    let ticket = &mut ctx.accounts.ticket;
    ticket.owner = recipient;
    ticket.generation = ticket
        .generation
        .checked_add(1)
        .ok_or(TicketingError::Overflow)?;
    ticket.transfer_pending = false;
    Ok(())
}
