//! Driving one mint request to its end, by whoever holds its lease (the
//! request's own call, or the recovery worker after a crash):
//!
//! 1. settle every recorded transaction of it by signature (landed: publish
//!    its tickets; never landed and never will: its tickets are pending
//!    again);
//! 2. under the event's lock, sign a transaction minting the next pending
//!    tickets as the ids after the chain's `minted` counter, record it with
//!    its signature and those ids, then send it;
//! 3. repeat until every ticket landed (completed), or the chain refused
//!    (failed: seats of the rest released, landed tickets revoked).
//!
//! A chain that does not answer leaves the request as it is, with its
//! transactions recorded: the next holder goes on from step 1.

use std::time::{Duration, Instant};

use solana_sdk::pubkey::Pubkey;
use solana_sdk::signature::Signer;
use solana_sdk::transaction::Transaction;

use super::{MintItemState, MintRequest, MintState, load};
use crate::chain::{ChainError, TxStatus, ops};
use crate::services::organizer::{self, ChainContext};
use crate::services::{ServiceError, Services};
use crate::store::MintItem;

/// How often in a row the ticket ids a transaction took may be taken by
/// someone else first (another server, a purchase) before the request waits
/// for a later round.
const MAX_RETRIES: u32 = 8;

/// How long a resent transaction of an earlier holder is waited for.
const SETTLE_WAIT: Duration = Duration::from_secs(10);

/// What the chain made of a recorded transaction.
enum Settled {
    Landed,
    /// Its blockhash expired with the transaction unseen: it never landed.
    Expired,
    /// Executed and failed, or refused before: it never landed.
    Refused(String),
    /// Not seen yet and it may still land, or the chain did not answer.
    Unknown,
}

/// What one transaction of a request came to.
enum Step {
    Landed,
    /// Nothing landed, for a reason that may pass (ids taken first, an
    /// expired blockhash): try again.
    Retry,
    /// The chain refused the tickets themselves.
    Refused(String),
    /// Someone else holds the request now.
    LeaseLost,
}

fn chain_ctx(services: &Services) -> Result<&ChainContext, ServiceError> {
    services
        .chain
        .as_deref()
        .ok_or_else(|| ServiceError::ChainUnavailable("no chain configured".into()))
}

/// Works on `request_id` for as long as `holder` keeps its lease, until it
/// is completed or failed. `Err` leaves it open for the next holder.
pub(super) async fn run(
    services: &Services,
    request_id: &str,
    holder: &str,
) -> Result<(), ServiceError> {
    let lease = super::lease_secs(services);
    let mut retries = 0;
    loop {
        let now = services.clock.now();
        if !services
            .store
            .lease_mint_request(request_id, holder, now + lease, now)
            .await?
        {
            return Ok(());
        }
        let request = load(services, request_id).await?;
        match request.state {
            MintState::Completed | MintState::Failed => return Ok(()),
            MintState::Voiding => return void(services, &request).await,
            MintState::Minting => {}
        }
        if settle_recorded(services, &request).await? {
            continue;
        }
        let pending: Vec<&MintItem> = request
            .items
            .iter()
            .filter(|i| i.state == MintItemState::Pending)
            .collect();
        if pending.is_empty() {
            if services
                .store
                .complete_mint_request(request_id, now)
                .await?
            {
                tracing::info!(request = %request_id, event = request.event_id,
                    tickets = request.items.len(), "mint request completed");
            }
            return Ok(());
        }
        match mint_next(services, &request, holder, &pending).await? {
            Step::Landed => retries = 0,
            Step::Retry => {
                retries += 1;
                if retries > MAX_RETRIES {
                    return Err(ServiceError::ChainUnavailable(
                        "the event's next ticket ids kept being taken first; trying again later"
                            .into(),
                    ));
                }
            }
            Step::LeaseLost => return Ok(()),
            Step::Refused(error) => {
                tracing::warn!(request = %request_id, event = request.event_id, %error,
                    "the chain refused a mint; the request fails as a whole");
                services
                    .store
                    .fail_mint_request(request_id, &error, services.clock.now())
                    .await?;
                if let Err(e) = organizer::reconcile_event(services, request.event_id).await {
                    tracing::warn!(event = request.event_id, error = %e,
                        "could not compare the event's tickets with the chain");
                }
            }
        }
    }
}

