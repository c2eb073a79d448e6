//! A purchase after its reservation: the recorded mint or buy transaction
//! and its lease, fulfilment, owed mail, refunds, and the payment webhook's
//! effect, applied in one transaction with the record that the webhook was
//! handled.

use sqlx::Row;

use super::{
    MailStatus, PaymentMethod, Purchase, PurchaseStatus, purchase_of_row, purchases_of_rows,
};
use crate::store::inventory::{release_in, take_in};
use crate::store::payments::record_webhook_event;
use crate::store::{Store, StoreError};

/// What a verified payment webhook says about a PaymentIntent.
#[derive(Debug, Clone)]
pub enum PaymentOutcome<'a> {
    Succeeded {
        intent: &'a str,
        amount: u64,
        currency: &'a str,
    },
    Failed {
        intent: &'a str,
        reason: Option<String>,
    },
    /// An event type purchases do not act on.
    Other,
}

/// What applying a payment webhook did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookEffect {
    /// The event was handled before; nothing was done.
    Duplicate,
    /// The intent is not one of this server's purchases.
    UnknownIntent,
    /// Recorded; `Some(purchase)` when that purchase is now paid and wants
    /// its ticket minted.
    Handled { paid: Option<String> },
}

/// Sets a purchase's status and error (an empty error clears it).
async fn set_status(
    conn: &mut sqlx::AnyConnection,
    purchase_id: &str,
    status: PurchaseStatus,
    error: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE purchases SET status = $2, error = $3, updated_at = $4 WHERE purchase_id = $1",
    )
    .bind(purchase_id)
    .bind(status.as_str())
    .bind((!error.is_empty()).then(|| error.to_owned()))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn set_holds_seat(
    conn: &mut sqlx::AnyConnection,
    purchase_id: &str,
    holds: bool,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE purchases SET holds_seat = $2 WHERE purchase_id = $1")
        .bind(purchase_id)
        .bind(i64::from(holds))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl Store {
    /// Records the buyer's signed SOL transaction (buying ticket
    /// `ticket_id`) on a pending purchase, before it is sent: a crash from
    /// then on is repaired by looking the signature up. `false` when the
    /// purchase was no longer pending (another transaction is being sent).
    pub async fn record_buy_transaction(
        &self,
        purchase_id: &str,
        transaction: &str,
        signature: &str,
        ticket_id: u32,
        lease_until: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let recorded = sqlx::query(
            "UPDATE purchases SET status = $7, mint_tx = $2, mint_signature = $3,
                 lease_until = $4, updated_at = $5, ticket_id = $6
             WHERE purchase_id = $1 AND status = $8",
        )
        .bind(purchase_id)
        .bind(transaction)
        .bind(signature)
        .bind(lease_until)
        .bind(now)
        .bind(i64::from(ticket_id))
        .bind(PurchaseStatus::Minting.as_str())
        .bind(PurchaseStatus::Pending.as_str())
        .execute(&self.pool)
        .await?;
        Ok(recorded.rows_affected() == 1)
    }

    /// Takes the minting lease of a paid purchase (or of a minting one whose
    /// lease ran out) until `lease_until`. `false` when someone else holds it
    /// or there is nothing to mint.
    pub async fn lease_for_minting(
        &self,
        purchase_id: &str,
        lease_until: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let claimed = sqlx::query(
            "UPDATE purchases SET status = $4, lease_until = $2, attempts = attempts + 1,
                 updated_at = $3
             WHERE purchase_id = $1
               AND (status = $5 OR (status = $4 AND lease_until <= $3))",
        )
        .bind(purchase_id)
        .bind(lease_until)
        .bind(now)
        .bind(PurchaseStatus::Minting.as_str())
        .bind(PurchaseStatus::Paid.as_str())
        .execute(&self.pool)
        .await?;
        Ok(claimed.rows_affected() == 1)
    }

    /// Records the server's signed mint of ticket `ticket_id` on a minting
    /// purchase, before it is sent.
    pub async fn record_mint_transaction(
        &self,
        purchase_id: &str,
        transaction: &str,
        signature: &str,
        ticket_id: u32,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE purchases SET mint_tx = $2, mint_signature = $3, ticket_id = $4, updated_at = $5
             WHERE purchase_id = $1 AND status = $6",
        )
        .bind(purchase_id)
        .bind(transaction)
        .bind(signature)
        .bind(i64::from(ticket_id))
        .bind(now)
        .bind(PurchaseStatus::Minting.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets a minting purchase's recorded transaction (it never landed),
    /// keeping it minting under its lease.
    pub async fn clear_mint(
        &self,
        purchase_id: &str,
        error: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE purchases SET mint_tx = NULL, mint_signature = NULL, ticket_id = NULL,
                 error = $2, updated_at = $3
             WHERE purchase_id = $1 AND status = $4",
        )
        .bind(purchase_id)
        .bind(error)
        .bind(now)
        .bind(PurchaseStatus::Minting.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A minting purchase whose transaction did not land goes back: a SOL
    /// purchase to pending, a card purchase to paid (to be minted anew).
    pub async fn reopen_purchase(
        &self,
        purchase_id: &str,
        error: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE purchases SET
                 status = CASE WHEN method = $4 THEN $5 ELSE $6 END,
                 mint_tx = NULL, mint_signature = NULL, ticket_id = NULL, lease_until = 0,
                 error = $2, updated_at = $3
             WHERE purchase_id = $1 AND status = $7",
        )
        .bind(purchase_id)
        .bind(error)
        .bind(now)
        .bind(PaymentMethod::Sol.as_str())
        .bind(PurchaseStatus::Pending.as_str())
        .bind(PurchaseStatus::Paid.as_str())
        .bind(PurchaseStatus::Minting.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A paid card purchase the chain has no ticket left for: it is to be
    /// refunded, with no mint recorded.
    pub async fn mark_refund_due(
        &self,
        purchase_id: &str,
        error: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE purchases SET status = $4, mint_tx = NULL, mint_signature = NULL,
                 ticket_id = NULL, error = $2, updated_at = $3
             WHERE purchase_id = $1",
        )
        .bind(purchase_id)
        .bind(error)
        .bind(now)
        .bind(PurchaseStatus::RefundDue.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Gives a minting purchase's lease up, so the next worker round takes it.
    pub async fn release_mint_lease(&self, purchase_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE purchases SET lease_until = 0 WHERE purchase_id = $1 AND status = $2")
            .bind(purchase_id)
            .bind(PurchaseStatus::Minting.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Marks a minting (or paid) purchase fulfilled with `ticket_id`; its
    /// confirmation is owed when it has an address.
    pub async fn fulfil_purchase(
        &self,
        purchase_id: &str,
        ticket_id: u32,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE purchases SET status = $4, ticket_id = $2, error = NULL,
                 mail_status = CASE WHEN email IS NULL THEN $7 ELSE $8 END, updated_at = $3
             WHERE purchase_id = $1 AND status IN ($5, $6)",
        )
        .bind(purchase_id)
        .bind(i64::from(ticket_id))
        .bind(now)
        .bind(PurchaseStatus::Fulfilled.as_str())
        .bind(PurchaseStatus::Minting.as_str())
        .bind(PurchaseStatus::Paid.as_str())
        .bind(MailStatus::None.as_str())
        .bind(MailStatus::Pending.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records what became of a purchase's mail, and lets go of its lease.
    pub async fn set_purchase_mail_status(
        &self,
        purchase_id: &str,
        status: MailStatus,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE purchases SET mail_status = $2, mail_lease_until = NULL WHERE purchase_id = $1",
        )
        .bind(purchase_id)
        .bind(status.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes the sending of a purchase's owed mail until `now + lease_secs`:
    /// `true` for the one caller that gets it while the mail is still owed
    /// and nobody else holds it.
    pub async fn claim_purchase_mail(
        &self,
        purchase_id: &str,
        now: i64,
        lease_secs: i64,
    ) -> Result<bool, StoreError> {
        let claimed = sqlx::query(
            "UPDATE purchases SET mail_lease_until = $2 + $3
             WHERE purchase_id = $1 AND mail_status = $4
                 AND (mail_lease_until IS NULL OR mail_lease_until <= $2)",
        )
        .bind(purchase_id)
        .bind(now)
        .bind(lease_secs)
        .bind(MailStatus::Pending.as_str())
        .execute(&self.pool)
        .await?;
        Ok(claimed.rows_affected() == 1)
    }

    /// Lets go of a mail's lease without an outcome (the relay could not
    /// take it now), so the next round tries again at once.
    pub async fn release_purchase_mail(&self, purchase_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE purchases SET mail_lease_until = NULL WHERE purchase_id = $1")
            .bind(purchase_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Pending reservations that ran out by `now`, oldest first (200 at most).
    pub async fn expired_reservations(&self, now: i64) -> Result<Vec<Purchase>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM purchases WHERE status = $2 AND expires_at <= $1
             ORDER BY expires_at LIMIT 200",
        )
        .bind(now)
        .bind(PurchaseStatus::Pending.as_str())
        .fetch_all(&self.pool)
        .await?;
        purchases_of_rows(&rows)
    }

    /// Ids of purchases to mint or settle: paid, or minting with a lease run
    /// out by `now` (100 at most, least recently changed first).
    pub async fn unsettled_purchases(&self, now: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT purchase_id FROM purchases
             WHERE status = $2 OR (status = $3 AND lease_until <= $1)
             ORDER BY updated_at LIMIT 100",
        )
        .bind(now)
        .bind(PurchaseStatus::Paid.as_str())
        .bind(PurchaseStatus::Minting.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get("purchase_id").map_err(StoreError::from))
            .collect()
    }

    /// Fulfilled or refunded purchases whose mail is still owed (50 at most).
    pub async fn purchases_owed_mail(&self) -> Result<Vec<Purchase>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM purchases WHERE status IN ($1, $2) AND mail_status = $3
             ORDER BY updated_at LIMIT 50",
        )
        .bind(PurchaseStatus::Fulfilled.as_str())
        .bind(PurchaseStatus::Refunded.as_str())
        .bind(MailStatus::Pending.as_str())
        .fetch_all(&self.pool)
        .await?;
        purchases_of_rows(&rows)
    }

    /// Card purchases waiting for their refund (20 at most).
    pub async fn refunds_due(&self) -> Result<Vec<Purchase>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM purchases WHERE status = $1 AND method = $2
                 AND payment_intent IS NOT NULL
             ORDER BY updated_at LIMIT 20",
        )
        .bind(PurchaseStatus::RefundDue.as_str())
        .bind(PaymentMethod::Card.as_str())
        .fetch_all(&self.pool)
        .await?;
        purchases_of_rows(&rows)
    }

    /// Records the outcome of a due refund (`Refunded` or `RefundFailed`);
    /// a refunded buyer with an address is owed a mail. `false` when the
    /// purchase was no longer due (another server recorded it).
    pub async fn finish_refund(
        &self,
        purchase_id: &str,
        status: PurchaseStatus,
        refund_id: Option<&str>,
        error: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE purchases SET status = $2, refund_id = $3, error = $4, updated_at = $5,
                 mail_status = CASE WHEN $2 = $7 AND email IS NOT NULL
                                    THEN $8 ELSE mail_status END
             WHERE purchase_id = $1 AND status = $6",
        )
        .bind(purchase_id)
        .bind(status.as_str())
        .bind(refund_id.map(str::to_owned))
        .bind(error)
        .bind(now)
        .bind(PurchaseStatus::RefundDue.as_str())
        .bind(PurchaseStatus::Refunded.as_str())
        .bind(MailStatus::Pending.as_str())
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// Applies a verified payment webhook (`event_id` of `event_type`) in
    /// one transaction with the record that it was handled, so a redelivery
    /// changes nothing.
    pub async fn apply_payment_webhook(
        &self,
        event_id: &str,
        event_type: &str,
        outcome: &PaymentOutcome<'_>,
        now: i64,
    ) -> Result<WebhookEffect, StoreError> {
        let mut tx = self.pool.begin().await?;
        if !record_webhook_event(&mut tx, event_id, event_type, now).await? {
            return Ok(WebhookEffect::Duplicate);
        }
        let intent = match outcome {
            PaymentOutcome::Succeeded { intent, .. } | PaymentOutcome::Failed { intent, .. } => {
                *intent
            }
            PaymentOutcome::Other => {
                tx.commit().await?;
                return Ok(WebhookEffect::Handled { paid: None });
            }
        };
        let row = sqlx::query("SELECT * FROM purchases WHERE payment_intent = $1")
            .bind(intent)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(purchase) = row.as_ref().map(purchase_of_row).transpose()? else {
            tracing::warn!(intent, "webhook for a payment this server did not start");
            tx.commit().await?;
            return Ok(WebhookEffect::UnknownIntent);
        };
        let mut paid = false;
        match outcome {
            PaymentOutcome::Succeeded {
                amount, currency, ..
            } => {
                if *amount != purchase.amount || *currency != purchase.currency {
                    tracing::error!(purchase = %purchase.id, intent, "paid amount differs from the price");
                    set_status(
                        &mut tx,
                        &purchase.id,
                        PurchaseStatus::RefundDue,
                        "paid amount differs from the price",
                        now,
                    )
                    .await?;
                } else if purchase.status == PurchaseStatus::Pending {
                    set_status(&mut tx, &purchase.id, PurchaseStatus::Paid, "", now).await?;
                    paid = true;
                } else if matches!(
                    purchase.status,
                    PurchaseStatus::Expired | PurchaseStatus::Failed
                ) {
                    // Paid after its seat was released: sell it one if any
                    // is left.
                    if take_in(&mut tx, purchase.event_id, &[(purchase.tier, 1)]).await? {
                        set_holds_seat(&mut tx, &purchase.id, true).await?;
                        set_status(&mut tx, &purchase.id, PurchaseStatus::Paid, "", now).await?;
                        paid = true;
                    } else {
                        tracing::error!(purchase = %purchase.id, "paid after the seat was released and the tier sold out; refund it");
                        set_status(
                            &mut tx,
                            &purchase.id,
                            PurchaseStatus::RefundDue,
                            "paid after the reservation ran out and the tier sold out",
                            now,
                        )
                        .await?;
                    }
                }
            }
            PaymentOutcome::Failed { reason, .. } => {
                if purchase.status == PurchaseStatus::Pending {
                    let reason = reason.as_deref().unwrap_or("the payment failed");
                    set_status(&mut tx, &purchase.id, PurchaseStatus::Failed, reason, now).await?;
                    set_holds_seat(&mut tx, &purchase.id, false).await?;
                    if purchase.holds_seat {
                        release_in(&mut tx, purchase.event_id, &[(purchase.tier, 1)]).await?;
                    }
                }
            }
            PaymentOutcome::Other => {}
        }
        tx.commit().await?;
        Ok(WebhookEffect::Handled {
            paid: paid.then_some(purchase.id),
        })
    }
}
