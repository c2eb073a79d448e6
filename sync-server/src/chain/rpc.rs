//! A real cluster over JSON-RPC, through anchor-client's async client (its
//! `Program::rpc()` is the Solana nonblocking `RpcClient`).

use std::sync::Arc;
use std::time::Duration;

use anchor_client::{Client, Cluster, Program, RpcSendTransactionConfig, SolanaClientErrorKind};
use async_trait::async_trait;
use solana_account_decoder_client_types::UiAccountEncoding;
use solana_commitment_config::CommitmentConfig;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_rpc_client_api::config::RpcAccountInfoConfig;
use solana_rpc_client_api::request::RpcError;
use solana_sdk::account::Account;
use solana_sdk::clock::Clock;
use solana_sdk::hash::Hash;
use solana_sdk::pubkey::Pubkey;
use solana_sdk::signature::{Keypair, Signature};
use solana_sdk::transaction::{Transaction, TransactionError};
use solana_transaction_status_client_types::TransactionConfirmationStatus;

use super::{Chain, ChainError, TxStatus};

/// Most accounts one `getMultipleAccounts` call may ask for.
const MAX_ACCOUNTS_PER_CALL: usize = 100;

/// A cluster reached over JSON-RPC at `url`.
pub struct RpcChain {
    url: String,
    program: Program<Arc<Keypair>>,
    rpc: RpcClient,
}

fn classify(error: anchor_client::SolanaClientError) -> ChainError {
    if let Some(tx_error) = error.get_transaction_error() {
        return match tx_error {
            TransactionError::BlockhashNotFound => ChainError::BlockhashExpired,
            other => ChainError::Refused(other.to_string()),
        };
    }
    match error.kind() {
        // The node answered and refused the request itself (simulation failed,
        // bad signature, malformed transaction): asking again will not help.
        SolanaClientErrorKind::RpcError(RpcError::RpcResponseError { code, message, .. })
            if (-32099..=-32000).contains(code) && *code != -32005 =>
        {
            ChainError::Refused(format!("{code}: {message}"))
        }
        // Transport errors, node behind (-32005), HTTP 5xx, garbled answers.
        _ => ChainError::Unavailable(error.to_string()),
    }
}

/// Reads are retried this many times on transport failures (a provider
/// dropping a request now and then is normal) before the error is returned.
const READ_ATTEMPTS: u32 = 5;

