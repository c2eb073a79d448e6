//! Event cancellations (`event_cancellations`): how far each one is, so the
//! background work resumes where a crash left it, and the purchase changes a
//! cancellation makes (card purchases owed a refund, unpaid ones ended).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::purchases::purchases_of_rows;
use super::{
    MailStatus, PaymentMethod, Purchase, PurchaseStatus, Store, StoreError, corrupt, i64_of,
};

/// Where a cancellation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancellationPhase {
    /// Recorded; the event is being cancelled on chain and for the gates.
    Cancelling,
    /// Its tickets are being revoked on chain, in id order.
    Revoking,
    /// Card purchases are being refunded and their buyers mailed.
    Refunding,
    Done,
}

impl CancellationPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cancelling => "cancelling",
            Self::Revoking => "revoking",
            Self::Refunding => "refunding",
            Self::Done => "done",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        Ok(match text {
            "cancelling" => Self::Cancelling,
            "revoking" => Self::Revoking,
            "refunding" => Self::Refunding,
            "done" => Self::Done,
            other => return Err(corrupt(format!("cancellation phase {other:?}"))),
        })
    }
}

/// One row of `event_cancellations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancellation {
    pub event_id: u64,
    pub phase: CancellationPhase,
    /// The event's minted counter once cancelled on chain.
    pub tickets_total: Option<u32>,
    /// Every ticket id below it has been revoked (or needed no revoking).
    pub next_ticket: u32,
    /// Tickets this cancellation revoked (the others were revoked, refunded
    /// or closed already).
    pub tickets_revoked: u32,
    pub last_error: Option<String>,
    pub requested_at: i64,
    pub finished_at: Option<i64>,
}

/// The refunds and mail of one event's purchases, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefundCounts {
    /// Card purchases owed a refund, refunded, or refused a refund.
    pub refunds_total: u64,
    /// Of those, refunded or refused for good.
    pub refunds_done: u64,
    /// Refunded purchases with a buyer's address (owed a refund notice).
    pub mail_total: u64,
    /// Of those, whose notice was sent or refused for good.
    pub mail_done: u64,
}

fn u32_of(r: &AnyRow, column: &str) -> Result<u32, StoreError> {
    let v: i64 = r.try_get(column)?;
    u32::try_from(v).map_err(corrupt)
}

