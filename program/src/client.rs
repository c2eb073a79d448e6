//! Client side of the program, for the sync server, scripts and tests: every PDA, every
//! instruction builder, and account decoding. Builders take plain arguments and return a
//! ready `Instruction`; they derive all addresses themselves, so callers never handle seeds.

use anchor_lang::prelude::*;
use anchor_lang::solana_program::instruction::Instruction;
use anchor_lang::{InstructionData, system_program};
use anchor_spl::associated_token;

use crate::constants::{DELEGATION_SEED, EVENT_SEED, MINT_SEED, TICKET_SEED};
pub use crate::instructions::EntryRecord;
pub use crate::nft::ticket_token_address;

pub use crate::state::{
    Delegation, Event, EventParams, EventStatus, Ticket, TicketStatus, Tier, TierParams,
    TokenStandard,
};
use crate::{ID, accounts, instruction};

/// Records that fit one legacy `validate_entries` transaction signed (and paid) by the
/// validator alone: 216 bytes of fixed overhead plus 48 per record (its ticket's 32-byte key,
/// a 1-byte account index and the 15-byte record) within the 1,232-byte packet. An address
/// lookup table would bring the per-record cost to 17 bytes.
pub const MAX_ENTRIES_PER_LEGACY_TX: usize = 21;

pub fn event_address(organizer: &Pubkey, event_id: u64) -> (Pubkey, u8) {
    Pubkey::find_program_address(
        &[EVENT_SEED, organizer.as_ref(), &event_id.to_le_bytes()],
        &ID,
    )
}

pub fn ticket_address(event: &Pubkey, ticket_id: u32) -> (Pubkey, u8) {
    Pubkey::find_program_address(
        &[TICKET_SEED, event.as_ref(), &ticket_id.to_le_bytes()],
        &ID,
    )
}

pub fn mint_address(ticket: &Pubkey) -> (Pubkey, u8) {
    Pubkey::find_program_address(&[MINT_SEED, ticket.as_ref()], &ID)
}

pub fn delegation_address(ticket: &Pubkey) -> (Pubkey, u8) {
    Pubkey::find_program_address(&[DELEGATION_SEED, ticket.as_ref()], &ID)
}

/// The accounts of one ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TicketAccounts {
    pub ticket: Pubkey,
    pub mint: Pubkey,
}

impl TicketAccounts {
    pub fn derive(event: &Pubkey, ticket_id: u32) -> Self {
        let ticket = ticket_address(event, ticket_id).0;
        let mint = mint_address(&ticket).0;
        Self { ticket, mint }
    }

    /// Where `owner` holds this ticket's token, for an event of `standard`.
    pub fn token_account(&self, owner: &Pubkey, standard: TokenStandard) -> Pubkey {
        ticket_token_address(owner, &self.mint, &standard.program_id())
    }
}

/// The `email_hash` an email transfer stores: sha256 of the address trimmed and lowercased, so
/// the server can match a claim to the address it mailed without the chain holding the address.
pub fn email_hash(email: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(email.trim().to_lowercase().as_bytes()).into()
}

/// Decodes an event account's data (discriminator checked).
pub fn decode_event(data: &[u8]) -> Result<Event> {
    Event::try_deserialize(&mut &data[..])
}

/// Decodes a ticket account's data (discriminator checked).
pub fn decode_ticket(data: &[u8]) -> Result<Ticket> {
    Ticket::try_deserialize(&mut &data[..])
}

/// Decodes a delegation (email transfer) account's data (discriminator checked).
pub fn decode_delegation(data: &[u8]) -> Result<Delegation> {
    Delegation::try_deserialize(&mut &data[..])
}

fn build(accounts: impl ToAccountMetas, data: impl InstructionData) -> Instruction {
    Instruction {
        program_id: ID,
        accounts: accounts.to_account_metas(None),
        data: data.data(),
    }
}

pub fn create_event(organizer: &Pubkey, event_id: u64, params: EventParams) -> Instruction {
    build(
        accounts::CreateEvent {
            organizer: *organizer,
            event: event_address(organizer, event_id).0,
            system_program: system_program::ID,
        },
        instruction::CreateEvent { event_id, params },
    )
}

fn manage_event(organizer: &Pubkey, event: &Pubkey) -> accounts::ManageEvent {
    accounts::ManageEvent {
        organizer: *organizer,
        event: *event,
    }
}

pub fn update_event(organizer: &Pubkey, event: &Pubkey, params: EventParams) -> Instruction {
    build(
        manage_event(organizer, event),
        instruction::UpdateEvent { params },
    )
}

pub fn cancel_event(organizer: &Pubkey, event: &Pubkey) -> Instruction {
    build(manage_event(organizer, event), instruction::CancelEvent {})
}

pub fn add_validator(organizer: &Pubkey, event: &Pubkey, validator: &Pubkey) -> Instruction {
    build(
        manage_event(organizer, event),
        instruction::AddValidator {
            validator: *validator,
        },
    )
}

