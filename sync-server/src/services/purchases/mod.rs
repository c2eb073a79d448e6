//! Buying a ticket: reserve a seat, pay, mint, deliver.
//!
//! A reservation holds a seat of the tier for
//! [`ApiSettings::reservation_secs`](crate::config::ApiSettings) and starts
//! the payment. By card: a PaymentIntent whose client secret the buyer's
//! browser confirms; the provider's webhook then marks the purchase paid
//! ([`apply_webhook`]) and the server mints ([`fulfil_card`]). In SOL: an
//! unsigned `buy_ticket` transaction that pays the event and mints the NFT
//! atomically once the buyer's wallet signs it and [`submit`]s it.
//!
//! Chain and database stay consistent through crashes: the mint transaction
//! and its signature are recorded on the purchase *before* it is sent, so a
//! server that dies after the chain accepted it finds it by signature on
//! restart ([`round`]) and completes the purchase, and a transaction that
//! never landed is signed anew. A purchase is minted at most once.

mod mail;
mod worker;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use shared::PublicKeyBytes;
use solana_sdk::pubkey::Pubkey;
use solana_sdk::signature::Signer;
use solana_sdk::transaction::Transaction;

pub use worker::{ROUND_INTERVAL, RoundReport, fulfil_card, round, run};

use super::organizer::{ChainContext, credential_for, event_on_chain, refresh_tickets};
use super::{ServiceError, Services, inventory};
use crate::adapters::payments::{NewPaymentIntent, PaymentError, WebhookEvent, WebhookKind};
use crate::chain::ChainError;
pub use crate::store::{
    MailStatus, NewPurchase, PaymentMethod, PaymentOutcome, Purchase, PurchaseStatus, WebhookEffect,
};

/// What a buyer asks for.
#[derive(Debug, Clone)]
pub struct Order {
    pub event_id: u64,
    pub tier: u8,
    pub method: PaymentMethod,
    /// Where the confirmation with the QR code goes.
    pub email: Option<String>,
}

/// A started card payment, for the buyer's browser.
#[derive(Debug, Clone)]
pub struct CardPayment {
    pub payment_intent: String,
    pub client_secret: String,
}

/// An unsigned transaction for the buyer's wallet.
#[derive(Debug, Clone)]
pub struct WalletTransaction {
    /// Legacy transaction, bincode, base64; the buyer pays the fee.
    pub transaction: String,
    pub message: String,
    pub price_lamports: u64,
}

/// A purchase with what its buyer may do or show next.
#[derive(Debug, Clone)]
pub struct PurchaseDetail {
    pub purchase: Purchase,
    /// The minted ticket's signed credential, once fulfilled.
    pub code: Option<String>,
    /// A fresh transaction while an SOL purchase is unpaid.
    pub sol: Option<WalletTransaction>,
    /// The card payment just started (on reservation only).
    pub card: Option<CardPayment>,
}

fn chain_ctx(services: &Services) -> Result<&ChainContext, ServiceError> {
    services
        .chain
        .as_deref()
        .ok_or_else(|| ServiceError::ChainUnavailable("no chain configured".into()))
}

fn encode_tx(transaction: &Transaction) -> Result<String, ServiceError> {
    crate::chain::ops::encode_transaction(transaction)
        .map_err(|e| ServiceError::Internal(e.to_string()))
}

fn decode_tx(text: &str) -> Option<Transaction> {
    crate::chain::ops::decode_transaction(text)
}

