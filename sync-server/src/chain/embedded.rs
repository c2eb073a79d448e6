//! The embedded chain: the real ticketing program (with the SPL Token,
//! Token-2022 and associated token programs) in solana-program-test's
//! in-process bank, made durable.
//!
//! The bank itself lives in memory. After every transaction, every account
//! the transaction named is written to a SQLite file (WAL, `synchronous =
//! FULL`) together with the transaction's outcome, in one SQLite transaction,
//! before [`Chain::submit`] returns. On start the bank is rebuilt with those
//! accounts. So what the server was told is on chain stays on chain across a
//! restart or a crash, and a crash before the write means the transaction
//! never happened, which is what the replay worker assumes of any transaction
//! it has no outcome for.
//!
//! Blockhashes, slots and the clock restart with the bank; the clock is set
//! to the wall clock before each transaction, as a cluster's would be.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use solana_program_test::{BanksClientError, ProgramTestContext};
use solana_sdk::account::Account;
use solana_sdk::clock::Clock;
use solana_sdk::hash::Hash;
use solana_sdk::message::Message;
use solana_sdk::pubkey::Pubkey;
use solana_sdk::signature::{Signature, Signer};
use solana_sdk::transaction::{Transaction, TransactionError};
use tokio::sync::Mutex;

use super::{Chain, ChainError, TxStatus};

/// Where the embedded chain keeps its accounts, and its bank.
pub struct EmbeddedChain {
    path: PathBuf,
    inner: Mutex<Inner>,
}

struct Inner {
    context: ProgramTestContext,
    db: Connection,
    /// Outcomes of this run's transactions (older ones are read from `db`).
    statuses: HashMap<Signature, TxStatus>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS accounts (
    address    BLOB PRIMARY KEY,
    lamports   INTEGER NOT NULL,
    owner      BLOB    NOT NULL,
    executable INTEGER NOT NULL,
    rent_epoch INTEGER NOT NULL,
    data       BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS transactions (
    signature BLOB PRIMARY KEY,
    slot      INTEGER NOT NULL,
    error     TEXT
);
";

fn unavailable(e: impl std::fmt::Display) -> ChainError {
    ChainError::Unavailable(e.to_string())
}

fn store_error(e: rusqlite::Error) -> ChainError {
    ChainError::Unavailable(format!("embedded chain store: {e}"))
}

fn banks_error(e: BanksClientError) -> ChainError {
    ChainError::Unavailable(format!("embedded chain: {e}"))
}

/// u64 values stored bit for bit in SQLite's signed integers.
fn to_sql(value: u64) -> i64 {
    i64::from_ne_bytes(value.to_ne_bytes())
}

fn from_sql(value: i64) -> u64 {
    u64::from_ne_bytes(value.to_ne_bytes())
}

fn wall_clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// Accounts not worth keeping: programs and sysvars come with every bank.
fn is_builtin(address: &Pubkey, account: &Account) -> bool {
    account.executable
        || solana_sdk::sysvar::check_id(&account.owner)
        || solana_sdk::sysvar::check_id(address)
        || *address == ticketing::ID
}

impl EmbeddedChain {
    /// Opens (or creates) the chain kept in `path` and starts its bank with
    /// every account saved there. Must run inside a tokio runtime, which the
    /// bank's clock task uses for as long as the chain lives.
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let db = Connection::open(path)
            .with_context(|| format!("cannot open the chain file {}", path.display()))?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "FULL")?;
        db.execute_batch(SCHEMA)
            .with_context(|| format!("{} is not a chain file", path.display()))?;

        let mut program_test = ticketing::testing::program_test();
        let mut loaded = 0usize;
        {
            let mut statement = db.prepare(
                "SELECT address, lamports, owner, executable, rent_epoch, data FROM accounts",
            )?;
            let rows = statement.query_map([], |row| {
                let address: Vec<u8> = row.get(0)?;
                let owner: Vec<u8> = row.get(2)?;
                Ok((
                    address,
                    Account {
                        lamports: from_sql(row.get(1)?),
                        owner: Pubkey::try_from(owner.as_slice()).unwrap_or_default(),
                        executable: row.get::<_, i64>(3)? != 0,
                        rent_epoch: from_sql(row.get(4)?),
                        data: row.get(5)?,
                    },
                ))
            })?;
            for row in rows {
                let (address, account) = row?;
                let address = Pubkey::try_from(address.as_slice()).map_err(|_| {
                    anyhow::anyhow!("{}: an account address is not 32 bytes", path.display())
                })?;
                program_test.add_account(address, account);
                loaded += 1;
            }
        }
        let context = program_test.start_with_context().await;
        tracing::info!(path = %path.display(), accounts = loaded, "embedded chain started");
        let chain = Self {
            path: path.to_owned(),
            inner: Mutex::new(Inner {
                context,
                db,
                statuses: HashMap::new(),
            }),
        };
        chain.inner.lock().await.follow_wall_clock().await?;
        Ok(chain)
    }
}

