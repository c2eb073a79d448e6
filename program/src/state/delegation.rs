use anchor_lang::prelude::*;

/// An open email transfer of one ticket. The claim must be signed by `claim_key`, a one-time
/// keypair whose secret travels only in the email link: the chain never sees anything an
/// observer could replay, and the signature binds the recipient chosen by the claimer.
#[account]
#[derive(InitSpace, Debug, PartialEq, Eq)]
pub struct Delegation {
    pub ticket: Pubkey,
    /// Owner who opened it; receives the rent back when it closes.
    pub owner: Pubkey,
    /// sha256 of the normalized recipient email, for the server to match; never checked here.
    pub email_hash: [u8; 32],
    pub claim_key: Pubkey,
    pub expires_at: i64,
    /// Ticket generation when opened; a claim after any other change of owner is refused.
    pub generation: u32,
    pub bump: u8,
}

impl Delegation {
    pub const SPACE: usize = 8 + Self::INIT_SPACE;
}
