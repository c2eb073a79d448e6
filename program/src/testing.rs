//! The program registered natively in solana-program-test's in-process runtime, with the SPL
//! Token, Token-2022 and associated token programs that runtime bundles. Used by this crate's
//! tests and cost report, and by the sync server as its embedded chain.

use std::collections::HashSet;

use anchor_lang::prelude::{AccountInfo, Pubkey};
use anchor_lang::solana_program::entrypoint::ProgramResult;
use anchor_lang::solana_program::system_instruction;
use solana_program_test::{BanksClientError, ProgramTest, ProgramTestContext, processor};
use solana_sdk::clock::Clock;
use solana_sdk::instruction::Instruction;
use solana_sdk::signature::{Keypair, Signature, Signer};
use solana_sdk::transaction::Transaction;

/// A `ProgramTest` with this program registered as a native builtin (never the SBF build).
pub fn program_test() -> ProgramTest {
    let mut program_test = ProgramTest::default();
    program_test.prefer_bpf(false);
    program_test.add_program("ticketing", crate::ID, processor!(native_entry));
    program_test
}

/// Adapts the runtime's entry signature to Anchor's, which ties the account list, the program
/// id and the data to one lifetime. The runtime lends them for the call only, so the copies are
/// leaked: a few hundred bytes per instruction, fine for tests and a demo chain, and one more
/// reason production runs the SBF build.
fn native_entry(program_id: &Pubkey, accounts: &[AccountInfo], data: &[u8]) -> ProgramResult {
    let accounts: &[AccountInfo] = Box::leak(accounts.to_vec().into_boxed_slice());
    let program_id: &Pubkey = Box::leak(Box::new(*program_id));
    let data: &[u8] = Box::leak(data.to_vec().into_boxed_slice());
    crate::entry(program_id, accounts, data)
}

/// A started in-process chain with the program, plus the few operations every caller needs.
pub struct Chain {
    pub context: ProgramTestContext,
    /// Signatures already submitted: the runtime answers a resubmitted identical transaction
    /// with the first one's result, so a repeat is re-signed on a newer blockhash instead.
    sent: HashSet<Signature>,
}

impl Chain {
    pub async fn start() -> Self {
        Self {
            context: program_test().start_with_context().await,
            sent: HashSet::new(),
        }
    }

    /// The genesis-funded key that pays fees unless a caller chooses another payer.
    pub fn payer(&self) -> &Keypair {
        &self.context.payer
    }

    /// Signs `instructions` with the chain's payer and `signers`, sends, and waits for the result.
    pub async fn send(
        &mut self,
        instructions: &[Instruction],
        signers: &[&Keypair],
    ) -> Result<(), BanksClientError> {
        let transaction = self.transaction(instructions, signers).await?;
        self.context
            .banks_client
            .process_transaction(transaction)
            .await
    }

    /// Like `send`, with `payer` paying the fee.
    pub async fn send_from(
        &mut self,
        payer: &Keypair,
        instructions: &[Instruction],
        signers: &[&Keypair],
    ) -> Result<(), BanksClientError> {
        let transaction = self.transaction_from(payer, instructions, signers).await?;
        self.context
            .banks_client
            .process_transaction(transaction)
            .await
    }

    /// The signed legacy transaction `send` would submit.
    pub async fn transaction(
        &mut self,
        instructions: &[Instruction],
        signers: &[&Keypair],
    ) -> Result<Transaction, BanksClientError> {
        let payer = self.context.payer.insecure_clone();
        self.transaction_from(&payer, instructions, signers).await
    }

    /// A signed legacy transaction with `payer` paying the fee.
    pub async fn transaction_from(
        &mut self,
        payer: &Keypair,
        instructions: &[Instruction],
        signers: &[&Keypair],
    ) -> Result<Transaction, BanksClientError> {
        let mut all: Vec<&Keypair> = vec![payer];
        all.extend(
            signers
                .iter()
                .copied()
                .filter(|k| k.pubkey() != payer.pubkey()),
        );
        let mut blockhash = self.context.banks_client.get_latest_blockhash().await?;
        loop {
            let transaction = Transaction::new_signed_with_payer(
                instructions,
                Some(&payer.pubkey()),
                &all,
                blockhash,
            );
            if self.sent.insert(transaction.signatures[0]) {
                return Ok(transaction);
            }
            blockhash = self.context.get_new_latest_blockhash().await?;
        }
    }

    pub async fn fund(&mut self, to: &Pubkey, lamports: u64) -> Result<(), BanksClientError> {
        let from = self.context.payer.pubkey();
        self.send(&[system_instruction::transfer(&from, to, lamports)], &[])
            .await
    }

    /// A new keypair holding `lamports`.
    pub async fn wallet(&mut self, lamports: u64) -> Result<Keypair, BanksClientError> {
        let wallet = Keypair::new();
        self.fund(&wallet.pubkey(), lamports).await?;
        Ok(wallet)
    }

    pub async fn balance(&mut self, address: &Pubkey) -> Result<u64, BanksClientError> {
        self.context.banks_client.get_balance(*address).await
    }

    /// The account's data, or `None` when it does not exist.
    pub async fn data(&mut self, address: &Pubkey) -> Result<Option<Vec<u8>>, BanksClientError> {
        Ok(self
            .context
            .banks_client
            .get_account(*address)
            .await?
            .map(|account| account.data))
    }

    pub async fn unix_time(&mut self) -> Result<i64, BanksClientError> {
        let clock: Clock = self.context.banks_client.get_sysvar().await?;
        Ok(clock.unix_timestamp)
    }

    /// Sets the cluster clock; the program reads time only from it.
    pub async fn set_unix_time(&mut self, unix_timestamp: i64) -> Result<(), BanksClientError> {
        let mut clock: Clock = self.context.banks_client.get_sysvar().await?;
        clock.unix_timestamp = unix_timestamp;
        self.context.set_sysvar(&clock);
        Ok(())
    }
}

/// Bytes the transaction takes on the wire (the limit is 1,232).
pub fn wire_size(transaction: &Transaction) -> usize {
    // Signature count (compact-u16, one byte below 128) + signatures + message.
    1 + 64 * transaction.signatures.len() + transaction.message.serialize().len()
}
