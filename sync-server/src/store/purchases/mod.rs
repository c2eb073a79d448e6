//! Purchases (`purchases`): each buyer's purchase from the reserved seat to
//! the minted ticket or the refund, with the seat it holds, its payment, its
//! recorded mint transaction and its mail. Every status change here is one
//! conditional UPDATE on the status the caller expects, so two servers (or a
//! webhook and the worker) never both move the same purchase.

use serde::{Deserialize, Serialize};
use solana_sdk::pubkey::Pubkey;
use sqlx::Row;
use sqlx::any::AnyRow;

mod settle;

pub use settle::{PaymentOutcome, WebhookEffect};

use super::inventory::{release_in, take_in};
use super::{Store, StoreError, corrupt, i64_of, param_list};

/// How a buyer pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PaymentMethod {
    /// By card through the payment provider; the server mints.
    Card,
    /// In SOL from the buyer's wallet, paid and minted in one transaction.
    Sol,
}

impl PaymentMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentMethod::Card => "card",
            PaymentMethod::Sol => "sol",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "card" => Ok(PaymentMethod::Card),
            "sol" => Ok(PaymentMethod::Sol),
            other => Err(corrupt(format!("purchase method {other:?}"))),
        }
    }
}

/// Where a purchase stands: `Pending` (seat held, waiting for payment) ->
/// `Paid` (card paid, no ticket yet) -> `Minting` (mint transaction recorded
/// before it is sent) -> `Fulfilled`; or `Pending` -> `Expired` | `Failed`
/// (seat released); or `RefundDue` (paid, but no ticket could be had) ->
/// `Refunded` | `RefundFailed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurchaseStatus {
    Pending,
    Paid,
    Minting,
    Fulfilled,
    Expired,
    Failed,
    RefundDue,
    Refunded,
    RefundFailed,
}

impl PurchaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PurchaseStatus::Pending => "pending",
            PurchaseStatus::Paid => "paid",
            PurchaseStatus::Minting => "minting",
            PurchaseStatus::Fulfilled => "fulfilled",
            PurchaseStatus::Expired => "expired",
            PurchaseStatus::Failed => "failed",
            PurchaseStatus::RefundDue => "refund_due",
            PurchaseStatus::Refunded => "refunded",
            PurchaseStatus::RefundFailed => "refund_failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => PurchaseStatus::Pending,
            "paid" => PurchaseStatus::Paid,
            "minting" => PurchaseStatus::Minting,
            "fulfilled" => PurchaseStatus::Fulfilled,
            "expired" => PurchaseStatus::Expired,
            "failed" => PurchaseStatus::Failed,
            "refund_due" => PurchaseStatus::RefundDue,
            "refunded" => PurchaseStatus::Refunded,
            "refund_failed" => PurchaseStatus::RefundFailed,
            _ => return None,
        })
    }
}

/// Whether a purchase's mail (confirmation or refund notice) is owed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailStatus {
    /// No mail is owed (no address, or nothing to tell yet).
    None,
    /// Owed; retried by the purchase worker until sent or refused.
    Pending,
    Sent,
    /// Refused for good by the relay.
    Failed,
}

impl MailStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MailStatus::None => "none",
            MailStatus::Pending => "pending",
            MailStatus::Sent => "sent",
            MailStatus::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        Ok(match text {
            "none" => MailStatus::None,
            "pending" => MailStatus::Pending,
            "sent" => MailStatus::Sent,
            "failed" => MailStatus::Failed,
            other => return Err(corrupt(format!("purchase mail status {other:?}"))),
        })
    }
}

/// One row of `purchases`.
#[derive(Debug, Clone)]
pub struct Purchase {
    pub id: String,
    pub event_id: u64,
    pub tier: u8,
    pub buyer: Pubkey,
    pub email: Option<String>,
    pub method: PaymentMethod,
    pub status: PurchaseStatus,
    /// Until when the seat is held for payment (Unix seconds).
    pub expires_at: i64,
    pub holds_seat: bool,
    pub payment_intent: Option<String>,
    /// In the currency's smallest unit (cents, or lamports for `sol`).
    pub amount: u64,
    pub currency: String,
    pub ticket_id: Option<u32>,
    /// The recorded mint (or buy) transaction, bincode base64.
    pub mint_tx: Option<String>,
    pub error: Option<String>,
    pub mail_status: MailStatus,
    pub refund_id: Option<String>,
    pub updated_at: i64,
}