pub fn remove_validator(organizer: &Pubkey, event: &Pubkey, validator: &Pubkey) -> Instruction {
    build(
        manage_event(organizer, event),
        instruction::RemoveValidator {
            validator: *validator,
        },
    )
}

/// `next_ticket_id` is the event's `minted` counter as last read; if another purchase lands
/// first the transaction fails with `WrongAccount` and is rebuilt with the new counter.
pub fn buy_ticket(
    buyer: &Pubkey,
    event: &Pubkey,
    next_ticket_id: u32,
    tier: u8,
    max_price: u64,
    standard: TokenStandard,
) -> Instruction {
    let ticket = TicketAccounts::derive(event, next_ticket_id);
    build(
        accounts::BuyTicket {
            buyer: *buyer,
            event: *event,
            ticket: ticket.ticket,
            mint: ticket.mint,
            buyer_token: ticket.token_account(buyer, standard),
            token_program: standard.program_id(),
            associated_token_program: associated_token::ID,
            system_program: system_program::ID,
        },
        instruction::BuyTicket { tier, max_price },
    )
}

/// Compute units a full `mint_tickets` batch is allowed. The default of 200,000 per transaction
/// is not enough: the token and associated token programs alone use about 36,000 per SPL Token
/// ticket (more for Token-2022), varying with the bump searches of the recipients' addresses,
/// and this program's own work comes on top on a real cluster. Requesting the maximum costs
/// nothing without a compute unit price.
pub const MINT_COMPUTE_UNITS: u32 = 1_400_000;

/// The instruction to put before a `mint_tickets` of more than one ticket (see
/// [`MINT_COMPUTE_UNITS`]).
pub fn mint_compute_budget() -> Instruction {
    solana_compute_budget_interface::ComputeBudgetInstruction::set_compute_unit_limit(
        MINT_COMPUTE_UNITS,
    )
}

/// Mints consecutive tickets starting at `first_ticket_id` (the event's `minted` counter),
/// one per `(recipient, tier)`, paid off chain.
pub fn mint_tickets(
    minter: &Pubkey,
    event: &Pubkey,
    first_ticket_id: u32,
    recipients: &[(Pubkey, u8)],
    standard: TokenStandard,
) -> Instruction {
    let mut metas = accounts::MintTickets {
        minter: *minter,
        event: *event,
        token_program: standard.program_id(),
        associated_token_program: associated_token::ID,
        system_program: system_program::ID,
    }
    .to_account_metas(None);
    let mut ticket_id = first_ticket_id;
    for (recipient, _) in recipients {
        let ticket = TicketAccounts::derive(event, ticket_id);
        metas.extend([
            AccountMeta::new_readonly(*recipient, false),
            AccountMeta::new(ticket.ticket, false),
            AccountMeta::new(ticket.mint, false),
            AccountMeta::new(ticket.token_account(recipient, standard), false),
        ]);
        ticket_id = ticket_id.wrapping_add(1);
    }
    Instruction {
        program_id: ID,
        accounts: metas,
        data: instruction::MintTickets {
            tiers: recipients.iter().map(|(_, tier)| *tier).collect(),
        }
        .data(),
    }
}

pub fn transfer_ticket(
    owner: &Pubkey,
    recipient: &Pubkey,
    event: &Pubkey,
    ticket_id: u32,
    standard: TokenStandard,
) -> Instruction {
    let ticket = TicketAccounts::derive(event, ticket_id);
    build(
        accounts::TransferTicket {
            owner: *owner,
            recipient: *recipient,
            event: *event,
            ticket: ticket.ticket,
            mint: ticket.mint,
            owner_token: ticket.token_account(owner, standard),
            recipient_token: ticket.token_account(recipient, standard),
            token_program: standard.program_id(),
            associated_token_program: associated_token::ID,
            system_program: system_program::ID,
        },
        instruction::TransferTicket {},
    )
}

/// `claim_key` is the public half of a one-time keypair whose secret goes only into the email.
pub fn open_email_transfer(
    owner: &Pubkey,
    event: &Pubkey,
    ticket_id: u32,
    email_hash: [u8; 32],
    claim_key: &Pubkey,
    expires_at: i64,
    standard: TokenStandard,
) -> Instruction {
    let ticket = TicketAccounts::derive(event, ticket_id);
    build(
        accounts::OpenEmailTransfer {
            owner: *owner,
            event: *event,
            ticket: ticket.ticket,
            delegation: delegation_address(&ticket.ticket).0,
            mint: ticket.mint,
            owner_token: ticket.token_account(owner, standard),
            token_program: standard.program_id(),
            system_program: system_program::ID,
        },
        instruction::OpenEmailTransfer {
            email_hash,
            claim_key: *claim_key,
            expires_at,
        },
    )
}