impl Inner {
    /// Moves the bank's clock up to the wall clock (never back).
    async fn follow_wall_clock(&mut self) -> Result<(), ChainError> {
        let mut clock: Clock = self
            .context
            .banks_client
            .get_sysvar()
            .await
            .map_err(banks_error)?;
        let now = wall_clock();
        if now > clock.unix_timestamp {
            clock.unix_timestamp = now;
            self.context.set_sysvar(&clock);
        }
        Ok(())
    }

    /// Moves the bank's clock `seconds` ahead of where it is.
    async fn advance_clock(&mut self, seconds: i64) -> Result<i64, ChainError> {
        self.follow_wall_clock().await?;
        let mut clock: Clock = self
            .context
            .banks_client
            .get_sysvar()
            .await
            .map_err(banks_error)?;
        clock.unix_timestamp = clock.unix_timestamp.saturating_add(seconds.max(0));
        self.context.set_sysvar(&clock);
        Ok(clock.unix_timestamp)
    }

    fn saved_status(&self, signature: &Signature) -> Result<Option<TxStatus>, ChainError> {
        if let Some(status) = self.statuses.get(signature) {
            return Ok(Some(status.clone()));
        }
        self.db
            .query_row(
                "SELECT slot, error FROM transactions WHERE signature = ?1",
                params![signature.as_ref()],
                |row| {
                    let slot = from_sql(row.get(0)?);
                    Ok(match row.get::<_, Option<String>>(1)? {
                        None => TxStatus::Confirmed { slot },
                        Some(error) => TxStatus::Failed { slot, error },
                    })
                },
            )
            .optional()
            .map_err(store_error)
    }

    /// Writes every account `transaction` names, and its outcome, in one
    /// durable SQLite transaction.
    async fn persist(
        &mut self,
        transaction: &Transaction,
        status: &TxStatus,
    ) -> Result<(), ChainError> {
        let faucet = self.context.payer.pubkey();
        let mut accounts = Vec::new();
        for address in &transaction.message.account_keys {
            if *address == faucet {
                continue;
            }
            let account = self
                .context
                .banks_client
                .get_account(*address)
                .await
                .map_err(banks_error)?;
            match account {
                Some(account) if is_builtin(address, &account) => {}
                other => accounts.push((*address, other)),
            }
        }
        let (slot, error) = match status {
            TxStatus::Confirmed { slot } => (*slot, None),
            TxStatus::Failed { slot, error } => (*slot, Some(error.clone())),
            TxStatus::Unknown => return Ok(()),
        };
        let tx = self.db.transaction().map_err(store_error)?;
        for (address, account) in &accounts {
            match account {
                Some(account) => tx.execute(
                    "INSERT INTO accounts (address, lamports, owner, executable, rent_epoch, data)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (address) DO UPDATE SET lamports = excluded.lamports,
                         owner = excluded.owner, executable = excluded.executable,
                         rent_epoch = excluded.rent_epoch, data = excluded.data",
                    params![
                        address.as_ref(),
                        to_sql(account.lamports),
                        account.owner.as_ref(),
                        i64::from(account.executable),
                        to_sql(account.rent_epoch),
                        account.data,
                    ],
                ),
                None => tx.execute(
                    "DELETE FROM accounts WHERE address = ?1",
                    params![address.as_ref()],
                ),
            }
            .map_err(store_error)?;
        }
        tx.execute(
            "INSERT OR REPLACE INTO transactions (signature, slot, error) VALUES (?1, ?2, ?3)",
            params![transaction.signatures[0].as_ref(), to_sql(slot), error],
        )
        .map_err(store_error)?;
        tx.commit().map_err(store_error)
    }

    async fn process(&mut self, transaction: &Transaction) -> Result<Signature, ChainError> {
        let signature = *transaction
            .signatures
            .first()
            .ok_or_else(|| ChainError::Refused("the transaction is not signed".into()))?;
        if self.saved_status(&signature)?.is_some() {
            // The same signed transaction again: a cluster would not run it twice.
            return Ok(signature);
        }
        transaction
            .verify()
            .map_err(|e| ChainError::Refused(format!("signature verification failed: {e}")))?;
        self.follow_wall_clock().await?;
        let outcome = self
            .context
            .banks_client
            .process_transaction_with_metadata(transaction.clone())
            .await
            .map_err(banks_error)?;
        let slot = self
            .context
            .banks_client
            .get_root_slot()
            .await
            .map_err(banks_error)?;
        let status = match outcome.result {
            Ok(()) => TxStatus::Confirmed { slot },
            Err(TransactionError::BlockhashNotFound) => return Err(ChainError::BlockhashExpired),
            // Executed and failed: the fee was charged, as on a cluster.
            Err(error @ TransactionError::InstructionError(..)) => TxStatus::Failed {
                slot,
                error: error.to_string(),
            },
            // Refused before execution (fees, signatures, account locks): a
            // cluster's preflight check would refuse it the same way.
            Err(error) => return Err(ChainError::Refused(error.to_string())),
        };
        self.persist(transaction, &status).await?;
        self.statuses.insert(signature, status);
        Ok(signature)
    }
}

