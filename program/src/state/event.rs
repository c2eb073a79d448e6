use anchor_lang::prelude::*;

use crate::constants::*;
use crate::error::TicketingError;

/// An event: schedule, capacity, tiers, the keys gates and the replay worker trust, and the
/// SOL proceeds of tickets bought on chain (held as lamports of this account above its rent).
#[account]
#[derive(InitSpace, Debug, PartialEq, Eq)]
pub struct Event {
    pub organizer: Pubkey,
    /// Chosen by the server; part of the PDA seeds.
    pub event_id: u64,
    pub bump: u8,
    pub status: EventStatus,
    #[max_len(MAX_EVENT_NAME_LEN)]
    pub name: String,
    #[max_len(MAX_VENUE_LEN)]
    pub venue: String,
    /// NFT symbol shown by wallets.
    #[max_len(MAX_SYMBOL_LEN)]
    pub symbol: String,
    /// Each ticket's metadata URI is this prefix followed by the ticket id.
    #[max_len(MAX_URI_BASE_LEN)]
    pub uri_base: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub doors_open_at: i64,
    pub doors_close_at: i64,
    /// Tickets that may ever be minted; `minted` never exceeds it.
    pub capacity: u32,
    /// Tickets minted so far; also the next ticket id.
    pub minted: u32,
    /// Ticket accounts minted and not yet closed.
    pub open_tickets: u32,
    #[max_len(MAX_TIERS)]
    pub tiers: Vec<Tier>,
    /// ed25519 key that signs the QR credentials; gates verify with it offline.
    pub issuer: Pubkey,
    /// Wallet that receives the proceeds on withdrawal.
    pub treasury: Pubkey,
    /// Key allowed to mint tickets paid off chain (besides the organizer).
    pub minter: Pubkey,
    /// Keys allowed to record entries.
    #[max_len(MAX_VALIDATORS)]
    pub validators: Vec<Pubkey>,
    pub transferable: bool,
    /// Transfers are refused from this time on (unix seconds).
    pub transfer_until: i64,
    /// Lamports paid for tickets on chain, minus refunds and withdrawals.
    pub proceeds: u64,
    /// Which token program the tickets' NFTs live in; fixed once a ticket is minted.
    pub token_standard: TokenStandard,
}

/// The NFT a ticket comes with. Both are real NFTs (0 decimals, supply 1, frozen, moved only by
/// the program); they differ in cost and in what a wallet shows.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, PartialEq, Eq, Debug, InitSpace)]
pub enum TokenStandard {
    /// SPL Token: an 82-byte mint. About 4.92 M lamports (0.0049 SOL) per ticket with its
    /// state account, under the 0.005 SOL goal; wallets list the token without a name
    /// (there is no on-chain metadata; the server's API and emails show the ticket).
    SplToken,
    /// Token-2022 with the metadata pointer and token metadata extensions, so wallets show the
    /// ticket's name, symbol and URI. About 6.99 M lamports (0.0070 SOL) per ticket.
    Token2022Metadata,
}

impl TokenStandard {
    /// Tickets one `mint_tickets` instruction may issue for an event of this standard.
    pub fn max_mint_batch(self) -> usize {
        match self {
            Self::SplToken => MAX_MINT_BATCH_SPL_TOKEN,
            Self::Token2022Metadata => MAX_MINT_BATCH_TOKEN_2022,
        }
    }

    /// The token program that owns the mints of this standard.
    pub fn program_id(self) -> Pubkey {
        match self {
            Self::SplToken => anchor_spl::token::ID,
            Self::Token2022Metadata => anchor_spl::token_2022::ID,
        }
    }
}

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, PartialEq, Eq, Debug, InitSpace)]
pub enum EventStatus {
    Active,
    Cancelled,
}

#[derive(AnchorSerialize, AnchorDeserialize, Clone, PartialEq, Eq, Debug, InitSpace)]
pub struct Tier {
    #[max_len(MAX_TIER_NAME_LEN)]
    pub name: String,
    /// Price in lamports when bought on chain.
    pub price: u64,
    pub supply: u32,
    pub sold: u32,
}

/// What the organizer sets at creation and may change with `update_event`.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, PartialEq, Eq, Debug)]
pub struct EventParams {
    pub name: String,
    pub venue: String,
    pub symbol: String,
    pub uri_base: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub doors_open_at: i64,
    pub doors_close_at: i64,
    pub capacity: u32,
    pub tiers: Vec<TierParams>,
    pub issuer: Pubkey,
    pub treasury: Pubkey,
    pub minter: Pubkey,
    pub transferable: bool,
    pub transfer_until: i64,
    /// Chosen at creation; may change only while no ticket is minted.
    pub token_standard: TokenStandard,
}

#[derive(AnchorSerialize, AnchorDeserialize, Clone, PartialEq, Eq, Debug)]
pub struct TierParams {
    pub name: String,
    pub price: u64,
    pub supply: u32,
}