fn purchase_of_row(r: &AnyRow) -> Result<Purchase, StoreError> {
    let int = |c: &str| r.try_get::<i64, _>(c);
    let text = |c: &str| r.try_get::<String, _>(c);
    let opt = |c: &str| r.try_get::<Option<String>, _>(c);
    let status = text("status")?;
    Ok(Purchase {
        id: text("purchase_id")?,
        event_id: u64::try_from(int("event_id")?).unwrap_or_default(),
        tier: u8::try_from(int("tier")?).unwrap_or_default(),
        buyer: text("buyer")?
            .parse()
            .map_err(|_| corrupt("purchase buyer is not a key"))?,
        email: opt("email")?,
        method: PaymentMethod::parse(&text("method")?)?,
        status: PurchaseStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("purchase status {status:?}")))?,
        expires_at: int("expires_at")?,
        holds_seat: int("holds_seat")? != 0,
        payment_intent: opt("payment_intent")?,
        amount: u64::try_from(int("amount")?).unwrap_or_default(),
        currency: text("currency")?,
        ticket_id: r
            .try_get::<Option<i64>, _>("ticket_id")?
            .and_then(|t| u32::try_from(t).ok()),
        mint_tx: opt("mint_tx")?,
        error: opt("error")?,
        mail_status: MailStatus::parse(&text("mail_status")?)?,
        refund_id: opt("refund_id")?,
        updated_at: int("updated_at")?,
    })
}

pub(super) fn purchases_of_rows(rows: &[AnyRow]) -> Result<Vec<Purchase>, StoreError> {
    rows.iter().map(purchase_of_row).collect()
}

/// A reservation to record: the seat is taken with it.
#[derive(Debug, Clone)]
pub struct NewPurchase<'a> {
    pub id: &'a str,
    pub event_id: u64,
    pub tier: u8,
    /// The buyer's wallet, base58.
    pub buyer: &'a str,
    pub email: Option<&'a str>,
    pub method: PaymentMethod,
    pub expires_at: i64,
    pub amount: u64,
    pub currency: &'a str,
    pub now: i64,
}

impl Store {
    pub async fn purchase(&self, purchase_id: &str) -> Result<Option<Purchase>, StoreError> {
        sqlx::query("SELECT * FROM purchases WHERE purchase_id = $1")
            .bind(purchase_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(purchase_of_row)
            .transpose()
    }

    /// A buyer's last 100 purchases, newest first.
    pub async fn purchases_of_buyer(&self, buyer: &str) -> Result<Vec<Purchase>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM purchases WHERE buyer = $1
             ORDER BY created_at DESC, purchase_id DESC LIMIT 100",
        )
        .bind(buyer)
        .fetch_all(&self.pool)
        .await?;
        purchases_of_rows(&rows)
    }

    /// Purchases in one of `statuses`, newest change first (at most 500).
    pub async fn purchases_in(
        &self,
        statuses: &[PurchaseStatus],
    ) -> Result<Vec<Purchase>, StoreError> {
        if statuses.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT * FROM purchases WHERE status IN ({})
             ORDER BY updated_at DESC, purchase_id DESC LIMIT 500",
            param_list(1, statuses.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for status in statuses {
            query = query.bind(status.as_str());
        }
        purchases_of_rows(&query.fetch_all(&self.pool).await?)
    }

    /// Records a reservation and takes its seat, in one transaction.
    /// `Ok(false)` when no seat is left (nothing is recorded).
    pub async fn reserve_purchase(&self, new: &NewPurchase<'_>) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        if !take_in(&mut tx, new.event_id, &[(new.tier, 1)]).await? {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO purchases (purchase_id, event_id, tier, buyer, email, method, status,
                 expires_at, holds_seat, amount, currency, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $10, $11, $11)",
        )
        .bind(new.id)
        .bind(i64_of(new.event_id)?)
        .bind(i64::from(new.tier))
        .bind(new.buyer)
        .bind(new.email.map(str::to_owned))
        .bind(new.method.as_str())
        .bind(PurchaseStatus::Pending.as_str())
        .bind(new.expires_at)
        .bind(i64::try_from(new.amount).unwrap_or(i64::MAX))
        .bind(new.currency)
        .bind(new.now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn set_payment_intent(
        &self,
        purchase_id: &str,
        intent: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE purchases SET payment_intent = $2, updated_at = $3 WHERE purchase_id = $1",
        )
        .bind(purchase_id)
        .bind(intent)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Ends a pending purchase as `status` and gives its seat back, in one
    /// transaction. `false` when it was no longer pending.
    pub async fn end_purchase(
        &self,
        purchase: &Purchase,
        status: PurchaseStatus,
        error: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let ended = sqlx::query(
            "UPDATE purchases SET status = $2, error = $3, holds_seat = 0, updated_at = $4
             WHERE purchase_id = $1 AND status = $5",
        )
        .bind(&purchase.id)
        .bind(status.as_str())
        .bind(error)
        .bind(now)
        .bind(PurchaseStatus::Pending.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if ended && purchase.holds_seat {
            release_in(&mut tx, purchase.event_id, &[(purchase.tier, 1)]).await?;
        }
        tx.commit().await?;
        Ok(ended)
    }

    /// Holds a seat for `purchase` again (taking one unless it still holds
    /// its own) until `expires_at`. `Ok(false)` when no seat is left.
    pub async fn retake_seat(
        &self,
        purchase: &Purchase,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        if !purchase.holds_seat
            && !take_in(&mut tx, purchase.event_id, &[(purchase.tier, 1)]).await?
        {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE purchases SET status = $4, holds_seat = 1, expires_at = $2, error = NULL,
                 updated_at = $3
             WHERE purchase_id = $1",
        )
        .bind(&purchase.id)
        .bind(expires_at)
        .bind(now)
        .bind(PurchaseStatus::Pending.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}