impl EmbeddedChain {
    /// Moves the chain's clock `seconds` into the future and returns the new
    /// time, as a test validator's warp would: for testing deadlines the
    /// program judges on chain time (an email transfer's expiry) without
    /// waiting for them. The clock still follows the wall clock, so it stays
    /// ahead until the wall clock catches up, and a restart resets it.
    pub async fn advance_clock(&self, seconds: i64) -> Result<i64, ChainError> {
        self.inner.lock().await.advance_clock(seconds).await
    }
}

#[async_trait]
impl Chain for EmbeddedChain {
    fn describe(&self) -> String {
        format!("embedded ({})", self.path.display())
    }

    async fn latest_blockhash(&self) -> Result<Hash, ChainError> {
        let inner = self.inner.lock().await;
        inner
            .context
            .banks_client
            .get_latest_blockhash()
            .await
            .map_err(banks_error)
    }

    async fn is_blockhash_valid(&self, blockhash: &Hash) -> Result<bool, ChainError> {
        let inner = self.inner.lock().await;
        let payer = inner.context.payer.pubkey();
        // The bank prices a message only while its blockhash is in the recent queue.
        let probe = Message::new_with_blockhash(
            &[anchor_lang::solana_program::system_instruction::transfer(
                &payer, &payer, 0,
            )],
            Some(&payer),
            blockhash,
        );
        let fee = inner
            .context
            .banks_client
            .get_fee_for_message(probe)
            .await
            .map_err(banks_error)?;
        Ok(fee.is_some())
    }

    async fn submit(&self, transaction: &Transaction) -> Result<Signature, ChainError> {
        self.inner.lock().await.process(transaction).await
    }

    async fn statuses(&self, signatures: &[Signature]) -> Result<Vec<TxStatus>, ChainError> {
        let inner = self.inner.lock().await;
        signatures
            .iter()
            .map(|s| Ok(inner.saved_status(s)?.unwrap_or(TxStatus::Unknown)))
            .collect()
    }

    async fn accounts(&self, addresses: &[Pubkey]) -> Result<Vec<Option<Account>>, ChainError> {
        let inner = self.inner.lock().await;
        let mut accounts = Vec::with_capacity(addresses.len());
        for address in addresses {
            accounts.push(
                inner
                    .context
                    .banks_client
                    .get_account(*address)
                    .await
                    .map_err(banks_error)?,
            );
        }
        Ok(accounts)
    }

    async fn unix_time(&self) -> Result<i64, ChainError> {
        let mut inner = self.inner.lock().await;
        inner.follow_wall_clock().await?;
        let clock: Clock = inner
            .context
            .banks_client
            .get_sysvar()
            .await
            .map_err(banks_error)?;
        Ok(clock.unix_timestamp)
    }

    async fn airdrop(&self, to: &Pubkey, lamports: u64) -> Result<Signature, ChainError> {
        let mut inner = self.inner.lock().await;
        let faucet = inner.context.payer.insecure_clone();
        let blockhash = inner
            .context
            .banks_client
            .get_latest_blockhash()
            .await
            .map_err(banks_error)?;
        // A unique memo-free transfer: two equal airdrops in one slot would
        // otherwise have the same signature.
        let mut blockhash = blockhash;
        loop {
            let transaction = Transaction::new_signed_with_payer(
                &[anchor_lang::solana_program::system_instruction::transfer(
                    &faucet.pubkey(),
                    to,
                    lamports,
                )],
                Some(&faucet.pubkey()),
                &[&faucet],
                blockhash,
            );
            if inner.saved_status(&transaction.signatures[0])?.is_some() {
                blockhash = inner
                    .context
                    .get_new_latest_blockhash()
                    .await
                    .map_err(unavailable)?;
                continue;
            }
            let signature = inner.process(&transaction).await?;
            return match inner.saved_status(&signature)? {
                Some(TxStatus::Confirmed { .. }) => Ok(signature),
                Some(TxStatus::Failed { error, .. }) => Err(ChainError::Refused(error)),
                _ => Err(ChainError::Unavailable("airdrop not recorded".into())),
            };
        }
    }
}
