//! The purchase worker: each round expires reservations that ran out (and
//! cancels their PaymentIntents), mints or settles paid purchases whose
//! lease is free, retries owed mail and refunds card payments that could not
//! get a ticket.

use std::time::{Duration, Instant};

use solana_sdk::signature::{Signature, Signer};
use solana_sdk::transaction::Transaction;
use tokio::sync::watch;

use super::{
    PaymentMethod, PurchaseStatus, chain_ctx, complete, decode_tx, encode_tx, end_without_ticket,
    load, mail,
};
use crate::adapters::payments::PaymentError;
use crate::chain::ChainError;
use crate::services::organizer::event_on_chain;
use crate::services::{ServiceError, Services};

/// Most mint attempts of one paid purchase in one go (another sale taking
/// the ticket id first is the usual reason to try again).
const MINT_ATTEMPTS: usize = 5;

/// Mints the ticket of a paid card purchase, once. Whoever claims the
/// purchase's lease does it; a recorded transaction is settled by its
/// signature before anything new is signed.
pub async fn fulfil_card(services: &Services, purchase_id: &str) -> Result<(), ServiceError> {
    let now = services.clock.now();
    let lease_until = now + i64::from(services.config.api.purchase_lease_secs);
    if !services
        .store
        .lease_for_minting(purchase_id, lease_until, now)
        .await?
    {
        return Ok(());
    }
    let ctx = chain_ctx(services)?;
    for _ in 0..MINT_ATTEMPTS {
        let purchase = load(services, purchase_id).await?;
        if let Some(recorded) = purchase.mint_tx.as_deref().and_then(decode_tx) {
            match settle_recorded(services, &recorded).await? {
                Settled::Landed => {
                    complete(services, purchase_id).await?;
                    return Ok(());
                }
                Settled::Unknown => return Ok(()),
                Settled::Gone(error) => {
                    let now = services.clock.now();
                    if purchase.method == PaymentMethod::Sol {
                        services
                            .store
                            .reopen_purchase(purchase_id, &error, now)
                            .await?;
                        return Ok(());
                    }
                    services.store.clear_mint(purchase_id, &error, now).await?;
                }
            }
        }
        if purchase.method == PaymentMethod::Sol {
            return Ok(());
        }
        // Sign a mint of the next ticket id and record it before sending;
        // the event's lock keeps this server's mints from racing for it.
        let turn = services.mint_locks.lock(purchase.event_id).await;
        let event = event_on_chain(services, purchase.event_id).await?;
        let event_address =
            ticketing::client::event_address(&ctx.authority.pubkey(), purchase.event_id).0;
        let blockhash = ctx.chain.latest_blockhash().await?;
        let transaction = Transaction::new_signed_with_payer(
            &[ticketing::client::mint_tickets(
                &ctx.authority.pubkey(),
                &event_address,
                event.minted,
                &[(purchase.buyer, purchase.tier)],
                event.token_standard,
            )],
            Some(&ctx.authority.pubkey()),
            &[&ctx.authority],
            blockhash,
        );
        services
            .store
            .record_mint_transaction(
                purchase_id,
                &encode_tx(&transaction)?,
                &transaction.signatures[0].to_string(),
                event.minted,
                services.clock.now(),
            )
            .await?;
        crate::failpoint::failpoint("purchase.mint_recorded");
        let deadline = Instant::now() + Duration::from_secs(60);
        let sent = crate::chain::ops::wait_for(ctx.chain.as_ref(), &transaction, deadline).await;
        drop(turn);
        match sent {
            Ok(()) => {
                crate::failpoint::failpoint("purchase.after_chain");
                complete(services, purchase_id).await?;
                return Ok(());
            }
            Err(ChainError::Unavailable(e)) => {
                // Settled by signature in a later round.
                return Err(ServiceError::ChainUnavailable(e));
            }
            Err(e) => {
                // Refused or expired: nothing landed. If the event sold out
                // on chain, no retry helps.
                let ev = event_on_chain(services, purchase.event_id).await?;
                let sold_out = ev.minted >= ev.capacity
                    || ev
                        .tiers
                        .get(usize::from(purchase.tier))
                        .is_none_or(|t| t.sold >= t.supply);
                let now = services.clock.now();
                if sold_out {
                    tracing::error!(purchase = %purchase_id, "paid, but the chain has no ticket left; refund it");
                    services
                        .store
                        .mark_refund_due(purchase_id, &format!("sold out on chain: {e}"), now)
                        .await?;
                    services.metrics.purchase(
                        PaymentMethod::Card.as_str(),
                        PurchaseStatus::RefundDue.as_str(),
                    );
                    return Ok(());
                }
                services
                    .store
                    .clear_mint(purchase_id, &e.to_string(), now)
                    .await?;
            }
        }
    }
    // Leave it leased to nobody: the next round tries again.
    services.store.release_mint_lease(purchase_id).await?;
    Ok(())
}

enum Settled {
    Landed,
    /// Not seen and its blockhash still valid, or the chain did not answer.
    Unknown,
    /// It never landed and never will (refused, or expired unseen).
    Gone(String),
}

