//! PDA seeds and fixed limits. Clients derive addresses through [`crate::client`], never by
//! copying these seeds.

/// Event account: `[EVENT_SEED, organizer, event_id (u64 LE)]`.
pub const EVENT_SEED: &[u8] = b"event";
/// Ticket state: `[TICKET_SEED, event, ticket_id (u32 LE)]`.
pub const TICKET_SEED: &[u8] = b"ticket";
/// The ticket's NFT mint: `[MINT_SEED, ticket]`.
pub const MINT_SEED: &[u8] = b"mint";
/// An open email (delegate) transfer: `[DELEGATION_SEED, ticket]`.
pub const DELEGATION_SEED: &[u8] = b"delegate";

/// Tiers per event ("general", "vip", ...).
pub const MAX_TIERS: usize = 4;
/// Keys allowed to record entries for one event (the sync server's replay keys).
pub const MAX_VALIDATORS: usize = 4;

pub const MAX_EVENT_NAME_LEN: usize = 32;
pub const MAX_VENUE_LEN: usize = 32;
pub const MAX_SYMBOL_LEN: usize = 10;
/// Prefix of each ticket's metadata URI; the ticket id is appended.
pub const MAX_URI_BASE_LEN: usize = 96;
pub const MAX_TIER_NAME_LEN: usize = 16;

/// Records accepted by one `validate_entries` call. A legacy transaction fits fewer
/// (each record needs its ticket account in the message); the bound keeps a malformed
/// instruction from asking for an unbounded loop.
pub const MAX_ENTRY_RECORDS: usize = 64;
/// How far ahead of the cluster clock an entry record may be (seconds). A record from a gate
/// whose clock runs ahead is skipped instead of applied: applied, it would make every later
/// genuine record of that ticket look stale.
pub const MAX_SCAN_CLOCK_SKEW: i64 = 300;
/// Tickets issued by one `mint_tickets` call on an SPL Token event: what the runtime's 64-entry
/// instruction trace allows, each ticket taking 11 entries (two account creations, mint
/// initialization, the associated token account and its own CPIs, mint, freeze, authority
/// removal). Six would fit the 1,232-byte packet.
pub const MAX_MINT_BATCH_SPL_TOKEN: usize = 5;
/// The same for a Token-2022 event: the metadata pointer and token metadata set-up take about
/// four more entries per ticket.
pub const MAX_MINT_BATCH_TOKEN_2022: usize = 4;
