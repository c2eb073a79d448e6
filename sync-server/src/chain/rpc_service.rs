//! A Solana JSON-RPC endpoint in front of any [`Chain`], in practice the
//! embedded one. It answers the calls the server's own RPC client and the
//! usual wallet and CLI tools make for transactions and accounts:
//! `getVersion`, `getHealth`, `getSlot`, `getLatestBlockhash`,
//! `isBlockhashValid`, `sendTransaction`, `getSignatureStatuses`,
//! `getAccountInfo`, `getMultipleAccounts`, `getBalance`, `requestAirdrop`.
//!
//! Two uses: with `[chain] rpc_listen` set, the server serves its embedded
//! chain this way so the `solana` CLI and wallets can look at it, and the tests run the server's [`super::rpc::RpcChain`]
//! (the real Solana RPC client) against the real program through it, with
//! [`Faults`] injected (dropped requests, lost answers, delays, stale
//! blockhashes) the way a flaky provider behaves.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use solana_account_decoder_client_types::{UiAccount, UiAccountData, UiAccountEncoding};
use solana_sdk::hash::Hash;
use solana_sdk::pubkey::Pubkey;
use solana_sdk::signature::Signature;
use solana_sdk::transaction::Transaction;

use super::{ChainError, SharedChain, TxStatus};

/// Misbehaviour to inject, each as "every n-th request" (0 = never). The
/// counters are shared by all requests, so a plan is deterministic for a
/// given sequence of calls.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Answer 503 without doing anything.
    pub drop_every: u64,
    /// Do the work, then answer 503 as if the answer was lost on the way.
    pub lose_answer_every: u64,
    /// Hand out a blockhash the chain does not know (as an expired one is).
    pub stale_blockhash_every: u64,
    /// Wait this long before every answer.
    pub delay: Duration,
    /// Refuse one `sendTransaction`, as a failed preflight would: set it to
    /// `k` and the k-th send from then on is refused (0 = none). Shared, so
    /// a test arms it while the chain is in use.
    pub refuse_send_in: Arc<std::sync::atomic::AtomicI64>,
    /// What was injected so far, for a campaign's report.
    pub tally: Arc<FaultTally>,
}

/// Counts of the requests served and the faults injected into them.
#[derive(Debug, Default)]
pub struct FaultTally {
    pub requests: AtomicU64,
    pub dropped: AtomicU64,
    pub answers_lost: AtomicU64,
    /// Of the lost answers, those of a `sendTransaction` the chain took:
    /// a transaction that landed while its sender heard nothing.
    pub landed_unheard: AtomicU64,
    pub stale_blockhashes: AtomicU64,
    pub sends_refused: AtomicU64,
}

impl FaultTally {
    /// One line for a report.
    pub fn summary(&self) -> String {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "{} requests: {} dropped, {} answers lost ({} of them a landed transaction), {} stale blockhashes, {} sends refused",
            n(&self.requests),
            n(&self.dropped),
            n(&self.answers_lost),
            n(&self.landed_unheard),
            n(&self.stale_blockhashes),
            n(&self.sends_refused)
        )
    }
}

struct Service {
    chain: SharedChain,
    faults: Faults,
    requests: AtomicU64,
}

/// The JSON-RPC router over `chain`; POST to `/`.
pub fn router(chain: SharedChain, faults: Faults) -> Router {
    Router::new()
        .route("/", post(handle))
        .with_state(Arc::new(Service {
            chain,
            faults,
            requests: AtomicU64::new(0),
        }))
}

fn every(n: u64, count: u64) -> bool {
    n != 0 && count.is_multiple_of(n)
}

