//! Shared fixture for the program tests: a chain, an organizer with one event, wallets, and
//! readers for account state and token balances.

use anchor_lang::prelude::Pubkey;
use anchor_spl::compat::spl_token_metadata_interface::state::TokenMetadata;
use anchor_spl::token_2022::spl_token_2022::extension::{
    BaseStateWithExtensions, StateWithExtensions,
};
use anchor_spl::token_2022::spl_token_2022::state::{Account as TokenAccount, AccountState, Mint};
use solana_program_test::BanksClientError;
use solana_sdk::instruction::{Instruction, InstructionError};
use solana_sdk::signature::{Keypair, Signer};
use solana_sdk::transaction::TransactionError;
use ticketing::client::{
    self, Event, EventParams, Ticket, TicketAccounts, TierParams, TokenStandard,
};
use ticketing::error::TicketingError;
use ticketing::testing::Chain;

pub const SOL: u64 = 1_000_000_000;
/// The clock at the start of every test; the event starts a day later.
pub const NOW: i64 = 1_800_000_000;
pub const DAY: i64 = 86_400;
pub const STARTS_AT: i64 = NOW + DAY;
pub const ENDS_AT: i64 = NOW + DAY + 6 * 3600;
/// Both NFT standards, for the tests that run each flow in both.
pub const STANDARDS: [TokenStandard; 2] =
    [TokenStandard::SplToken, TokenStandard::Token2022Metadata];
pub const GENERAL: u8 = 0;
pub const VIP: u8 = 1;
pub const GENERAL_PRICE: u64 = SOL / 10;
pub const VIP_PRICE: u64 = SOL / 2;

pub fn event_params(treasury: &Pubkey, issuer: &Pubkey, minter: &Pubkey) -> EventParams {
    EventParams {
        name: "Harbour Lights".into(),
        venue: "Pier 4".into(),
        symbol: "HLT".into(),
        uri_base: "https://tickets.example/m/7/".into(),
        starts_at: STARTS_AT,
        ends_at: ENDS_AT,
        doors_open_at: STARTS_AT - 2 * 3600,
        doors_close_at: STARTS_AT + 4 * 3600,
        capacity: 5,
        tiers: vec![
            TierParams {
                name: "general".into(),
                price: GENERAL_PRICE,
                supply: 4,
            },
            TierParams {
                name: "vip".into(),
                price: VIP_PRICE,
                supply: 1,
            },
        ],
        issuer: *issuer,
        treasury: *treasury,
        minter: *minter,
        transferable: true,
        transfer_until: STARTS_AT,
        token_standard: TokenStandard::SplToken,
    }
}

/// A ticket's mint, read back from the chain.
#[derive(Debug)]
pub struct MintView {
    /// The token program that owns it.
    pub program: Pubkey,
    pub supply: u64,
    pub decimals: u8,
    pub has_mint_authority: bool,
    pub freeze_authority: Option<Pubkey>,
    /// The token metadata extension (Token-2022 standard only).
    pub metadata: Option<TokenMetadata>,
    pub size: usize,
}

pub struct Fixture {
    pub chain: Chain,
    pub organizer: Keypair,
    pub minter: Keypair,
    pub validator: Keypair,
    pub treasury: Pubkey,
    pub issuer: Pubkey,
    pub event: Pubkey,
    /// The event's NFT standard (SPL Token unless a test picks Token-2022 with metadata).
    pub standard: TokenStandard,
}

impl Fixture {
    /// A chain at `NOW` with one event (capacity 5: four general at 0.1 SOL, one VIP at
    /// 0.5 SOL), an authorized validator and a minter.
    pub async fn new() -> Self {
        Self::with(|_| {}).await
    }

    /// The same event with its tickets in `standard`.
    pub async fn of(standard: TokenStandard) -> Self {
        Self::with(|params| params.token_standard = standard).await
    }

    pub async fn with(adjust: impl FnOnce(&mut EventParams)) -> Self {
        let mut chain = Chain::start().await;
        chain.set_unix_time(NOW).await.unwrap();
        let organizer = chain.wallet(10 * SOL).await.unwrap();
        let minter = chain.wallet(10 * SOL).await.unwrap();
        let validator = chain.wallet(SOL).await.unwrap();
        let treasury = Keypair::new().pubkey();
        let issuer = Keypair::new().pubkey();
        let event_id = 7;
        let mut params = event_params(&treasury, &issuer, &minter.pubkey());
        adjust(&mut params);
        let standard = params.token_standard;
        chain
            .send(
                &[client::create_event(&organizer.pubkey(), event_id, params)],
                &[&organizer],
            )
            .await
            .unwrap();
        let event = client::event_address(&organizer.pubkey(), event_id).0;
        chain
            .send(
                &[client::add_validator(
                    &organizer.pubkey(),
                    &event,
                    &validator.pubkey(),
                )],
                &[&organizer],
            )
            .await
            .unwrap();
        Self {
            chain,
            organizer,
            minter,
            validator,
            treasury,
            issuer,
            event,
            standard,
        }
    }

