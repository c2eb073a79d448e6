use anchor_lang::prelude::*;
use anchor_spl::associated_token::AssociatedToken;
use anchor_spl::token_interface::TokenInterface;

use crate::constants::MINT_SEED;
use crate::error::TicketingError;
use crate::nft::{self, MoveAccounts, ticket_token_address};
use crate::state::{Event, Ticket, TicketStatus};

/// The holder gives the ticket to another wallet.
#[derive(Accounts)]
pub struct TransferTicket<'info> {
    #[account(mut)]
    pub owner: Signer<'info>,
    /// CHECK: any wallet may receive a ticket.
    pub recipient: UncheckedAccount<'info>,
    #[account(constraint = !event.is_cancelled() @ TicketingError::EventCancelled)]
    pub event: Account<'info, Event>,
    #[account(
        mut,
        constraint = ticket.belongs_to(&ticket.key(), &event.key()) @ TicketingError::WrongEvent,
    )]
    pub ticket: Account<'info, Ticket>,
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

/// The refusals shared by direct and email transfers.
pub fn check_transferable(event: &Event, ticket: &Ticket, now: i64) -> Result<()> {
    require!(!event.is_cancelled(), TicketingError::EventCancelled);
    require!(
        ticket.status == TicketStatus::Active,
        TicketingError::TicketNotActive
    );
    require!(!ticket.entered, TicketingError::AlreadyEntered);
    require!(event.transfers_open(now), TicketingError::TransferForbidden);
    Ok(())
}

pub(crate) fn handler(ctx: Context<TransferTicket>) -> Result<()> {
    let now = Clock::get()?.unix_timestamp;
    let accounts = &ctx.accounts;
    require_keys_eq!(
        accounts.ticket.owner,
        accounts.owner.key(),
        TicketingError::NotTicketOwner
    );
    check_transferable(&accounts.event, &accounts.ticket, now)?;
    require!(
        !accounts.ticket.transfer_pending,
        TicketingError::TransferPending
    );
    require_keys_neq!(
        accounts.recipient.key(),
        accounts.owner.key(),
        TicketingError::SelfTransfer
    );

    let owner = accounts.owner.to_account_info();
    let signer = accounts.event.signer();
    nft::move_ticket_token(
        &MoveAccounts {
            payer: &owner,
            event: &accounts.event.to_account_info(),
            mint: &accounts.mint.to_account_info(),
            from: &accounts.owner_token.to_account_info(),
            authority: &owner,
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
    Ok(())
}
