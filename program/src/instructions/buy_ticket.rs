use anchor_lang::prelude::*;
use anchor_lang::system_program::{self, Transfer};
use anchor_spl::associated_token::AssociatedToken;
use anchor_spl::token_interface::TokenInterface;

use crate::error::TicketingError;
use crate::instructions::issue::{IssueAccounts, issue_ticket};
use crate::state::Event;

/// A buyer pays the tier price in SOL and receives the next ticket of the event.
#[derive(Accounts)]
pub struct BuyTicket<'info> {
    #[account(mut)]
    pub buyer: Signer<'info>,
    /// Receives the price: proceeds are held by the event account until withdrawn to the
    /// treasury, so a refund on revoke can be paid back without the organizer's wallet.
    #[account(mut, constraint = !event.is_cancelled() @ TicketingError::EventCancelled)]
    pub event: Account<'info, Event>,
    /// CHECK: created here; its address must be the ticket PDA of the next ticket id
    /// (verified in the handler before anything is written).
    #[account(mut)]
    pub ticket: UncheckedAccount<'info>,
    /// CHECK: created here; its address must be the ticket's mint PDA (verified in the handler).
    #[account(mut)]
    pub mint: UncheckedAccount<'info>,
    /// CHECK: the buyer's associated token account; the associated token program verifies the
    /// address when it creates it.
    #[account(mut)]
    pub buyer_token: UncheckedAccount<'info>,
    #[account(address = event.token_program() @ TicketingError::WrongTokenProgram)]
    pub token_program: Interface<'info, TokenInterface>,
    pub associated_token_program: Program<'info, AssociatedToken>,
    pub system_program: Program<'info, System>,
}

/// `max_price` protects the buyer against a price raised between quote and purchase.
pub(crate) fn handler(ctx: Context<BuyTicket>, tier: u8, max_price: u64) -> Result<()> {
    let accounts = &ctx.accounts;
    let event_info = accounts.event.to_account_info();
    let buyer_info = accounts.buyer.to_account_info();
    let ticket_info = accounts.ticket.to_account_info();
    let mint_info = accounts.mint.to_account_info();
    let token_info = accounts.buyer_token.to_account_info();
    let token_program = accounts.token_program.to_account_info();
    let ata_program = accounts.associated_token_program.to_account_info();
    let system_info = accounts.system_program.to_account_info();

    let event = &mut ctx.accounts.event;
    let (_, price) = issue_ticket(
        &IssueAccounts {
            payer: &buyer_info,
            event: &event_info,
            recipient: &buyer_info,
            ticket: &ticket_info,
            mint: &mint_info,
            recipient_token: &token_info,
            token_program: &token_program,
            associated_token_program: &ata_program,
            system_program: &system_info,
        },
        event,
        tier,
        true,
    )?;
    require!(price <= max_price, TicketingError::PriceAboveLimit);
    if price > 0 {
        system_program::transfer(
            CpiContext::new(
                system_info.key(),
                Transfer {
                    from: buyer_info,
                    to: event_info,
                },
            ),
            price,
        )?;
    }
    event.proceeds = event
        .proceeds
        .checked_add(price)
        .ok_or(TicketingError::Overflow)?;
    Ok(())
}