fn cancellation_of_row(r: &AnyRow) -> Result<Cancellation, StoreError> {
    let event_id: i64 = r.try_get("event_id")?;
    let total: Option<i64> = r.try_get("tickets_total")?;
    Ok(Cancellation {
        event_id: u64::try_from(event_id).map_err(corrupt)?,
        phase: CancellationPhase::parse(&r.try_get::<String, _>("phase")?)?,
        tickets_total: total.map(u32::try_from).transpose().map_err(corrupt)?,
        next_ticket: u32_of(r, "next_ticket")?,
        tickets_revoked: u32_of(r, "tickets_revoked")?,
        last_error: r.try_get("last_error")?,
        requested_at: r.try_get("requested_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

impl Store {
    /// Records that `event_id` is to be cancelled; recording it again keeps
    /// the first record. Returns the record as stored.
    pub async fn start_cancellation(
        &self,
        event_id: u64,
        now: i64,
    ) -> Result<Cancellation, StoreError> {
        sqlx::query(
            "INSERT INTO event_cancellations (event_id, phase, requested_at) VALUES ($1, $2, $3)
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(i64_of(event_id)?)
        .bind(CancellationPhase::Cancelling.as_str())
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.cancellation(event_id)
            .await?
            .ok_or_else(|| corrupt(format!("cancellation of {event_id} vanished")))
    }

    /// The cancellation of `event_id`, if one was asked for.
    pub async fn cancellation(&self, event_id: u64) -> Result<Option<Cancellation>, StoreError> {
        let row = sqlx::query("SELECT * FROM event_cancellations WHERE event_id = $1")
            .bind(i64_of(event_id)?)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(cancellation_of_row).transpose()
    }

    /// Events whose cancellation is not finished.
    pub async fn unfinished_cancellations(&self) -> Result<Vec<u64>, StoreError> {
        let rows = sqlx::query("SELECT event_id FROM event_cancellations WHERE phase <> $1")
            .bind(CancellationPhase::Done.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.try_get("event_id")?;
                u64::try_from(id).map_err(corrupt)
            })
            .collect()
    }

    /// Takes the cancellation's lease until `until` unless someone holds it
    /// past `now`; `false` when another task drives it.
    pub async fn lease_cancellation(
        &self,
        event_id: u64,
        now: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE event_cancellations SET lease_until = $3
             WHERE event_id = $1 AND lease_until <= $2 AND phase <> $4",
        )
        .bind(i64_of(event_id)?)
        .bind(now)
        .bind(until)
        .bind(CancellationPhase::Done.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives the lease up, keeping `error` (or clearing it) for the organizer.
    pub async fn release_cancellation(
        &self,
        event_id: u64,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE event_cancellations SET lease_until = 0, last_error = $2 WHERE event_id = $1",
        )
        .bind(i64_of(event_id)?)
        .bind(error.map(str::to_owned))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The event is cancelled on chain with `tickets_total` minted: revoking
    /// starts (once; a repeat keeps the first total).
    pub async fn cancellation_revoking(
        &self,
        event_id: u64,
        tickets_total: u32,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE event_cancellations SET phase = $2, tickets_total = $3
             WHERE event_id = $1 AND phase = $4",
        )
        .bind(i64_of(event_id)?)
        .bind(CancellationPhase::Revoking.as_str())
        .bind(i64::from(tickets_total))
        .bind(CancellationPhase::Cancelling.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every ticket id below `next_ticket` is revoked; `revoked` more of them
    /// by this cancellation.
    pub async fn cancellation_revoked(
        &self,
        event_id: u64,
        next_ticket: u32,
        revoked: u32,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE event_cancellations
             SET next_ticket = $2, tickets_revoked = tickets_revoked + $3
             WHERE event_id = $1 AND next_ticket < $2",
        )
        .bind(i64_of(event_id)?)
        .bind(i64::from(next_ticket))
        .bind(i64::from(revoked))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Moves the cancellation to `phase` (`Done` also stamps `now`).
    pub async fn cancellation_phase(
        &self,
        event_id: u64,
        phase: CancellationPhase,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE event_cancellations SET phase = $2,
                 finished_at = CASE WHEN $2 = $4 THEN $3 ELSE finished_at END
             WHERE event_id = $1",
        )
        .bind(i64_of(event_id)?)
        .bind(phase.as_str())
        .bind(now)
        .bind(CancellationPhase::Done.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks every card purchase of `event_id` that was paid (with or
    /// without its ticket yet) as owed a refund, so the purchase worker's
    /// refund path refunds it once. Returns how many were marked; marking
    /// again marks nothing.
    pub async fn refund_cancelled_event(&self, event_id: u64, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE purchases SET status = $2, mint_tx = NULL, mint_signature = NULL,
                 lease_until = 0, error = $3, updated_at = $4
             WHERE event_id = $1 AND method = $5 AND payment_intent IS NOT NULL
                 AND status IN ($6, $7, $8)",
        )
        .bind(i64_of(event_id)?)
        .bind(PurchaseStatus::RefundDue.as_str())
        .bind("the event was cancelled")
        .bind(now)
        .bind(PaymentMethod::Card.as_str())
        .bind(PurchaseStatus::Paid.as_str())
        .bind(PurchaseStatus::Minting.as_str())
        .bind(PurchaseStatus::Fulfilled.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Purchases of `event_id` still waiting for payment.
    pub async fn pending_purchases_of(&self, event_id: u64) -> Result<Vec<Purchase>, StoreError> {
        let rows = sqlx::query("SELECT * FROM purchases WHERE event_id = $1 AND status = $2")
            .bind(i64_of(event_id)?)
            .bind(PurchaseStatus::Pending.as_str())
            .fetch_all(&self.pool)
            .await?;
        purchases_of_rows(&rows)
    }

    /// How far the refunds and refund notices of `event_id` are.
    pub async fn refund_counts(&self, event_id: u64) -> Result<RefundCounts, StoreError> {
        let row = sqlx::query(
            "SELECT
                 COUNT(*) AS refunds_total,
                 COALESCE(SUM(CASE WHEN status <> $3 THEN 1 ELSE 0 END), 0) AS refunds_done,
                 COALESCE(SUM(CASE WHEN status = $4 AND email IS NOT NULL
                                   THEN 1 ELSE 0 END), 0) AS mail_total,
                 COALESCE(SUM(CASE WHEN status = $4 AND email IS NOT NULL
                                       AND mail_status IN ($6, $7)
                                   THEN 1 ELSE 0 END), 0) AS mail_done
             FROM purchases
             WHERE event_id = $1 AND method = $2 AND status IN ($3, $4, $5)",
        )
        .bind(i64_of(event_id)?)
        .bind(PaymentMethod::Card.as_str())
        .bind(PurchaseStatus::RefundDue.as_str())
        .bind(PurchaseStatus::Refunded.as_str())
        .bind(PurchaseStatus::RefundFailed.as_str())
        .bind(MailStatus::Sent.as_str())
        .bind(MailStatus::Failed.as_str())
        .fetch_one(&self.pool)
        .await?;
        let count = |column: &str| -> Result<u64, StoreError> {
            let v: i64 = row.try_get(column)?;
            u64::try_from(v).map_err(corrupt)
        };
        Ok(RefundCounts {
            refunds_total: count("refunds_total")?,
            refunds_done: count("refunds_done")?,
            mail_total: count("mail_total")?,
            mail_done: count("mail_done")?,
        })
    }
}