async fn handle(State(service): State<Arc<Service>>, Json(request): Json<Value>) -> Response {
    let count = service.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let tally = &service.faults.tally;
    tally.requests.fetch_add(1, Ordering::Relaxed);
    if !service.faults.delay.is_zero() {
        tokio::time::sleep(service.faults.delay).await;
    }
    if every(service.faults.drop_every, count) {
        tally.dropped.fetch_add(1, Ordering::Relaxed);
        return (StatusCode::SERVICE_UNAVAILABLE, "injected: request dropped").into_response();
    }
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let method = request
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let params = request.get("params").cloned().unwrap_or(json!([]));
    let outcome = call(&service, &method, &params, count).await;
    if every(service.faults.lose_answer_every, count) {
        tally.answers_lost.fetch_add(1, Ordering::Relaxed);
        if method == "sendTransaction" && outcome.is_ok() {
            tally.landed_unheard.fetch_add(1, Ordering::Relaxed);
        }
        return (StatusCode::SERVICE_UNAVAILABLE, "injected: answer lost").into_response();
    }
    let body = match outcome {
        Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
        Err(error) => json!({ "jsonrpc": "2.0", "id": id, "error": error }),
    };
    Json(body).into_response()
}

fn rpc_error(code: i64, message: impl Into<String>) -> Value {
    json!({ "code": code, "message": message.into() })
}

fn invalid_params(message: impl Into<String>) -> Value {
    rpc_error(-32602, message)
}

fn chain_error(error: ChainError) -> Value {
    match error {
        // What a node's preflight says of an expired blockhash; the client
        // turns the data's `err` back into `TransactionError::BlockhashNotFound`.
        ChainError::BlockhashExpired => json!({
            "code": -32002,
            "message": "Transaction simulation failed: Blockhash not found",
            "data": {
                "err": "BlockhashNotFound", "logs": [], "accounts": null,
                "unitsConsumed": 0, "returnData": null, "innerInstructions": null,
                "replacementBlockhash": null, "loadedAccountsDataSize": null,
                "fee": null, "preBalances": null, "postBalances": null,
                "preTokenBalances": null, "postTokenBalances": null, "loadedAddresses": null
            }
        }),
        ChainError::Refused(message) => rpc_error(-32002, message),
        ChainError::Unavailable(message) => rpc_error(-32603, message),
    }
}

fn context(slot: u64, value: Value) -> Value {
    json!({ "context": { "slot": slot }, "value": value })
}

fn param_str(params: &Value, index: usize) -> Result<&str, Value> {
    params
        .get(index)
        .and_then(Value::as_str)
        .ok_or_else(|| invalid_params(format!("parameter {index} must be a string")))
}

fn pubkey(text: &str) -> Result<Pubkey, Value> {
    text.parse()
        .map_err(|_| invalid_params(format!("invalid pubkey {text}")))
}

fn ui_account(account: solana_sdk::account::Account) -> UiAccount {
    UiAccount {
        lamports: account.lamports,
        space: Some(account.data.len() as u64),
        data: UiAccountData::Binary(BASE64.encode(&account.data), UiAccountEncoding::Base64),
        owner: account.owner.to_string(),
        executable: account.executable,
        rent_epoch: account.rent_epoch,
    }
}