impl Event {
    pub const SPACE: usize = 8 + Self::INIT_SPACE;

    pub fn is_cancelled(&self) -> bool {
        self.status == EventStatus::Cancelled
    }

    pub fn has_ended(&self, now: i64) -> bool {
        now >= self.ends_at
    }

    pub fn may_mint(&self, key: &Pubkey) -> bool {
        *key == self.organizer || *key == self.minter
    }

    pub fn is_validator(&self, key: &Pubkey) -> bool {
        self.validators.contains(key)
    }

    /// The token program of this event's ticket NFTs.
    pub fn token_program(&self) -> Pubkey {
        self.token_standard.program_id()
    }

    pub fn transfers_open(&self, now: i64) -> bool {
        self.transferable && now < self.transfer_until
    }

    /// Validates `params` against the limits and the tickets already sold, then applies them.
    pub fn apply_params(&mut self, params: EventParams) -> Result<()> {
        require!(
            params.name.len() <= MAX_EVENT_NAME_LEN
                && params.venue.len() <= MAX_VENUE_LEN
                && params.symbol.len() <= MAX_SYMBOL_LEN
                && params.uri_base.len() <= MAX_URI_BASE_LEN
                && params
                    .tiers
                    .iter()
                    .all(|t| t.name.len() <= MAX_TIER_NAME_LEN),
            TicketingError::TextTooLong
        );
        require!(
            !params.tiers.is_empty() && params.tiers.len() <= MAX_TIERS,
            TicketingError::InvalidTierCount
        );
        require!(
            params.starts_at < params.ends_at && params.doors_open_at < params.doors_close_at,
            TicketingError::InvalidSchedule
        );
        require!(
            params.capacity > 0 && params.capacity >= self.minted,
            TicketingError::InvalidCapacity
        );
        require!(
            self.minted == 0 || params.token_standard == self.token_standard,
            TicketingError::TokenStandardLocked
        );
        // Tiers keep their index (tickets refer to it); a tier with sales cannot be removed
        // nor shrunk below what it sold.
        for (index, old) in self.tiers.iter().enumerate() {
            let supply = params.tiers.get(index).map_or(0, |t| t.supply);
            require!(supply >= old.sold, TicketingError::InvalidTierSupply);
        }
        let tiers = params
            .tiers
            .into_iter()
            .enumerate()
            .map(|(index, t)| Tier {
                name: t.name,
                price: t.price,
                supply: t.supply,
                sold: self.tiers.get(index).map_or(0, |old| old.sold),
            })
            .collect();

        self.name = params.name;
        self.venue = params.venue;
        self.symbol = params.symbol;
        self.uri_base = params.uri_base;
        self.starts_at = params.starts_at;
        self.ends_at = params.ends_at;
        self.doors_open_at = params.doors_open_at;
        self.doors_close_at = params.doors_close_at;
        self.capacity = params.capacity;
        self.tiers = tiers;
        self.issuer = params.issuer;
        self.treasury = params.treasury;
        self.minter = params.minter;
        self.transferable = params.transferable;
        self.transfer_until = params.transfer_until;
        self.token_standard = params.token_standard;
        Ok(())
    }

    /// Takes the next ticket id and one unit of inventory in `tier`, refusing when the event
    /// or the tier is sold out. Returns (ticket id, tier price).
    pub fn reserve_ticket(&mut self, tier: u8) -> Result<(u32, u64)> {
        require!(self.minted < self.capacity, TicketingError::SoldOut);
        let entry = self
            .tiers
            .get_mut(usize::from(tier))
            .ok_or(TicketingError::UnknownTier)?;
        require!(entry.sold < entry.supply, TicketingError::TierSoldOut);
        entry.sold = entry.sold.checked_add(1).ok_or(TicketingError::Overflow)?;
        let price = entry.price;
        let ticket_id = self.minted;
        self.minted = self.minted.checked_add(1).ok_or(TicketingError::Overflow)?;
        self.open_tickets = self
            .open_tickets
            .checked_add(1)
            .ok_or(TicketingError::Overflow)?;
        Ok((ticket_id, price))
    }

    /// The event PDA signs as mint, freeze and delegate authority of its tickets.
    pub fn signer(&self) -> EventSigner {
        EventSigner {
            organizer: self.organizer,
            event_id: self.event_id.to_le_bytes(),
            bump: [self.bump],
        }
    }
}

/// Owned copy of the event PDA's seeds, so the event account can be mutated while signing.
#[derive(Clone, Copy, Debug)]
pub struct EventSigner {
    organizer: Pubkey,
    event_id: [u8; 8],
    bump: [u8; 1],
}

impl EventSigner {
    pub fn seeds(&self) -> [&[u8]; 4] {
        [
            EVENT_SEED,
            self.organizer.as_ref(),
            &self.event_id,
            &self.bump,
        ]
    }
}
