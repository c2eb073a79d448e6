//! Operations built on the [`Chain`] trait, the same on every implementation:
//! sending a transaction until it is confirmed, funding keys, creating events
//! through the program's client API, reading event and ticket accounts, and
//! keeping a signed transaction as text until it is settled.

use std::time::{Duration, Instant};

use solana_sdk::instruction::Instruction;
use solana_sdk::pubkey::Pubkey;
use solana_sdk::signature::{Keypair, Signature, Signer};
use solana_sdk::transaction::Transaction;
use ticketing::client::{self as program, EventParams, Ticket};

use super::{Chain, ChainError, TxStatus};

/// How long [`send`] keeps trying before giving up with the last error.
pub const SEND_DEADLINE: Duration = Duration::from_secs(90);

/// Signs `instructions` (fee paid by `payer`), submits, and waits until the
/// chain confirms or refuses them. Re-signs on a fresh blockhash when the
/// old one expired with the transaction unseen, and retries transport
/// failures with backoff; a transaction whose answer was lost is found by
/// its signature, so nothing is ever applied twice.
pub async fn send(
    chain: &dyn Chain,
    payer: &Keypair,
    instructions: &[Instruction],
    signers: &[&Keypair],
) -> Result<Signature, ChainError> {
    let mut all: Vec<&Keypair> = vec![payer];
    all.extend(
        signers
            .iter()
            .copied()
            .filter(|k| k.pubkey() != payer.pubkey()),
    );
    let deadline = Instant::now() + SEND_DEADLINE;
    let mut backoff = Duration::from_millis(100);
    let mut last_error;
    // Each pass signs on a fresh blockhash.
    loop {
        let blockhash = match chain.latest_blockhash().await {
            Ok(hash) => hash,
            Err(e) => {
                last_error = e;
                if Instant::now() > deadline || !last_error.is_transient() {
                    return Err(last_error);
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let transaction = Transaction::new_signed_with_payer(
            instructions,
            Some(&payer.pubkey()),
            &all,
            blockhash,
        );
        let signature = transaction.signatures[0];
        match wait_for(chain, &transaction, deadline).await {
            Ok(()) => return Ok(signature),
            Err(ChainError::BlockhashExpired) => {
                last_error = ChainError::BlockhashExpired;
            }
            Err(e) => return Err(e),
        }
        if Instant::now() > deadline {
            return Err(last_error);
        }
    }
}

/// Submits `transaction` (again when needed) until its outcome is known.
/// `Err(BlockhashExpired)` means it never landed and must be signed anew.
pub async fn wait_for(
    chain: &dyn Chain,
    transaction: &Transaction,
    deadline: Instant,
) -> Result<(), ChainError> {
    let signature = transaction.signatures[0];
    let blockhash = transaction.message.recent_blockhash;
    let mut backoff = Duration::from_millis(100);
    let mut submitted = false;
    loop {
        if !submitted {
            match chain.submit(transaction).await {
                Ok(_) => submitted = true,
                Err(ChainError::Unavailable(e)) => {
                    // The answer may be lost while the transaction landed:
                    // the status check below tells.
                    tracing::debug!(%signature, error = %e, "submit failed; checking status");
                }
                Err(e) => return Err(e),
            }
        }
        match chain.statuses(&[signature]).await {
            Ok(statuses) => match statuses.into_iter().next() {
                Some(TxStatus::Confirmed { .. }) => return Ok(()),
                Some(TxStatus::Failed { error, .. }) => return Err(ChainError::Refused(error)),
                _ => {
                    if !chain.is_blockhash_valid(&blockhash).await.unwrap_or(true) {
                        // Check once more: it may have landed just before expiry.
                        if let Ok(again) = chain.statuses(&[signature]).await
                            && let Some(TxStatus::Confirmed { .. }) = again.first()
                        {
                            return Ok(());
                        }
                        return Err(ChainError::BlockhashExpired);
                    }
                    // Not seen yet: send it again (a cluster drops duplicates).
                    submitted = false;
                }
            },
            Err(e) if e.is_transient() => {}
            Err(e) => return Err(e),
        }
        if Instant::now() > deadline {
            return Err(ChainError::Unavailable(format!(
                "transaction {signature} not confirmed before the deadline"
            )));
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// A signed transaction as text (base64 of its wire bytes), for keeping it
/// in a database column until it is settled.
pub fn encode_transaction(transaction: &Transaction) -> Result<String, bincode::Error> {
    use base64::Engine as _;
    let bytes = bincode::serialize(transaction)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The transaction [`encode_transaction`] wrote; `None` when `text` is not one.
pub fn decode_transaction(text: &str) -> Option<Transaction> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    bincode::deserialize(&bytes).ok()
}

/// Lamports held by `address` (0 when the account does not exist).
pub async fn balance(chain: &dyn Chain, address: &Pubkey) -> Result<u64, ChainError> {
    Ok(chain
        .accounts(&[*address])
        .await?
        .pop()
        .flatten()
        .map_or(0, |a| a.lamports))
}

/// Tops `address` up to `target` lamports when it holds less than `minimum`:
/// from the cluster's faucet where there is one, else from `funder`.
pub async fn ensure_funded(
    chain: &dyn Chain,
    funder: Option<&Keypair>,
    address: &Pubkey,
    minimum: u64,
    target: u64,
) -> Result<(), ChainError> {
    let have = balance(chain, address).await?;
    if have >= minimum {
        return Ok(());
    }
    let need = target.saturating_sub(have);
    match chain.airdrop(address, need).await {
        Ok(_) => Ok(()),
        Err(airdrop_error) => match funder {
            Some(funder) if funder.pubkey() != *address => send(
                chain,
                funder,
                &[anchor_lang::solana_program::system_instruction::transfer(
                    &funder.pubkey(),
                    address,
                    need,
                )],
                &[],
            )
            .await
            .map(|_| ()),
            _ => Err(airdrop_error),
        },
    }
}

/// The event account, decoded; `None` when it does not exist.
pub async fn event(
    chain: &dyn Chain,
    organizer: &Pubkey,
    event_id: u64,
) -> Result<Option<program::Event>, ChainError> {
    let address = program::event_address(organizer, event_id).0;
    match chain.accounts(&[address]).await?.pop().flatten() {
        None => Ok(None),
        Some(account) => program::decode_event(&account.data)
            .map(Some)
            .map_err(|e| ChainError::Refused(format!("{address} is not an event: {e}"))),
    }
}

/// Ticket accounts by id, decoded; `None` where a ticket does not exist.
pub async fn tickets(
    chain: &dyn Chain,
    event: &Pubkey,
    ticket_ids: &[u32],
) -> Result<Vec<Option<Ticket>>, ChainError> {
    let addresses: Vec<Pubkey> = ticket_ids
        .iter()
        .map(|id| program::ticket_address(event, *id).0)
        .collect();
    chain
        .accounts(&addresses)
        .await?
        .into_iter()
        .zip(addresses)
        .map(|(account, address)| match account {
            None => Ok(None),
            Some(account) => program::decode_ticket(&account.data)
                .map(Some)
                .map_err(|e| ChainError::Refused(format!("{address} is not a ticket: {e}"))),
        })
        .collect()
}

/// Creates the event on chain unless it exists, and makes sure `validator`
/// may record entries for it. Safe to call again after any failure.
pub async fn ensure_event(
    chain: &dyn Chain,
    organizer: &Keypair,
    event_id: u64,
    params: EventParams,
    validator: &Pubkey,
) -> Result<program::Event, ChainError> {
    let address = program::event_address(&organizer.pubkey(), event_id).0;
    if event(chain, &organizer.pubkey(), event_id).await?.is_none() {
        send(
            chain,
            organizer,
            &[program::create_event(&organizer.pubkey(), event_id, params)],
            &[],
        )
        .await?;
    }
    let current = event(chain, &organizer.pubkey(), event_id)
        .await?
        .ok_or_else(|| ChainError::Refused(format!("event {address} missing after creation")))?;
    if current.is_validator(validator) {
        return Ok(current);
    }
    send(
        chain,
        organizer,
        &[program::add_validator(
            &organizer.pubkey(),
            &address,
            validator,
        )],
        &[],
    )
    .await?;
    event(chain, &organizer.pubkey(), event_id)
        .await?
        .ok_or_else(|| ChainError::Refused(format!("event {address} disappeared")))
}