/// Must be signed by `payer` and by the one-time `claim_key`.
pub fn claim_email_transfer(
    payer: &Pubkey,
    claim_key: &Pubkey,
    recipient: &Pubkey,
    owner: &Pubkey,
    event: &Pubkey,
    ticket_id: u32,
    standard: TokenStandard,
) -> Instruction {
    let ticket = TicketAccounts::derive(event, ticket_id);
    build(
        accounts::ClaimEmailTransfer {
            payer: *payer,
            claim_key: *claim_key,
            recipient: *recipient,
            owner: *owner,
            event: *event,
            ticket: ticket.ticket,
            delegation: delegation_address(&ticket.ticket).0,
            mint: ticket.mint,
            owner_token: ticket.token_account(owner, standard),
            recipient_token: ticket.token_account(recipient, standard),
            token_program: standard.program_id(),
            associated_token_program: associated_token::ID,
            system_program: system_program::ID,
        },
        instruction::ClaimEmailTransfer {},
    )
}

pub fn cancel_email_transfer(
    owner: &Pubkey,
    event: &Pubkey,
    ticket_id: u32,
    standard: TokenStandard,
) -> Instruction {
    let ticket = TicketAccounts::derive(event, ticket_id);
    build(
        accounts::CancelEmailTransfer {
            owner: *owner,
            event: *event,
            ticket: ticket.ticket,
            delegation: delegation_address(&ticket.ticket).0,
            mint: ticket.mint,
            owner_token: ticket.token_account(owner, standard),
            token_program: standard.program_id(),
        },
        instruction::CancelEmailTransfer {},
    )
}

/// Anyone may send it once the transfer has expired; `owner` opened it and gets the rent back.
pub fn expire_email_transfer(owner: &Pubkey, event: &Pubkey, ticket_id: u32) -> Instruction {
    let ticket = TicketAccounts::derive(event, ticket_id);
    build(
        accounts::ExpireEmailTransfer {
            owner: *owner,
            ticket: ticket.ticket,
            delegation: delegation_address(&ticket.ticket).0,
        },
        instruction::ExpireEmailTransfer {},
    )
}

fn manage_ticket(organizer: &Pubkey, event: &Pubkey, ticket_id: u32) -> accounts::ManageTicket {
    accounts::ManageTicket {
        organizer: *organizer,
        event: *event,
        ticket: ticket_address(event, ticket_id).0,
    }
}

pub fn freeze_ticket(organizer: &Pubkey, event: &Pubkey, ticket_id: u32) -> Instruction {
    build(
        manage_ticket(organizer, event, ticket_id),
        instruction::FreezeTicket {},
    )
}

pub fn unfreeze_ticket(organizer: &Pubkey, event: &Pubkey, ticket_id: u32) -> Instruction {
    build(
        manage_ticket(organizer, event, ticket_id),
        instruction::UnfreezeTicket {},
    )
}

/// `holder` is the ticket's current owner; a price paid on chain is refunded to it.
pub fn revoke_ticket(
    organizer: &Pubkey,
    event: &Pubkey,
    ticket_id: u32,
    holder: &Pubkey,
) -> Instruction {
    build(
        accounts::RevokeTicket {
            organizer: *organizer,
            event: *event,
            ticket: ticket_address(event, ticket_id).0,
            holder: *holder,
        },
        instruction::RevokeTicket {},
    )
}

/// One instruction for many tickets' folded scans: `records` pairs each record with its ticket
/// id. A record that folded no more scans than the ticket's last applied one is skipped on
/// chain, so the same batch can be resent safely.
pub fn validate_entries(
    validator: &Pubkey,
    event: &Pubkey,
    records: &[(u32, EntryRecord)],
) -> Instruction {
    let mut metas = accounts::ValidateEntries {
        validator: *validator,
        event: *event,
    }
    .to_account_metas(None);
    metas.extend(
        records
            .iter()
            .map(|(ticket_id, _)| AccountMeta::new(ticket_address(event, *ticket_id).0, false)),
    );
    Instruction {
        program_id: ID,
        accounts: metas,
        data: instruction::ValidateEntries {
            records: records.iter().map(|(_, record)| *record).collect(),
        }
        .data(),
    }
}

pub fn close_ticket(organizer: &Pubkey, event: &Pubkey, ticket_id: u32) -> Instruction {
    build(
        accounts::CloseTicket {
            organizer: *organizer,
            event: *event,
            ticket: ticket_address(event, ticket_id).0,
        },
        instruction::CloseTicket {},
    )
}

pub fn withdraw_proceeds(organizer: &Pubkey, event: &Pubkey, treasury: &Pubkey) -> Instruction {
    build(
        accounts::WithdrawProceeds {
            organizer: *organizer,
            event: *event,
            treasury: *treasury,
        },
        instruction::WithdrawProceeds {},
    )
}

pub fn close_event(organizer: &Pubkey, event: &Pubkey, treasury: &Pubkey) -> Instruction {
    build(
        accounts::CloseEvent {
            organizer: *organizer,
            event: *event,
            treasury: *treasury,
        },
        instruction::CloseEvent {},
    )
}
