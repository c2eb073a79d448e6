//! Issuing one ticket (state account + NFT), shared by `buy_ticket` and `mint_tickets`.

use anchor_lang::prelude::*;

use crate::constants::{MINT_SEED, TICKET_SEED};
use crate::error::TicketingError;
use crate::nft::{self, MintAccounts, TicketMetadata};
use crate::state::{Event, Ticket, TicketStatus};

pub struct IssueAccounts<'a, 'info> {
    pub payer: &'a AccountInfo<'info>,
    pub event: &'a AccountInfo<'info>,
    pub recipient: &'a AccountInfo<'info>,
    pub ticket: &'a AccountInfo<'info>,
    pub mint: &'a AccountInfo<'info>,
    pub recipient_token: &'a AccountInfo<'info>,
    pub token_program: &'a AccountInfo<'info>,
    pub associated_token_program: &'a AccountInfo<'info>,
    pub system_program: &'a AccountInfo<'info>,
}

/// Reserves the next ticket id in `tier` (refusing past capacity or tier supply), creates the
/// ticket account at its PDA and mints its NFT to the recipient. `paid_on_chain` records the
/// tier price as refundable. Returns (ticket id, tier price).
pub fn issue_ticket(
    accounts: &IssueAccounts<'_, '_>,
    event: &mut Event,
    tier: u8,
    paid_on_chain: bool,
) -> Result<(u32, u64)> {
    let (ticket_id, price) = event.reserve_ticket(tier)?;
    let event_key = *accounts.event.key;
    let id_bytes = ticket_id.to_le_bytes();
    let (ticket_key, ticket_bump) =
        Pubkey::find_program_address(&[TICKET_SEED, event_key.as_ref(), &id_bytes], &crate::ID);
    require_keys_eq!(
        ticket_key,
        *accounts.ticket.key,
        TicketingError::WrongAccount
    );
    let (mint_key, mint_bump) =
        Pubkey::find_program_address(&[MINT_SEED, ticket_key.as_ref()], &crate::ID);
    require_keys_eq!(mint_key, *accounts.mint.key, TicketingError::WrongAccount);

    nft::create_pda_account(
        accounts.payer,
        accounts.ticket,
        accounts.system_program,
        Ticket::SPACE,
        Rent::get()?.minimum_balance(Ticket::SPACE),
        &crate::ID,
        &[TICKET_SEED, event_key.as_ref(), &id_bytes, &[ticket_bump]],
    )?;
    let ticket = Ticket {
        owner: *accounts.recipient.key,
        ticket_id,
        tier,
        generation: 0,
        status: TicketStatus::Active,
        entered: false,
        inside: false,
        entry_count: 0,
        last_gate: 0,
        last_scan_at_ms: 0,
        scans_applied: 0,
        paid: if paid_on_chain { price } else { 0 },
        transfer_pending: false,
        bump: ticket_bump,
        mint_bump,
    };
    {
        let mut data = accounts.ticket.try_borrow_mut_data()?;
        let mut writer: &mut [u8] = &mut data;
        ticket.try_serialize(&mut writer)?;
    }

    let signer = event.signer();
    nft::mint_ticket_nft(
        &MintAccounts {
            payer: accounts.payer,
            event: accounts.event,
            recipient: accounts.recipient,
            mint: accounts.mint,
            recipient_token: accounts.recipient_token,
            token_program: accounts.token_program,
            associated_token_program: accounts.associated_token_program,
            system_program: accounts.system_program,
        },
        &[MINT_SEED, ticket_key.as_ref(), &[mint_bump]],
        &signer.seeds(),
        TicketMetadata {
            name: format!("{} #{}", event.name, ticket_id),
            symbol: event.symbol.clone(),
            uri: format!("{}{}", event.uri_base, ticket_id),
        },
    )?;
    Ok((ticket_id, price))
}
