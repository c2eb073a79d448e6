//! Seat counters (`inventory`): per event, one row per tier and one for
//! the event's capacity ([`EVENT_CAPACITY`]). Taking is one conditional
//! `UPDATE ... SET taken = taken + n WHERE taken + n <= supply` per counter,
//! so concurrent buyers (on one server or several sharing PostgreSQL) never
//! take more seats than exist: the database serialises a row's updates.

use sqlx::Row;

use super::{Store, StoreError, i64_of};

/// The `tier` of the row that counts the whole event against its capacity.
pub const EVENT_CAPACITY: i64 = -1;

/// A tier's card price, set by its organizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardPrice {
    /// In the currency's smallest unit (cents).
    pub amount: u64,
    /// ISO 4217, lower case.
    pub currency: String,
}

/// One counter's starting figures: `tier` ([`EVENT_CAPACITY`] for the
/// event), how many seats exist and how many are taken already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeatCounter {
    pub tier: i64,
    pub supply: i64,
    pub taken: i64,
}

/// Seats per tier of a list of tickets' tiers.
pub fn seats_of(tiers: impl IntoIterator<Item = u8>) -> Vec<(u8, u32)> {
    let mut seats: Vec<(u8, u32)> = Vec::new();
    for tier in tiers {
        match seats.iter_mut().find(|(t, _)| *t == tier) {
            Some((_, n)) => *n += 1,
            None => seats.push((tier, 1)),
        }
    }
    seats
}

/// The counters `seats` move, `(tier, n)`: each tier's and, by their total,
/// the event's capacity.
fn counters(seats: &[(u8, u32)]) -> impl Iterator<Item = (i64, i64)> + '_ {
    let total: i64 = seats.iter().map(|(_, n)| i64::from(*n)).sum();
    seats
        .iter()
        .map(|(tier, n)| (i64::from(*tier), i64::from(*n)))
        .chain(std::iter::once((EVENT_CAPACITY, total)))
}

/// Takes `count` seats of each `(tier, count)` and their total from the
/// event's capacity, on `conn` (inside the caller's transaction). `Ok(false)`
/// when one of them does not fit: the caller must then roll back, since
/// earlier counters of this call may have moved.
pub(crate) async fn take_in(
    conn: &mut sqlx::AnyConnection,
    event_id: u64,
    seats: &[(u8, u32)],
) -> Result<bool, StoreError> {
    for (tier, n) in counters(seats) {
        let moved = sqlx::query(
            "UPDATE inventory SET taken = taken + $3
             WHERE event_id = $1 AND tier = $2 AND taken + $3 <= supply",
        )
        .bind(i64_of(event_id)?)
        .bind(tier)
        .bind(n)
        .execute(&mut *conn)
        .await?;
        if moved.rows_affected() != 1 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Gives seats back on `conn` (a reservation ran out, a payment failed, a
/// mint was refused before it landed). Never below zero.
pub(crate) async fn release_in(
    conn: &mut sqlx::AnyConnection,
    event_id: u64,
    seats: &[(u8, u32)],
) -> Result<(), StoreError> {
    for (tier, n) in counters(seats) {
        sqlx::query(
            "UPDATE inventory SET taken = CASE WHEN taken >= $3 THEN taken - $3 ELSE 0 END
             WHERE event_id = $1 AND tier = $2",
        )
        .bind(i64_of(event_id)?)
        .bind(tier)
        .bind(n)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

impl Store {
    /// Whether `event_id` has its seat counters yet.
    pub async fn has_inventory(&self, event_id: u64) -> Result<bool, StoreError> {
        let known: i64 = sqlx::query("SELECT COUNT(*) AS n FROM inventory WHERE event_id = $1")
            .bind(i64_of(event_id)?)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        Ok(known > 0)
    }

    /// Creates the seat counters of `event_id`; counters that exist already
    /// (another instance was first) are kept.
    pub async fn create_inventory(
        &self,
        event_id: u64,
        counters: &[SeatCounter],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for c in counters {
            sqlx::query(
                "INSERT INTO inventory (event_id, tier, supply, taken) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (event_id, tier) DO NOTHING",
            )
            .bind(i64_of(event_id)?)
            .bind(c.tier)
            .bind(c.supply)
            .bind(c.taken)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records the card prices of an event's tiers (`None`: not sold by card).
    pub async fn set_card_prices(
        &self,
        event_id: u64,
        prices: &[Option<CardPrice>],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (tier, price) in prices.iter().enumerate() {
            sqlx::query(
                "UPDATE inventory SET card_price = $3, currency = $4 WHERE event_id = $1 AND tier = $2",
            )
            .bind(i64_of(event_id)?)
            .bind(i64::try_from(tier).unwrap_or(i64::MAX))
            .bind(
                price
                    .as_ref()
                    .map(|p| i64::try_from(p.amount).unwrap_or(i64::MAX)),
            )
            .bind(price.as_ref().map(|p| p.currency.clone()))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The card price of a tier, if it is sold by card.
    pub async fn card_price(
        &self,
        event_id: u64,
        tier: u8,
    ) -> Result<Option<CardPrice>, StoreError> {
        let row = sqlx::query(
            "SELECT card_price, currency FROM inventory WHERE event_id = $1 AND tier = $2",
        )
        .bind(i64_of(event_id)?)
        .bind(i64::from(tier))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let amount: Option<i64> = row.try_get("card_price")?;
        let currency: Option<String> = row.try_get("currency")?;
        Ok(match (amount, currency) {
            (Some(amount), Some(currency)) => Some(CardPrice {
                amount: u64::try_from(amount).unwrap_or_default(),
                currency,
            }),
            _ => None,
        })
    }

    /// Takes seats in a transaction of their own; `false` (and nothing
    /// taken) when one of the counters has too few left.
    pub async fn take_seats(&self, event_id: u64, seats: &[(u8, u32)]) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        if !take_in(&mut tx, event_id, seats).await? {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Gives seats back in a transaction of their own.
    pub async fn release_seats(
        &self,
        event_id: u64,
        seats: &[(u8, u32)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        release_in(&mut tx, event_id, seats).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Seats left per counter, `(tier, left)`, [`EVENT_CAPACITY`] first.
    pub async fn seats_left(&self, event_id: u64) -> Result<Vec<(i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT tier, supply - taken AS left_over FROM inventory WHERE event_id = $1 ORDER BY tier",
        )
        .bind(i64_of(event_id)?)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("tier")?, r.try_get("left_over")?)))
            .collect()
    }
}
