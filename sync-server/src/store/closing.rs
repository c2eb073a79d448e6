//! What settling an event returned (`event_settlements`): the proceeds
//! withdrawn, the ticket and event accounts closed and the lamports each
//! gave back, recorded when the chain reported them, since a closed account
//! can no longer be read.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, corrupt, i64_of};

/// The settlement of one event so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct SettlementRecord {
    /// Lamports withdrawn to the treasury, over every withdrawal.
    pub withdrawn_lamports: u64,
    /// The treasury they went to (base58).
    pub treasury: Option<String>,
    pub withdrawn_at: Option<i64>,
    /// Ticket accounts closed.
    pub tickets_closed: u64,
    /// Their rent, back with the organizer.
    pub ticket_rent_lamports: u64,
    pub tickets_closed_at: Option<i64>,
    /// The event account's rent, back with the organizer once it closed.
    pub event_rent_lamports: Option<u64>,
    /// Proceeds left in the event account at its close, sent to the treasury.
    pub proceeds_at_close: Option<u64>,
    pub event_closed_at: Option<i64>,
}

fn u64_of(r: &AnyRow, column: &str) -> Result<Option<u64>, StoreError> {
    let v: Option<i64> = r.try_get(column)?;
    v.map(u64::try_from).transpose().map_err(corrupt)
}

fn amount(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Store {
    /// The settlement recorded for `event_id` (all zero when none).
    pub async fn settlement_record(&self, event_id: u64) -> Result<SettlementRecord, StoreError> {
        let row = sqlx::query("SELECT * FROM event_settlements WHERE event_id = $1")
            .bind(i64_of(event_id)?)
            .fetch_optional(&self.pool)
            .await?;
        let Some(r) = row else {
            return Ok(SettlementRecord::default());
        };
        Ok(SettlementRecord {
            withdrawn_lamports: u64_of(&r, "withdrawn_lamports")?.unwrap_or(0),
            treasury: r.try_get("treasury")?,
            withdrawn_at: r.try_get("withdrawn_at")?,
            tickets_closed: u64_of(&r, "tickets_closed")?.unwrap_or(0),
            ticket_rent_lamports: u64_of(&r, "ticket_rent_lamports")?.unwrap_or(0),
            tickets_closed_at: r.try_get("tickets_closed_at")?,
            event_rent_lamports: u64_of(&r, "event_rent_lamports")?,
            proceeds_at_close: u64_of(&r, "proceeds_at_close")?,
            event_closed_at: r.try_get("event_closed_at")?,
        })
    }

    async fn ensure_settlement_row(&self, event_id: u64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO event_settlements (event_id) VALUES ($1) ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(i64_of(event_id)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Adds a withdrawal of `lamports` to `treasury` at `now`.
    pub async fn record_withdrawal(
        &self,
        event_id: u64,
        lamports: u64,
        treasury: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.ensure_settlement_row(event_id).await?;
        sqlx::query(
            "UPDATE event_settlements SET withdrawn_lamports = withdrawn_lamports + $2,
                 treasury = $3, withdrawn_at = $4
             WHERE event_id = $1",
        )
        .bind(i64_of(event_id)?)
        .bind(amount(lamports))
        .bind(treasury.to_owned())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Adds `closed` ticket accounts that returned `lamports`, at `now`.
    pub async fn record_tickets_closed(
        &self,
        event_id: u64,
        closed: u64,
        lamports: u64,
        now: i64,
    ) -> Result<(), StoreError> {
        self.ensure_settlement_row(event_id).await?;
        sqlx::query(
            "UPDATE event_settlements SET tickets_closed = tickets_closed + $2,
                 ticket_rent_lamports = ticket_rent_lamports + $3, tickets_closed_at = $4
             WHERE event_id = $1",
        )
        .bind(i64_of(event_id)?)
        .bind(amount(closed))
        .bind(amount(lamports))
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The event account closed at `now`, returning `rent` to the organizer
    /// and `proceeds` to the treasury.
    pub async fn record_event_closed(
        &self,
        event_id: u64,
        rent: u64,
        proceeds: u64,
        now: i64,
    ) -> Result<(), StoreError> {
        self.ensure_settlement_row(event_id).await?;
        sqlx::query(
            "UPDATE event_settlements SET event_rent_lamports = $2, proceeds_at_close = $3,
                 event_closed_at = $4
             WHERE event_id = $1",
        )
        .bind(i64_of(event_id)?)
        .bind(amount(rent))
        .bind(amount(proceeds))
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