/// Runs an idempotent read, retrying transient failures with backoff.
async fn read<T, F, Fut>(mut call: F) -> Result<T, ChainError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, anchor_client::SolanaClientError>>,
{
    let mut backoff = Duration::from_millis(50);
    let mut attempt = 1;
    loop {
        match call().await.map_err(classify) {
            Err(e) if e.is_transient() && attempt < READ_ATTEMPTS => {
                tracing::debug!(error = %e, attempt, "RPC read failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

impl RpcChain {
    /// A client for the cluster at `url` (e.g. `http://127.0.0.1:8899` or a
    /// provider's devnet URL). `payer` signs nothing here; anchor-client needs
    /// one to build its program handle. Requests time out after `timeout`.
    pub fn new(url: &str, payer: Arc<Keypair>, timeout: Duration) -> anyhow::Result<Self> {
        let cluster = Cluster::Custom(url.to_owned(), url.replacen("http", "ws", 1));
        let client = Client::new_with_options(cluster, payer, CommitmentConfig::confirmed());
        let program = client
            .program(ticketing::ID)
            .map_err(|e| anyhow::anyhow!("cannot build a client for {url}: {e}"))?;
        let rpc = RpcClient::new_with_timeout_and_commitment(
            url.to_owned(),
            timeout,
            CommitmentConfig::confirmed(),
        );
        Ok(Self {
            url: url.to_owned(),
            program,
            rpc,
        })
    }

    /// The anchor-client program handle, for typed account reads.
    pub fn program(&self) -> &Program<Arc<Keypair>> {
        &self.program
    }
}

#[async_trait]
impl Chain for RpcChain {
    fn describe(&self) -> String {
        format!("rpc ({})", self.url)
    }

    async fn latest_blockhash(&self) -> Result<Hash, ChainError> {
        read(|| self.rpc.get_latest_blockhash()).await
    }

    async fn is_blockhash_valid(&self, blockhash: &Hash) -> Result<bool, ChainError> {
        read(|| {
            self.rpc
                .is_blockhash_valid(blockhash, CommitmentConfig::processed())
        })
        .await
    }

    async fn submit(&self, transaction: &Transaction) -> Result<Signature, ChainError> {
        let config = RpcSendTransactionConfig {
            skip_preflight: false,
            preflight_commitment: Some(CommitmentConfig::confirmed().commitment),
            // The replay worker does its own retries, re-signing when needed.
            max_retries: Some(0),
            ..RpcSendTransactionConfig::default()
        };
        self.rpc
            .send_transaction_with_config(transaction, config)
            .await
            .map_err(classify)
    }

    async fn statuses(&self, signatures: &[Signature]) -> Result<Vec<TxStatus>, ChainError> {
        let mut out = Vec::with_capacity(signatures.len());
        for chunk in signatures.chunks(256) {
            let response = read(|| self.rpc.get_signature_statuses_with_history(chunk)).await?;
            for status in response.value {
                out.push(match status {
                    None => TxStatus::Unknown,
                    Some(status) => match (&status.err, &status.confirmation_status) {
                        (Some(error), _) => TxStatus::Failed {
                            slot: status.slot,
                            error: error.to_string(),
                        },
                        (
                            None,
                            Some(
                                TransactionConfirmationStatus::Confirmed
                                | TransactionConfirmationStatus::Finalized,
                            ),
                        ) => TxStatus::Confirmed { slot: status.slot },
                        // Rooted before confirmation levels were reported.
                        (None, None) if status.confirmations.is_none() => {
                            TxStatus::Confirmed { slot: status.slot }
                        }
                        _ => TxStatus::Unknown,
                    },
                });
            }
        }
        Ok(out)
    }

    async fn accounts(&self, addresses: &[Pubkey]) -> Result<Vec<Option<Account>>, ChainError> {
        let mut out = Vec::with_capacity(addresses.len());
        for chunk in addresses.chunks(MAX_ACCOUNTS_PER_CALL) {
            let response = read(|| {
                self.rpc.get_multiple_ui_accounts_with_config(
                    chunk,
                    RpcAccountInfoConfig {
                        encoding: Some(UiAccountEncoding::Base64),
                        commitment: Some(CommitmentConfig::confirmed()),
                        data_slice: None,
                        min_context_slot: None,
                    },
                )
            })
            .await?;
            for account in response.value {
                out.push(match account {
                    None => None,
                    Some(account) => Some(account.decode().ok_or_else(|| {
                        ChainError::Unavailable("the node sent undecodable account data".into())
                    })?),
                });
            }
        }
        Ok(out)
    }

    async fn unix_time(&self) -> Result<i64, ChainError> {
        let clock = self
            .accounts(&[solana_sdk::sysvar::clock::ID])
            .await?
            .pop()
            .flatten()
            .ok_or_else(|| ChainError::Unavailable("the node has no clock sysvar".into()))?;
        let clock: Clock = bincode::deserialize(&clock.data)
            .map_err(|e| ChainError::Unavailable(format!("bad clock sysvar: {e}")))?;
        Ok(clock.unix_timestamp)
    }

    async fn airdrop(&self, to: &Pubkey, lamports: u64) -> Result<Signature, ChainError> {
        // A lost answer may mean a second airdrop: harmless on a test cluster.
        let signature = read(|| self.rpc.request_airdrop(to, lamports)).await?;
        for _ in 0..120 {
            match self.statuses(&[signature]).await?.pop() {
                Some(TxStatus::Confirmed { .. }) => return Ok(signature),
                Some(TxStatus::Failed { error, .. }) => return Err(ChainError::Refused(error)),
                _ => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
        Err(ChainError::Unavailable(
            "the airdrop was not confirmed within 30 s".into(),
        ))
    }
}