/// Settles the request's recorded transactions by signature. `Ok(true)`
/// when one settled (the request changed), `Err` when one cannot be told yet.
pub(super) async fn settle_recorded(
    services: &Services,
    request: &MintRequest,
) -> Result<bool, ServiceError> {
    let ctx = chain_ctx(services)?;
    let mut changed = false;
    for recorded in services.store.unsettled_mints(&request.request_id).await? {
        let transaction = ops::decode_transaction(&recorded.transaction_b64).ok_or_else(|| {
            ServiceError::Internal(format!(
                "mint transaction {} is not readable",
                recorded.signature
            ))
        })?;
        let ids: Vec<u32> = request
            .items
            .iter()
            .filter(|i| i.signature.as_deref() == Some(recorded.signature.as_str()))
            .filter_map(|i| i.ticket_id)
            .collect();
        match settle(ctx, &transaction).await? {
            Settled::Landed => land(services, request.event_id, &recorded.signature, &ids).await?,
            Settled::Expired => {
                services
                    .store
                    .settle_mint_transaction(&recorded.signature, false, Some("expired unseen"))
                    .await?
            }
            Settled::Refused(error) => {
                services
                    .store
                    .settle_mint_transaction(&recorded.signature, false, Some(&error))
                    .await?
            }
            Settled::Unknown => {
                return Err(ServiceError::ChainUnavailable(format!(
                    "mint transaction {} not settled yet",
                    recorded.signature
                )));
            }
        }
        changed = true;
    }
    Ok(changed)
}

/// What the chain made of `transaction`: its status first (so a transaction
/// that landed is never taken for a refused one), then, while its blockhash
/// may still land it, sent again and waited for a little.
async fn settle(ctx: &ChainContext, transaction: &Transaction) -> Result<Settled, ServiceError> {
    let chain = ctx.chain.as_ref();
    let signature = transaction.signatures[0];
    let status = |statuses: Vec<TxStatus>| match statuses.into_iter().next() {
        Some(TxStatus::Confirmed { .. }) => Some(Settled::Landed),
        Some(TxStatus::Failed { error, .. }) => Some(Settled::Refused(error)),
        _ => None,
    };
    if let Some(settled) = status(chain.statuses(&[signature]).await?) {
        return Ok(settled);
    }
    if !chain
        .is_blockhash_valid(&transaction.message.recent_blockhash)
        .await?
    {
        // It may have landed just before the blockhash expired.
        return Ok(status(chain.statuses(&[signature]).await?).unwrap_or(Settled::Expired));
    }
    Ok(
        match ops::wait_for(chain, transaction, Instant::now() + SETTLE_WAIT).await {
            Ok(()) => Settled::Landed,
            Err(ChainError::BlockhashExpired) => Settled::Expired,
            Err(ChainError::Refused(error)) => {
                status(chain.statuses(&[signature]).await?).unwrap_or(Settled::Refused(error))
            }
            Err(ChainError::Unavailable(_)) => Settled::Unknown,
        },
    )
}

/// Publishes the tickets of a landed transaction to the gates, then marks
/// them landed (a crash in between publishes them again: harmless).
async fn land(
    services: &Services,
    event_id: u64,
    signature: &str,
    ids: &[u32],
) -> Result<(), ServiceError> {
    organizer::refresh_tickets(services, event_id, ids).await?;
    services
        .store
        .settle_mint_transaction(signature, true, None)
        .await?;
    Ok(())
}