async fn call(service: &Service, method: &str, params: &Value, count: u64) -> Result<Value, Value> {
    let chain = &service.chain;
    // The embedded chain has no meaningful slot numbers across restarts;
    // answers carry slot 0 in their context, which clients only display.
    let slot = 0u64;
    match method {
        "getVersion" => Ok(json!({ "solana-core": "3.1.12", "feature-set": 0 })),
        "getHealth" => Ok(json!("ok")),
        "getSlot" | "getBlockHeight" => Ok(json!(slot)),
        "getLatestBlockhash" => {
            let blockhash = if every(service.faults.stale_blockhash_every, count) {
                service
                    .faults
                    .tally
                    .stale_blockhashes
                    .fetch_add(1, Ordering::Relaxed);
                Hash::new_unique()
            } else {
                chain.latest_blockhash().await.map_err(chain_error)?
            };
            Ok(context(
                slot,
                json!({ "blockhash": blockhash.to_string(), "lastValidBlockHeight": 150 }),
            ))
        }
        "isBlockhashValid" => {
            let blockhash: Hash = param_str(params, 0)?
                .parse()
                .map_err(|_| invalid_params("invalid blockhash"))?;
            let valid = chain
                .is_blockhash_valid(&blockhash)
                .await
                .map_err(chain_error)?;
            Ok(context(slot, json!(valid)))
        }
        "sendTransaction" => {
            if service.faults.refuse_send_in.fetch_sub(1, Ordering::SeqCst) == 1 {
                service
                    .faults
                    .tally
                    .sends_refused
                    .fetch_add(1, Ordering::Relaxed);
                return Err(rpc_error(
                    -32002,
                    "Transaction simulation failed: injected refusal",
                ));
            }
            let encoded = param_str(params, 0)?;
            let encoding = params
                .get(1)
                .and_then(|c| c.get("encoding"))
                .and_then(Value::as_str)
                .unwrap_or("base58");
            let bytes = match encoding {
                "base64" => BASE64
                    .decode(encoded)
                    .map_err(|_| invalid_params("invalid base64 transaction"))?,
                "base58" => bs58::decode(encoded)
                    .into_vec()
                    .map_err(|_| invalid_params("invalid base58 transaction"))?,
                other => return Err(invalid_params(format!("unsupported encoding {other}"))),
            };
            let transaction: Transaction = bincode::deserialize(&bytes)
                .map_err(|e| invalid_params(format!("not a legacy transaction: {e}")))?;
            let signature = chain.submit(&transaction).await.map_err(chain_error)?;
            Ok(json!(signature.to_string()))
        }
        "getSignatureStatuses" => {
            let list = params
                .get(0)
                .and_then(Value::as_array)
                .ok_or_else(|| invalid_params("parameter 0 must be a list of signatures"))?;
            let mut signatures = Vec::with_capacity(list.len());
            for item in list {
                let text = item
                    .as_str()
                    .ok_or_else(|| invalid_params("a signature must be a string"))?;
                signatures.push(
                    text.parse::<Signature>()
                        .map_err(|_| invalid_params(format!("invalid signature {text}")))?,
                );
            }
            let statuses = chain.statuses(&signatures).await.map_err(chain_error)?;
            let value: Vec<Value> = statuses
                .into_iter()
                .map(|status| match status {
                    TxStatus::Unknown => Value::Null,
                    TxStatus::Confirmed { slot } => json!({
                        "slot": slot, "confirmations": null, "status": { "Ok": null },
                        "err": null, "confirmationStatus": "finalized"
                    }),
                    // The embedded chain keeps only the failure's text, so the
                    // structured error is a generic instruction error.
                    TxStatus::Failed { slot, .. } => {
                        let err = json!({ "InstructionError": [0, "GenericError"] });
                        json!({
                            "slot": slot, "confirmations": null, "status": { "Err": err },
                            "err": err, "confirmationStatus": "finalized"
                        })
                    }
                })
                .collect();
            Ok(context(slot, json!(value)))
        }
        "getAccountInfo" | "getMultipleAccounts" | "getBalance" => {
            let addresses: Vec<Pubkey> = if method == "getMultipleAccounts" {
                params
                    .get(0)
                    .and_then(Value::as_array)
                    .ok_or_else(|| invalid_params("parameter 0 must be a list of pubkeys"))?
                    .iter()
                    .map(|v| pubkey(v.as_str().unwrap_or_default()))
                    .collect::<Result<_, _>>()?
            } else {
                vec![pubkey(param_str(params, 0)?)?]
            };
            if addresses.len() > 100 {
                return Err(invalid_params("too many accounts requested (at most 100)"));
            }
            let mut accounts = chain.accounts(&addresses).await.map_err(chain_error)?;
            match method {
                "getBalance" => Ok(context(
                    slot,
                    json!(accounts.pop().flatten().map_or(0, |a| a.lamports)),
                )),
                "getAccountInfo" => Ok(context(
                    slot,
                    json!(accounts.pop().flatten().map(ui_account)),
                )),
                _ => Ok(context(
                    slot,
                    json!(
                        accounts
                            .into_iter()
                            .map(|a| a.map(ui_account))
                            .collect::<Vec<_>>()
                    ),
                )),
            }
        }
        "requestAirdrop" => {
            let to = pubkey(param_str(params, 0)?)?;
            let lamports = params
                .get(1)
                .and_then(Value::as_u64)
                .ok_or_else(|| invalid_params("parameter 1 must be lamports"))?;
            let signature = chain.airdrop(&to, lamports).await.map_err(chain_error)?;
            Ok(json!(signature.to_string()))
        }
        other => Err(rpc_error(-32601, format!("Method not found: {other}"))),
    }
}