    pub async fn send(
        &mut self,
        instructions: &[Instruction],
        signers: &[&Keypair],
    ) -> Result<(), BanksClientError> {
        self.chain.send(instructions, signers).await
    }

    pub async fn event_state(&mut self) -> Event {
        let data = self.chain.data(&self.event).await.unwrap().expect("event");
        client::decode_event(&data).unwrap()
    }

    pub async fn ticket_state(&mut self, ticket_id: u32) -> Ticket {
        let address = TicketAccounts::derive(&self.event, ticket_id).ticket;
        let data = self.chain.data(&address).await.unwrap().expect("ticket");
        client::decode_ticket(&data).unwrap()
    }

    pub async fn exists(&mut self, address: &Pubkey) -> bool {
        self.chain.data(address).await.unwrap().is_some()
    }

    /// A wallet that buys tickets.
    pub async fn buyer(&mut self) -> Keypair {
        self.chain.wallet(5 * SOL).await.unwrap()
    }

    pub async fn buy(&mut self, buyer: &Keypair, tier: u8) -> Result<u32, BanksClientError> {
        let next = self.event_state().await.minted;
        self.chain
            .send(
                &[client::buy_ticket(
                    &buyer.pubkey(),
                    &self.event,
                    next,
                    tier,
                    u64::MAX,
                    self.standard,
                )],
                &[buyer],
            )
            .await?;
        Ok(next)
    }

    /// Mints one general ticket for `owner` by the minter (card payment) and returns its id.
    pub async fn issue(&mut self, owner: &Pubkey) -> u32 {
        let next = self.event_state().await.minted;
        let minter = self.minter.insecure_clone();
        self.send(
            &[client::mint_tickets(
                &minter.pubkey(),
                &self.event,
                next,
                &[(*owner, GENERAL)],
                self.standard,
            )],
            &[&minter],
        )
        .await
        .unwrap();
        next
    }

    /// (amount, frozen) of `owner`'s token account for the ticket, `None` if it does not exist.
    pub async fn holding(&mut self, ticket_id: u32, owner: &Pubkey) -> Option<(u64, bool)> {
        let accounts = TicketAccounts::derive(&self.event, ticket_id);
        let data = self
            .chain
            .data(&accounts.token_account(owner, self.standard))
            .await
            .unwrap()?;
        let state = StateWithExtensions::<TokenAccount>::unpack(&data).unwrap();
        Some((state.base.amount, state.base.state == AccountState::Frozen))
    }

    /// The ticket's mint as its token program left it.
    pub async fn mint_state(&mut self, ticket_id: u32) -> MintView {
        let accounts = TicketAccounts::derive(&self.event, ticket_id);
        let account = self
            .chain
            .context
            .banks_client
            .get_account(accounts.mint)
            .await
            .unwrap()
            .expect("mint");
        let state = StateWithExtensions::<Mint>::unpack(&account.data).unwrap();
        MintView {
            program: account.owner,
            supply: state.base.supply,
            decimals: state.base.decimals,
            has_mint_authority: state.base.mint_authority.is_some(),
            freeze_authority: Option::<Pubkey>::from(state.base.freeze_authority),
            metadata: state.get_variable_len_extension::<TokenMetadata>().ok(),
            size: account.data.len(),
        }
    }

    pub async fn set_time(&mut self, unix_timestamp: i64) {
        self.chain.set_unix_time(unix_timestamp).await.unwrap();
    }
}

fn instruction_error(result: Result<(), BanksClientError>) -> InstructionError {
    match result {
        Err(BanksClientError::TransactionError(TransactionError::InstructionError(_, error))) => {
            error
        }
        Err(BanksClientError::SimulationError {
            err: TransactionError::InstructionError(_, error),
            ..
        }) => error,
        other => panic!("expected an instruction error, got {other:?}"),
    }
}

/// Asserts that the transaction failed with this program error.
pub fn assert_refused(result: Result<(), BanksClientError>, expected: TicketingError) {
    let code: u32 = expected.into();
    assert_eq!(
        instruction_error(result),
        InstructionError::Custom(code),
        "expected {expected:?}"
    );
}

/// Asserts that the transaction failed with one of Anchor's own errors (constraints, accounts).
pub fn assert_anchor_refused(
    result: Result<(), BanksClientError>,
    expected: anchor_lang::error::ErrorCode,
) {
    let code: u32 = expected.into();
    assert_eq!(
        instruction_error(result),
        InstructionError::Custom(code),
        "expected {expected:?}"
    );
}