async fn settle_recorded(
    services: &Services,
    transaction: &Transaction,
) -> Result<Settled, ServiceError> {
    let ctx = chain_ctx(services)?;
    let signature: Signature = transaction.signatures[0];
    let deadline = Instant::now() + Duration::from_secs(30);
    match crate::chain::ops::wait_for(ctx.chain.as_ref(), transaction, deadline).await {
        Ok(()) => Ok(Settled::Landed),
        Err(ChainError::BlockhashExpired) => Ok(Settled::Gone(format!(
            "transaction {signature} expired unseen"
        ))),
        Err(ChainError::Refused(e)) => Ok(Settled::Gone(e)),
        Err(ChainError::Unavailable(e)) => {
            tracing::warn!(%signature, error = %e, "cannot settle a purchase's transaction yet");
            Ok(Settled::Unknown)
        }
    }
}

/// What one round of [`run`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RoundReport {
    /// Reservations that ran out and gave their seat back.
    pub expired: usize,
    /// Purchases looked at for minting or settling.
    pub settled: usize,
    /// Confirmation mails retried.
    pub mailed: usize,
    /// Card payments refunded because no ticket could be had for them.
    pub refunded: usize,
}

/// One round of the purchase worker: expire reservations, mint or settle
/// paid purchases whose lease is free, retry mail, refund what is due.
pub async fn round(services: &Services) -> Result<RoundReport, ServiceError> {
    let now = services.clock.now();
    let mut report = RoundReport::default();
    for purchase in services.store.expired_reservations(now).await? {
        let ended = end_without_ticket(
            services,
            &purchase,
            PurchaseStatus::Expired,
            "the reservation ran out",
        )
        .await?;
        if ended {
            report.expired += 1;
            if let (Some(intent), Some(provider)) = (&purchase.payment_intent, &services.payments) {
                // So the buyer can no longer pay for a seat that is gone; if
                // the payment succeeded meanwhile, its webhook sells a seat
                // again or marks a refund.
                if let Err(e) = provider.cancel_payment_intent(intent).await {
                    tracing::info!(purchase = %purchase.id, error = %e, "payment intent not cancelled");
                }
            }
        }
    }
    for id in services.store.unsettled_purchases(now).await? {
        report.settled += 1;
        if let Err(e) = fulfil_card(services, &id).await {
            tracing::warn!(purchase = %id, error = %e, "purchase not settled this round");
        }
    }
    for purchase in services.store.purchases_owed_mail().await? {
        mail::send(services, &purchase).await;
        report.mailed += 1;
    }
    report.refunded = refund_due(services).await?;
    Ok(report)
}

/// Refunds card purchases that were paid but could not get a ticket (paid
/// after their seat was sold again, or for another amount). The idempotency
/// key is the purchase's, so a crash between the provider's answer and the
/// record below, or two servers doing this at once, refund once.
async fn refund_due(services: &Services) -> Result<usize, ServiceError> {
    let Some(provider) = &services.payments else {
        return Ok(0);
    };
    let mut refunded = 0;
    for purchase in services.store.refunds_due().await? {
        let Some(intent) = purchase.payment_intent.as_deref() else {
            continue;
        };
        let key = format!("refund-{}", purchase.id);
        let (status, refund_id, note) = match provider.refund_payment_intent(intent, &key).await {
            Ok(refund) if matches!(refund.status.as_str(), "failed" | "canceled") => (
                PurchaseStatus::RefundFailed,
                Some(refund.id),
                format!("the refund {}", refund.status),
            ),
            Ok(refund) => (PurchaseStatus::Refunded, Some(refund.id), String::new()),
            Err(PaymentError::Rejected { code, message, .. })
                if code.as_deref() == Some("charge_already_refunded") =>
            {
                (
                    PurchaseStatus::Refunded,
                    None,
                    format!("already refunded: {message}"),
                )
            }
            Err(e) if e.is_retryable() => {
                tracing::warn!(purchase = %purchase.id, error = %e, "refund not made this round");
                continue;
            }
            Err(e) => (PurchaseStatus::RefundFailed, None, e.to_string()),
        };
        if status == PurchaseStatus::RefundFailed {
            tracing::error!(purchase = %purchase.id, intent, reason = %note, "refund refused; the buyer must be refunded by hand");
        }
        let error = if note.is_empty() {
            purchase.error.clone().unwrap_or_default()
        } else {
            note
        };
        let recorded = services
            .store
            .finish_refund(
                &purchase.id,
                status,
                refund_id.as_deref(),
                &error,
                services.clock.now(),
            )
            .await?;
        if recorded {
            services
                .metrics
                .purchase(PaymentMethod::Card.as_str(), status.as_str());
            if status == PurchaseStatus::Refunded {
                refunded += 1;
                // A refunded buyer is told by mail (retried like a
                // confirmation).
                if let Some(purchase) = services.store.purchase(&purchase.id).await? {
                    mail::send(services, &purchase).await;
                }
            }
        }
    }
    Ok(refunded)
}

/// How often the purchase worker looks for work.
pub const ROUND_INTERVAL: Duration = Duration::from_secs(2);

/// The purchase worker: [`round`] every [`ROUND_INTERVAL`] until `stop`.
pub async fn run(services: Services, mut stop: watch::Receiver<bool>) {
    loop {
        if let Err(e) = round(&services).await {
            tracing::warn!(error = %e, "purchase round failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(ROUND_INTERVAL) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}
