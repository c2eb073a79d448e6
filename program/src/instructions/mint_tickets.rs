use anchor_lang::prelude::*;
use anchor_spl::associated_token::AssociatedToken;
use anchor_spl::token_interface::TokenInterface;

use crate::error::TicketingError;
use crate::instructions::issue::{IssueAccounts, issue_ticket};
use crate::state::Event;

/// Accounts passed per ticket, in this order, as remaining accounts.
pub const ACCOUNTS_PER_MINTED_TICKET: usize = 4;

/// The organizer or the event's minter issues tickets paid off chain (card). Remaining accounts,
/// per entry of `tiers`: recipient wallet, ticket PDA, mint PDA, recipient's associated token
/// account (all writable except the recipient).
#[derive(Accounts)]
pub struct MintTickets<'info> {
    #[account(mut)]
    pub minter: Signer<'info>,
    #[account(
        mut,
        constraint = event.may_mint(&minter.key()) @ TicketingError::NotMinter,
        constraint = !event.is_cancelled() @ TicketingError::EventCancelled,
    )]
    pub event: Account<'info, Event>,
    #[account(address = event.token_program() @ TicketingError::WrongTokenProgram)]
    pub token_program: Interface<'info, TokenInterface>,
    pub associated_token_program: Program<'info, AssociatedToken>,
    pub system_program: Program<'info, System>,
}

pub(crate) fn handler<'info>(
    ctx: Context<'info, MintTickets<'info>>,
    tiers: Vec<u8>,
) -> Result<()> {
    require!(
        !tiers.is_empty() && tiers.len() <= ctx.accounts.event.token_standard.max_mint_batch(),
        TicketingError::BatchTooLarge
    );
    let expected = tiers
        .len()
        .checked_mul(ACCOUNTS_PER_MINTED_TICKET)
        .ok_or(TicketingError::Overflow)?;
    require!(
        ctx.remaining_accounts.len() == expected,
        TicketingError::AccountsMismatch
    );
    let minter = ctx.accounts.minter.to_account_info();
    let event_info = ctx.accounts.event.to_account_info();
    let token_program = ctx.accounts.token_program.to_account_info();
    let ata_program = ctx.accounts.associated_token_program.to_account_info();
    let system_info = ctx.accounts.system_program.to_account_info();
    let event = &mut ctx.accounts.event;

    for (tier, group) in tiers.iter().zip(
        ctx.remaining_accounts
            .chunks_exact(ACCOUNTS_PER_MINTED_TICKET),
    ) {
        let [recipient, ticket, mint, recipient_token] = group else {
            return err!(TicketingError::AccountsMismatch);
        };
        issue_ticket(
            &IssueAccounts {
                payer: &minter,
                event: &event_info,
                recipient,
                ticket,
                mint,
                recipient_token,
                token_program: &token_program,
                associated_token_program: &ata_program,
                system_program: &system_info,
            },
            event,
            *tier,
            false,
        )?;
    }
    Ok(())
}