async fn load(services: &Services, purchase_id: &str) -> Result<Purchase, ServiceError> {
    services
        .store
        .purchase(purchase_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no purchase {purchase_id}")))
}

/// The purchase, if `buyer` made it (not found for anyone else: ids are not
/// secrets, but other buyers' purchases are none of a caller's business).
pub async fn purchase_of(
    services: &Services,
    buyer: &PublicKeyBytes,
    purchase_id: &str,
) -> Result<Purchase, ServiceError> {
    services
        .store
        .purchase(purchase_id)
        .await?
        .filter(|p| p.buyer.to_bytes() == buyer.0)
        .ok_or_else(|| ServiceError::NotFound(format!("no purchase {purchase_id}")))
}

/// A buyer's last 100 purchases, newest first.
pub async fn purchases_of(
    services: &Services,
    buyer: &PublicKeyBytes,
) -> Result<Vec<Purchase>, ServiceError> {
    Ok(services
        .store
        .purchases_of_buyer(&buyer.to_base58())
        .await?)
}

/// Card purchases in `statuses` for support, newest change first.
pub async fn purchases_in(
    services: &Services,
    statuses: &[PurchaseStatus],
) -> Result<Vec<Purchase>, ServiceError> {
    Ok(services.store.purchases_in(statuses).await?)
}

/// The unsigned `buy_ticket` for `purchase`: the next ticket id as the chain
/// has it now, at most the price quoted.
async fn sol_transaction(
    services: &Services,
    purchase: &Purchase,
) -> Result<WalletTransaction, ServiceError> {
    let ctx = chain_ctx(services)?;
    let event = event_on_chain(services, purchase.event_id).await?;
    let event_address =
        ticketing::client::event_address(&ctx.authority.pubkey(), purchase.event_id).0;
    let instruction = ticketing::client::buy_ticket(
        &purchase.buyer,
        &event_address,
        event.minted,
        purchase.tier,
        purchase.amount,
        event.token_standard,
    );
    let blockhash = ctx.chain.latest_blockhash().await?;
    let mut transaction = Transaction::new_with_payer(&[instruction], Some(&purchase.buyer));
    transaction.message.recent_blockhash = blockhash;
    Ok(WalletTransaction {
        transaction: encode_tx(&transaction)?,
        message: format!(
            "Buy a ticket for {} ({} SOL)",
            event.name,
            purchase.amount as f64 / 1e9
        ),
        price_lamports: purchase.amount,
    })
}

/// `purchase` with its code once fulfilled and, while an SOL purchase is
/// unpaid, a fresh transaction.
pub async fn detail(
    services: &Services,
    purchase: Purchase,
) -> Result<PurchaseDetail, ServiceError> {
    let code = match (purchase.status, purchase.ticket_id) {
        (PurchaseStatus::Fulfilled, Some(ticket_id)) => {
            match services.store.ticket(purchase.event_id, ticket_id).await? {
                Some(ticket) if ticket.owner.0 == purchase.buyer.to_bytes() => {
                    Some(credential_for(services, &ticket)?.encode())
                }
                _ => None,
            }
        }
        _ => None,
    };
    let sol = if purchase.method == PaymentMethod::Sol
        && purchase.status == PurchaseStatus::Pending
        && purchase.expires_at > services.clock.now()
    {
        Some(sol_transaction(services, &purchase).await?)
    } else {
        None
    };
    Ok(PurchaseDetail {
        purchase,
        code,
        sol,
        card: None,
    })
}

/// Holds a seat of `order`'s tier for `buyer` and starts its payment.
pub async fn reserve(
    services: &Services,
    buyer: &PublicKeyBytes,
    order: &Order,
) -> Result<PurchaseDetail, ServiceError> {
    let now = services.clock.now();
    let event = services
        .store
        .event(order.event_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no event {}", order.event_id)))?;
    if event.status != shared::EventStatus::Active {
        return Err(ServiceError::Conflict(format!(
            "event {} is not on sale ({:?})",
            order.event_id, event.status
        )));
    }
    if event.doors.closes_at <= now {
        return Err(ServiceError::Gone(format!(
            "event {} is over",
            order.event_id
        )));
    }
    if !event.tiers.iter().any(|t| t.index == order.tier) {
        return Err(ServiceError::invalid("tier", "no such tier in this event"));
    }
    let (amount, currency) = match order.method {
        PaymentMethod::Card => {
            if services.payments.is_none() {
                return Err(PaymentError::Disabled.into());
            }
            let price = inventory::card_price(services, order.event_id, order.tier)
                .await?
                .ok_or_else(|| ServiceError::invalid("method", "this tier is not sold by card"))?;
            (price.amount, price.currency)
        }
        PaymentMethod::Sol => {
            let on_chain = event_on_chain(services, order.event_id).await?;
            let price = on_chain
                .tiers
                .get(usize::from(order.tier))
                .map(|t| t.price)
                .ok_or_else(|| ServiceError::invalid("tier", "no such tier on chain"))?;
            (price, "sol".to_owned())
        }
    };
    inventory::ensure(services, order.event_id).await?;
    let purchase_id = uuid::Uuid::now_v7().to_string();
    let reserved = services
        .store
        .reserve_purchase(&NewPurchase {
            id: &purchase_id,
            event_id: order.event_id,
            tier: order.tier,
            buyer: &buyer.to_base58(),
            email: order.email.as_deref(),
            method: order.method,
            expires_at: now + i64::from(services.config.api.reservation_secs),
            amount,
            currency: &currency,
            now,
        })
        .await?;
    if !reserved {
        return Err(inventory::sold_out(services, order.event_id).await);
    }
    services.metrics.purchase(order.method.as_str(), "reserved");

    let mut purchase = services
        .store
        .purchase(&purchase_id)
        .await?
        .ok_or_else(|| ServiceError::Internal("purchase vanished".into()))?;
    let card = match order.method {
        PaymentMethod::Sol => None,
        PaymentMethod::Card => match start_card_payment(services, &purchase, &event.name).await {
            Ok(card) => {
                purchase.payment_intent = Some(card.payment_intent.clone());
                Some(card)
            }
            Err(e) => {
                end_without_ticket(services, &purchase, PurchaseStatus::Failed, &e.to_string())
                    .await?;
                return Err(e);
            }
        },
    };
    let mut detail = detail(services, purchase).await?;
    detail.card = card;
    Ok(detail)
}

async fn start_card_payment(
    services: &Services,
    purchase: &Purchase,
    event_name: &str,
) -> Result<CardPayment, ServiceError> {
    let provider = services.payments.as_ref().ok_or(PaymentError::Disabled)?;
    let metadata = BTreeMap::from([
        ("purchase_id".to_owned(), purchase.id.clone()),
        ("event_id".to_owned(), purchase.event_id.to_string()),
        ("tier".to_owned(), purchase.tier.to_string()),
        ("buyer".to_owned(), purchase.buyer.to_string()),
        ("event".to_owned(), event_name.chars().take(200).collect()),
    ]);
    let intent = provider
        .create_payment_intent(&NewPaymentIntent {
            amount_minor: purchase.amount,
            currency: purchase.currency.clone(),
            metadata,
            idempotency_key: format!("purchase-{}", purchase.id),
        })
        .await?;
    let client_secret = intent
        .client_secret
        .clone()
        .ok_or_else(|| PaymentError::Protocol("no client_secret on a new intent".into()))?;
    services
        .store
        .set_payment_intent(&purchase.id, &intent.id, services.clock.now())
        .await?;
    Ok(CardPayment {
        payment_intent: intent.id,
        client_secret,
    })
}

/// Ends a pending purchase that will not get a ticket and gives its seat
/// back; `false` when it was no longer pending.
async fn end_without_ticket(
    services: &Services,
    purchase: &Purchase,
    status: PurchaseStatus,
    error: &str,
) -> Result<bool, ServiceError> {
    let ended = services
        .store
        .end_purchase(purchase, status, error, services.clock.now())
        .await?;
    if ended {
        services
            .metrics
            .purchase(purchase.method.as_str(), status.as_str());
    }
    Ok(ended)
}

/// Sends the buyer's signed `buy_ticket` (base64) of an SOL purchase, then
/// publishes the ticket. Only a lone `buy_ticket` of this event and tier by
/// the buyer, at no more than the quoted price, is accepted.
pub async fn submit(
    services: &Services,
    buyer: &PublicKeyBytes,
    purchase_id: &str,
    signed: &str,
) -> Result<PurchaseDetail, ServiceError> {
    let mut purchase = purchase_of(services, buyer, purchase_id).await?;
    if purchase.method != PaymentMethod::Sol {
        return Err(ServiceError::Conflict(
            "a card purchase is paid through the payment provider".into(),
        ));
    }
    match purchase.status {
        PurchaseStatus::Pending | PurchaseStatus::Expired => {}
        PurchaseStatus::Fulfilled | PurchaseStatus::Minting => {
            return detail(services, purchase).await;
        }
        other => {
            return Err(ServiceError::Conflict(format!(
                "the purchase is {}",
                other.as_str()
            )));
        }
    }
    let ctx = chain_ctx(services)?;
    let transaction = decode_tx(signed)
        .ok_or_else(|| ServiceError::invalid("transaction", "not a base64 legacy transaction"))?;
    let event_address =
        ticketing::client::event_address(&ctx.authority.pubkey(), purchase.event_id).0;
    check_buy_ticket(&transaction, &purchase, &event_address)?;
    if transaction.verify().is_err() {
        return Err(ServiceError::invalid(
            "transaction",
            "not signed by the buyer",
        ));
    }
    // The ticket it buys is the event's next one; if another sale took that
    // id since the transaction was built, it would only fail on chain (and
    // cost the buyer a fee), so say so now.
    let next_id = event_on_chain(services, purchase.event_id).await?.minted;
    let names_next = transaction
        .message
        .instructions
        .first()
        .and_then(|i| i.accounts.get(2))
        .and_then(|k| transaction.message.account_keys.get(usize::from(*k)))
        == Some(&ticketing::client::ticket_address(&event_address, next_id).0);
    if !names_next {
        return Err(ServiceError::Conflict(
            "another ticket was sold since this transaction was made; fetch the purchase again for a new one".into(),
        ));
    }
    // A reservation that ran out takes its seat again if one is left.
    let now = services.clock.now();
    if purchase.status == PurchaseStatus::Expired || purchase.expires_at <= now {
        let expires_at = now + i64::from(services.config.api.reservation_secs);
        if !services
            .store
            .retake_seat(&purchase, expires_at, now)
            .await?
        {
            return Err(inventory::sold_out(services, purchase.event_id).await);
        }
        purchase.holds_seat = true;
    }
    // Recorded before it is sent: a crash from here on is repaired by
    // looking the signature up.
    let now = services.clock.now();
    let recorded = services
        .store
        .record_buy_transaction(
            &purchase.id,
            signed,
            &transaction.signatures[0].to_string(),
            next_id,
            now + i64::from(services.config.api.purchase_lease_secs),
            now,
        )
        .await?;
    if !recorded {
        return Err(ServiceError::Conflict(
            "another transaction of this purchase is being sent".into(),
        ));
    }
    crate::failpoint::failpoint("purchase.sol_recorded");
    let deadline = Instant::now() + Duration::from_secs(60);
    match crate::chain::ops::wait_for(ctx.chain.as_ref(), &transaction, deadline).await {
        Ok(()) => {
            crate::failpoint::failpoint("purchase.after_chain");
            let purchase = complete(services, &purchase.id).await?;
            detail(services, purchase).await
        }
        Err(ChainError::Unavailable(e)) => {
            // Outcome unknown: the purchase stays `minting` and the
            // purchase worker settles it by signature.
            tracing::warn!(purchase = %purchase.id, error = %e, "SOL purchase sent, outcome not known yet");
            let purchase = purchase_of(services, buyer, purchase_id).await?;
            detail(services, purchase).await
        }
        Err(e) => {
            services
                .store
                .reopen_purchase(&purchase.id, &e.to_string(), services.clock.now())
                .await?;
            Err(match e {
                ChainError::BlockhashExpired => ServiceError::Conflict(
                    "the transaction expired; fetch the purchase again for a new one".into(),
                ),
                ChainError::Refused(m) => ServiceError::ChainRefused(format!(
                    "the chain refused the purchase ({m}); if another ticket was sold meanwhile, fetch the purchase again for a new transaction"
                )),
                other => other.into(),
            })
        }
    }
}

/// A lone `buy_ticket` by `purchase`'s buyer of its event and tier, paying
/// at most its amount.
fn check_buy_ticket(
    transaction: &Transaction,
    purchase: &Purchase,
    event_address: &Pubkey,
) -> Result<(), ServiceError> {
    use anchor_lang::{AnchorDeserialize, Discriminator};
    let refuse =
        || ServiceError::invalid("transaction", "not this purchase's buy_ticket by its buyer");
    let [instruction] = transaction.message.instructions.as_slice() else {
        return Err(ServiceError::invalid(
            "transaction",
            "must hold exactly one instruction",
        ));
    };
    let keys = &transaction.message.account_keys;
    let account = |i: usize| {
        instruction
            .accounts
            .get(i)
            .and_then(|k| keys.get(usize::from(*k)))
    };
    if keys.get(usize::from(instruction.program_id_index)) != Some(&ticketing::ID)
        || keys.first() != Some(&purchase.buyer)
        || account(0) != Some(&purchase.buyer)
        || account(1) != Some(event_address)
    {
        return Err(refuse());
    }
    let data = instruction
        .data
        .strip_prefix(ticketing::instruction::BuyTicket::DISCRIMINATOR)
        .ok_or_else(refuse)?;
    let args =
        ticketing::instruction::BuyTicket::deserialize(&mut &data[..]).map_err(|_| refuse())?;
    if args.tier != purchase.tier || args.max_price > purchase.amount {
        return Err(refuse());
    }
    Ok(())
}

/// The purchase's transaction landed: publish the ticket (gates learn it),
/// mark the purchase fulfilled, send the confirmation.
async fn complete(services: &Services, purchase_id: &str) -> Result<Purchase, ServiceError> {
    let purchase = load(services, purchase_id).await?;
    let ticket_id = purchase
        .ticket_id
        .ok_or_else(|| ServiceError::Internal("a landed purchase without its ticket id".into()))?;
    refresh_tickets(services, purchase.event_id, &[ticket_id]).await?;
    services
        .store
        .fulfil_purchase(purchase_id, ticket_id, services.clock.now())
        .await?;
    services
        .metrics
        .purchase(purchase.method.as_str(), PurchaseStatus::Fulfilled.as_str());
    tracing::info!(purchase = %purchase_id, event = purchase.event_id, ticket_id, "ticket sold");
    let purchase = services
        .store
        .purchase(purchase_id)
        .await?
        .ok_or_else(|| ServiceError::Internal("purchase vanished".into()))?;
    mail::send(services, &purchase).await;
    Ok(purchase)
}

/// Applies a verified payment webhook once: a succeeded payment marks its
/// purchase paid and starts the mint (in the background: minting takes a
/// chain round trip and the provider wants a quick answer); a failed one
/// releases the seat.
pub async fn apply_webhook(
    services: &Services,
    event: &WebhookEvent,
) -> Result<WebhookEffect, ServiceError> {
    let outcome = match &event.kind {
        WebhookKind::PaymentSucceeded(intent) => PaymentOutcome::Succeeded {
            intent: &intent.id,
            amount: intent.amount,
            currency: &intent.currency,
        },
        WebhookKind::PaymentFailed { intent, reason } => PaymentOutcome::Failed {
            intent: &intent.id,
            reason: reason.clone(),
        },
        WebhookKind::Other => PaymentOutcome::Other,
    };
    let effect = services
        .store
        .apply_payment_webhook(&event.id, &event.event_type, &outcome, services.clock.now())
        .await?;
    if let WebhookEffect::Handled { paid: Some(id) } = &effect {
        services
            .metrics
            .purchase(PaymentMethod::Card.as_str(), PurchaseStatus::Paid.as_str());
        let services = services.clone();
        let id = id.clone();
        tokio::spawn(async move {
            if let Err(e) = fulfil_card(&services, &id).await {
                tracing::warn!(purchase = %id, error = %e, "mint after payment failed; the purchase worker retries");
            }
        });
    }
    Ok(effect)
}
