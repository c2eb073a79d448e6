use anchor_lang::prelude::*;

use crate::constants::TICKET_SEED;

/// One ticket: who holds it, whether it may be used, and what the gates recorded.
/// The NFT mint at `[MINT_SEED, ticket]` is the wallet-visible half.
///
/// The account does not store its event: its address, `[TICKET_SEED, event, ticket_id]`,
/// already binds it to one ([`Ticket::belongs_to`]). That keeps it at 77 bytes, which is part
/// of what keeps a ticket under 0.005 SOL.
#[account]
#[derive(InitSpace, Debug, PartialEq, Eq)]
pub struct Ticket {
    pub owner: Pubkey,
    pub ticket_id: u32,
    pub tier: u8,
    /// +1 on every change of owner; credentials carry it so an old owner's QR is refused.
    pub generation: u32,
    pub status: TicketStatus,
    /// Entered at least once.
    pub entered: bool,
    /// Inside after the last scan the sync server folded.
    pub inside: bool,
    pub entry_count: u16,
    /// Gate and time (unix milliseconds) of the last scan folded.
    pub last_gate: u16,
    pub last_scan_at_ms: i64,
    /// How many distinct scans the applied record folded. A record is applied only if it
    /// folded more, which is what makes replays idempotent and arrival order irrelevant:
    /// the server's set of scans only grows, so a fuller fold always supersedes.
    pub scans_applied: u16,
    /// Lamports paid on chain (refunded on revoke); 0 when paid off chain.
    pub paid: u64,
    /// An email transfer is open; direct transfers wait until it is claimed, cancelled or expired.
    pub transfer_pending: bool,
    pub bump: u8,
    pub mint_bump: u8,
}

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, PartialEq, Eq, Debug, InitSpace)]
pub enum TicketStatus {
    Active,
    /// Security hold by the organizer; reversible.
    Frozen,
    /// Invalidated without an on-chain refund (paid off chain).
    Revoked,
    /// Invalidated and the on-chain price returned to the holder.
    Refunded,
}

impl Ticket {
    pub const SPACE: usize = 8 + Self::INIT_SPACE;

    /// Whether `address` is this ticket's PDA under `event`, that is whether the ticket
    /// belongs to that event (re-derived from the stored id and bump).
    pub fn belongs_to(&self, address: &Pubkey, event: &Pubkey) -> bool {
        Pubkey::create_program_address(
            &[
                TICKET_SEED,
                event.as_ref(),
                &self.ticket_id.to_le_bytes(),
                &[self.bump],
            ],
            &crate::ID,
        )
        .is_ok_and(|derived| derived == *address)
    }
}