/// Mints the next pending tickets in one transaction, recorded before it is
/// sent; the event's lock is held until it is settled, so this server's
/// mints of one event never race for ticket ids.
async fn mint_next(
    services: &Services,
    request: &MintRequest,
    holder: &str,
    pending: &[&MintItem],
) -> Result<Step, ServiceError> {
    let ctx = chain_ctx(services)?;
    let chain = ctx.chain.as_ref();
    let _turn = services.mint_locks.lock(request.event_id).await;
    let event = organizer::event_on_chain(services, request.event_id).await?;
    let chunk = &pending[..pending.len().min(event.token_standard.max_mint_batch())];
    let recipients: Vec<(Pubkey, u8)> = chunk.iter().map(|i| (i.recipient, i.tier)).collect();
    let item_nos: Vec<u32> = chunk.iter().map(|i| i.item_no).collect();
    let first = event.minted;
    let organizer_key = ctx.authority.pubkey();
    let event_address = ticketing::client::event_address(&organizer_key, request.event_id).0;
    let transaction = Transaction::new_signed_with_payer(
        &[
            ticketing::client::mint_compute_budget(),
            ticketing::client::mint_tickets(
                &organizer_key,
                &event_address,
                first,
                &recipients,
                event.token_standard,
            ),
        ],
        Some(&organizer_key),
        &[&ctx.authority],
        chain.latest_blockhash().await?,
    );
    let signature = transaction.signatures[0].to_string();
    let encoded = ops::encode_transaction(&transaction)
        .map_err(|e| ServiceError::Internal(format!("mint transaction: {e}")))?;
    if !services
        .store
        .record_request_transaction(
            &request.request_id,
            holder,
            &item_nos,
            first,
            &signature,
            &encoded,
            services.clock.now(),
        )
        .await?
    {
        return Ok(Step::LeaseLost);
    }
    crate::failpoint::failpoint("mint.transaction_recorded");
    let wait = Duration::from_secs(
        u64::try_from(super::lease_secs(services))
            .unwrap_or(0)
            .max(10),
    );
    let settled = match ops::wait_for(chain, &transaction, Instant::now() + wait).await {
        Ok(()) => Settled::Landed,
        Err(ChainError::Unavailable(e)) => return Err(ServiceError::ChainUnavailable(e)),
        // `wait_for` looked at its status before calling it expired.
        Err(ChainError::BlockhashExpired) => Settled::Expired,
        // A refusal of a send whose answer to an earlier send was lost
        // ("already processed") is no refusal: look at its status.
        Err(ChainError::Refused(error)) => {
            match chain.statuses(&[transaction.signatures[0]]).await?.first() {
                Some(TxStatus::Confirmed { .. }) => Settled::Landed,
                _ => Settled::Refused(error),
            }
        }
    };
    match settled {
        Settled::Landed => {
            crate::failpoint::failpoint("mint.transaction_landed");
            let ids: Vec<u32> = (first..).take(chunk.len()).collect();
            land(services, request.event_id, &signature, &ids).await?;
            Ok(Step::Landed)
        }
        Settled::Unknown => Err(ServiceError::ChainUnavailable(format!(
            "mint transaction {signature} not confirmed yet"
        ))),
        Settled::Expired => {
            services
                .store
                .settle_mint_transaction(&signature, false, Some("expired unseen"))
                .await?;
            Ok(Step::Retry)
        }
        Settled::Refused(error) => {
            services
                .store
                .settle_mint_transaction(&signature, false, Some(&error))
                .await?;
            // Refused because another mint took these ids first, or
            // because of the tickets themselves?
            let now = organizer::event_on_chain(services, request.event_id).await?;
            Ok(if now.minted != first {
                Step::Retry
            } else {
                Step::Refused(error)
            })
        }
    }
}

/// Revokes the landed tickets of a failed request (idempotent: a ticket
/// revoked already is only published again), then marks it failed.
async fn void(services: &Services, request: &MintRequest) -> Result<(), ServiceError> {
    for item in &request.items {
        if item.state != MintItemState::Landed {
            continue;
        }
        let Some(ticket_id) = item.ticket_id else {
            continue;
        };
        organizer::revoke_ticket(services, request.event_id, ticket_id).await?;
        services
            .store
            .mark_mint_item_revoked(&request.request_id, item.item_no)
            .await?;
    }
    services
        .store
        .finish_voiding(&request.request_id, services.clock.now())
        .await?;
    Ok(())
}
