//! The server's access to Solana: one [`Chain`] trait, two real implementations.
//!
//! - [`embedded::EmbeddedChain`]: the real program running in the in-process
//!   runtime (solana-program-test's bank), its accounts kept in a SQLite file
//!   beside the database so they survive a restart. The default: no cluster,
//!   no network.
//! - [`rpc::RpcChain`]: a real cluster over JSON-RPC through anchor-client's
//!   async RPC client.
//!
//! The trait is deliberately the few RPC calls the server needs (blockhash,
//! submit, status, accounts), so that everything above it (the replay worker,
//! event and ticket operations in [`ops`]) is the same code on both, and so
//! that [`rpc_service`] can put the embedded chain behind a JSON-RPC endpoint
//! the real RPC client talks to.

pub mod embedded;
pub mod ops;
pub mod rpc;
pub mod rpc_service;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use solana_sdk::account::Account;
use solana_sdk::hash::Hash;
use solana_sdk::pubkey::Pubkey;
use solana_sdk::signature::{Keypair, Signature};
use solana_sdk::transaction::Transaction;

/// Why a chain call failed, sorted by what the caller should do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// The node did not answer or answered garbage: retry later, with backoff.
    #[error("chain unavailable: {0}")]
    Unavailable(String),
    /// The transaction's blockhash is too old (or unknown): sign again on a
    /// fresh one. Nothing of it was applied.
    #[error("blockhash expired")]
    BlockhashExpired,
    /// The chain refused the transaction (a program or account error); the
    /// same transaction will be refused again.
    #[error("transaction refused: {0}")]
    Refused(String),
}

impl ChainError {
    /// Whether trying again later may succeed without changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// What the chain knows of a submitted transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxStatus {
    /// Not seen (yet, or ever: its blockhash decides which).
    Unknown,
    /// Executed successfully and confirmed.
    Confirmed { slot: u64 },
    /// Executed and failed; fees were charged, nothing else changed.
    Failed { slot: u64, error: String },
}

/// The calls the server makes to a cluster. Implementations must be cheap to
/// share (`Arc<dyn Chain>`) and safe to call concurrently.
#[async_trait]
pub trait Chain: Send + Sync + 'static {
    /// A short description for logs and `/health`, e.g. `embedded (data/chain.sqlite)`.
    fn describe(&self) -> String;

    /// A blockhash to sign new transactions with.
    async fn latest_blockhash(&self) -> Result<Hash, ChainError>;

    /// Whether a transaction signed on `blockhash` can still land.
    async fn is_blockhash_valid(&self, blockhash: &Hash) -> Result<bool, ChainError>;

    /// Hands a signed transaction to the cluster. Returning `Ok` means it was
    /// accepted for processing, not that it succeeded: ask [`Chain::status`].
    async fn submit(&self, transaction: &Transaction) -> Result<Signature, ChainError>;

    /// The status of earlier submissions, in the order asked.
    async fn statuses(&self, signatures: &[Signature]) -> Result<Vec<TxStatus>, ChainError>;

    /// Accounts by address (`None` where none exists), in the order asked.
    async fn accounts(&self, addresses: &[Pubkey]) -> Result<Vec<Option<Account>>, ChainError>;

    /// The cluster's clock (Unix seconds), which the program judges scan
    /// times against.
    async fn unix_time(&self) -> Result<i64, ChainError>;

    /// Gives `lamports` to `to` from the cluster's faucet. Only test clusters
    /// (the embedded chain, a local validator, devnet) have one. Returns once
    /// the transfer is confirmed.
    async fn airdrop(&self, to: &Pubkey, lamports: u64) -> Result<Signature, ChainError>;
}

/// A shared chain handle.
pub type SharedChain = Arc<dyn Chain>;

/// Reads a keypair file in the Solana CLI's format (a JSON array of the 64
/// secret and public bytes), creating one (mode 0600) when it does not exist.
pub fn load_or_create_keypair(path: &Path) -> anyhow::Result<Keypair> {
    use anyhow::Context;
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes: Vec<u8> = serde_json::from_str(&text).with_context(|| {
                format!(
                    "{}: not a keypair file (a JSON array of 64 bytes)",
                    path.display()
                )
            })?;
            Keypair::try_from(bytes.as_slice())
                .map_err(|e| anyhow::anyhow!("{}: not a valid keypair: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let keypair = Keypair::new();
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let json = serde_json::to_string(&keypair.to_bytes().to_vec())?;
            crate::write_private(path, json.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            tracing::info!(path = %path.display(), "created a new chain keypair");
            Ok(keypair)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}
