//! Solana program for event tickets: events with tiers and an issuer key, tickets as
//! Token-2022 NFTs held frozen in the holder's wallet, direct and email transfers, organizer
//! holds and refunds, and batched, idempotent replay of gate entries.
//!
//! The crate is also the one client library of the program: [`client`] derives every address
//! and builds every instruction, [`state`] holds the account layouts, and (feature
//! `test-runtime`) [`testing`] runs the program natively in an in-process runtime. Other crates
//! must not copy seeds or borsh layouts from here.
//!
//! `lib.rs` only dispatches; each instruction lives in `instructions/<verb>.rs`.

use anchor_lang::prelude::*;

pub mod constants;
pub mod error;
pub mod instructions;
pub mod nft;
pub mod state;

#[cfg(not(target_os = "solana"))]
pub mod client;
#[cfg(feature = "test-runtime")]
pub mod testing;

pub use instructions::*;
use state::EventParams;

declare_id!("62FHXV1TAJMFgHtdrXZw5VEunnsi1USGvYRnkVr8ue4G");

#[program]
pub mod ticketing {
    use super::*;

    pub fn create_event(
        ctx: Context<CreateEvent>,
        event_id: u64,
        params: EventParams,
    ) -> Result<()> {
        create_event::handler(ctx, event_id, params)
    }

    pub fn update_event(ctx: Context<ManageEvent>, params: EventParams) -> Result<()> {
        update_event::handler(ctx, params)
    }

    pub fn cancel_event(ctx: Context<ManageEvent>) -> Result<()> {
        cancel_event::handler(ctx)
    }

    pub fn add_validator(ctx: Context<ManageEvent>, validator: Pubkey) -> Result<()> {
        add_validator::handler(ctx, validator)
    }

    pub fn remove_validator(ctx: Context<ManageEvent>, validator: Pubkey) -> Result<()> {
        remove_validator::handler(ctx, validator)
    }

    pub fn buy_ticket(ctx: Context<BuyTicket>, tier: u8, max_price: u64) -> Result<()> {
        buy_ticket::handler(ctx, tier, max_price)
    }

    pub fn mint_tickets<'info>(
        ctx: Context<'info, MintTickets<'info>>,
        tiers: Vec<u8>,
    ) -> Result<()> {
        mint_tickets::handler(ctx, tiers)
    }

    pub fn transfer_ticket(ctx: Context<TransferTicket>) -> Result<()> {
        transfer_ticket::handler(ctx)
    }

    pub fn open_email_transfer(
        ctx: Context<OpenEmailTransfer>,
        email_hash: [u8; 32],
        claim_key: Pubkey,
        expires_at: i64,
    ) -> Result<()> {
        open_email_transfer::handler(ctx, email_hash, claim_key, expires_at)
    }

    pub fn claim_email_transfer(ctx: Context<ClaimEmailTransfer>) -> Result<()> {
        claim_email_transfer::handler(ctx)
    }

    pub fn cancel_email_transfer(ctx: Context<CancelEmailTransfer>) -> Result<()> {
        cancel_email_transfer::handler(ctx)
    }

    pub fn expire_email_transfer(ctx: Context<ExpireEmailTransfer>) -> Result<()> {
        expire_email_transfer::handler(ctx)
    }

    pub fn freeze_ticket(ctx: Context<ManageTicket>) -> Result<()> {
        freeze_ticket::handler(ctx)
    }

    pub fn unfreeze_ticket(ctx: Context<ManageTicket>) -> Result<()> {
        unfreeze_ticket::handler(ctx)
    }

    pub fn revoke_ticket(ctx: Context<RevokeTicket>) -> Result<()> {
        revoke_ticket::handler(ctx)
    }

    pub fn validate_entries<'info>(
        ctx: Context<'info, ValidateEntries<'info>>,
        records: Vec<EntryRecord>,
    ) -> Result<()> {
        validate_entries::handler(ctx, records)
    }

    pub fn close_ticket(ctx: Context<CloseTicket>) -> Result<()> {
        close_ticket::handler(ctx)
    }

    pub fn withdraw_proceeds(ctx: Context<WithdrawProceeds>) -> Result<()> {
        withdraw_proceeds::handler(ctx)
    }

    pub fn close_event(ctx: Context<CloseEvent>) -> Result<()> {
        close_event::handler(ctx)
    }
}

#[cfg(all(test, feature = "idl-build"))]
mod idl_tests;
