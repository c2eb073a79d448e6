//! Seats for sale: per event, one counter per tier and one for the event's
//! capacity, in the `inventory` table. A seat is *taken* when a buyer's
//! reservation holds it or a ticket was minted for it.
//!
//! Taking is one conditional `UPDATE ... SET taken = taken + n WHERE
//! taken + n <= supply` per counter, inside the caller's transaction, so
//! concurrent buyers (on one server or several sharing PostgreSQL) can never
//! take more seats than exist: the database serialises the updates of a row.
//! The chain enforces the same limits again when the ticket is minted.
//!
//! Counters start from the chain: the first time an event is sold through
//! this server its supply and sold counts are read from the event account.

use sqlx::Row;

use crate::AppState;
use crate::error::ApiError;
use crate::store::StoreError;

/// The `tier` of the row that counts the whole event against its capacity.
pub const EVENT_CAPACITY: i64 = -1;

fn db(e: sqlx::Error) -> ApiError {
    ApiError::Store(StoreError::from(e))
}

fn id(event_id: u64) -> Result<i64, ApiError> {
    i64::try_from(event_id).map_err(|_| ApiError::NotFound(format!("no event {event_id}")))
}

/// A tier's card price, set by its organizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardPrice {
    /// In the currency's smallest unit (cents).
    pub amount: u64,
    /// ISO 4217, lower case.
    pub currency: String,
}

/// Makes sure `event_id` has its counters, creating them from the event
/// account on chain when it has none yet.
pub async fn ensure(state: &AppState, event_id: u64) -> Result<(), ApiError> {
    let known: i64 = sqlx::query("SELECT COUNT(*) AS n FROM inventory WHERE event_id = $1")
        .bind(id(event_id)?)
        .fetch_one(state.store.pool())
        .await
        .map_err(db)?
        .try_get("n")
        .map_err(db)?;
    if known > 0 {
        return Ok(());
    }
    let event = super::event_on_chain(state, event_id).await?;
    let mut rows = vec![(
        EVENT_CAPACITY,
        i64::from(event.capacity),
        i64::from(event.minted),
    )];
    for (index, tier) in event.tiers.iter().enumerate() {
        rows.push((
            i64::try_from(index).unwrap_or(i64::MAX),
            i64::from(tier.supply),
            i64::from(tier.sold),
        ));
    }
    let mut tx = state.store.pool().begin().await.map_err(db)?;
    for (tier, supply, taken) in rows {
        sqlx::query(
            "INSERT INTO inventory (event_id, tier, supply, taken) VALUES ($1, $2, $3, $4)
             ON CONFLICT (event_id, tier) DO NOTHING",
        )
        .bind(id(event_id)?)
        .bind(tier)
        .bind(supply)
        .bind(taken)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    tx.commit().await.map_err(db)?;
    Ok(())
}

/// Records the card prices of an event's tiers (`None`: not sold by card).
pub async fn set_card_prices(
    state: &AppState,
    event_id: u64,
    prices: &[Option<CardPrice>],
) -> Result<(), ApiError> {
    ensure(state, event_id).await?;
    let mut tx = state.store.pool().begin().await.map_err(db)?;
    for (tier, price) in prices.iter().enumerate() {
        sqlx::query(
            "UPDATE inventory SET card_price = $3, currency = $4 WHERE event_id = $1 AND tier = $2",
        )
        .bind(id(event_id)?)
        .bind(i64::try_from(tier).unwrap_or(i64::MAX))
        .bind(
            price
                .as_ref()
                .map(|p| i64::try_from(p.amount).unwrap_or(i64::MAX)),
        )
        .bind(price.as_ref().map(|p| p.currency.clone()))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    tx.commit().await.map_err(db)?;
    Ok(())
}

/// The card price of a tier, if it is sold by card.
pub async fn card_price(
    state: &AppState,
    event_id: u64,
    tier: u8,
) -> Result<Option<CardPrice>, ApiError> {
    let row =
        sqlx::query("SELECT card_price, currency FROM inventory WHERE event_id = $1 AND tier = $2")
            .bind(id(event_id)?)
            .bind(i64::from(tier))
            .fetch_optional(state.store.pool())
            .await
            .map_err(db)?;
    let Some(row) = row else { return Ok(None) };
    let amount: Option<i64> = row.try_get("card_price").map_err(db)?;
    let currency: Option<String> = row.try_get("currency").map_err(db)?;
    Ok(match (amount, currency) {
        (Some(amount), Some(currency)) => Some(CardPrice {
            amount: u64::try_from(amount).unwrap_or_default(),
            currency,
        }),
        _ => None,
    })
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
pub async fn take(
    conn: &mut sqlx::AnyConnection,
    event_id: u64,
    seats: &[(u8, u32)],
) -> Result<bool, ApiError> {
    for (tier, n) in counters(seats) {
        let moved = sqlx::query(
            "UPDATE inventory SET taken = taken + $3
             WHERE event_id = $1 AND tier = $2 AND taken + $3 <= supply",
        )
        .bind(id(event_id)?)
        .bind(tier)
        .bind(n)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
        if moved.rows_affected() != 1 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Gives seats back (a reservation ran out, a payment failed, a mint was
/// refused before it landed). Never below zero.
pub async fn release(
    conn: &mut sqlx::AnyConnection,
    event_id: u64,
    seats: &[(u8, u32)],
) -> Result<(), ApiError> {
    for (tier, n) in counters(seats) {
        sqlx::query(
            "UPDATE inventory SET taken = CASE WHEN taken >= $3 THEN taken - $3 ELSE 0 END
             WHERE event_id = $1 AND tier = $2",
        )
        .bind(id(event_id)?)
        .bind(tier)
        .bind(n)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    Ok(())
}

/// Takes seats in a transaction of their own (organizer mints), or answers
/// 409 `sold_out` naming what is short.
pub async fn take_now(
    state: &AppState,
    event_id: u64,
    seats: &[(u8, u32)],
) -> Result<(), ApiError> {
    ensure(state, event_id).await?;
    let mut tx = state.store.pool().begin().await.map_err(db)?;
    if !take(&mut tx, event_id, seats).await? {
        drop(tx);
        return Err(sold_out(state, event_id).await);
    }
    tx.commit().await.map_err(db)?;
    Ok(())
}

/// [`release`] in a transaction of its own; failures are logged, since the
/// caller is already handling another error.
pub async fn release_now(state: &AppState, event_id: u64, seats: &[(u8, u32)]) {
    let result = async {
        let mut tx = state.store.pool().begin().await.map_err(db)?;
        release(&mut tx, event_id, seats).await?;
        tx.commit().await.map_err(db)
    }
    .await;
    if let Err(e) = result {
        tracing::error!(event = event_id, error = %e, "could not give seats back; inventory shows fewer left than there are");
    }
}

/// The 409 for seats that did not fit, with what is left.
pub async fn sold_out(state: &AppState, event_id: u64) -> ApiError {
    let left = sqlx::query(
        "SELECT tier, supply - taken AS left_over FROM inventory WHERE event_id = $1 ORDER BY tier",
    )
    .bind(i64::try_from(event_id).unwrap_or(-1))
    .fetch_all(state.store.pool())
    .await;
    let detail = match left {
        Ok(rows) => rows
            .iter()
            .filter_map(|r| {
                let tier: i64 = r.try_get("tier").ok()?;
                let left: i64 = r.try_get("left_over").ok()?;
                Some(if tier == EVENT_CAPACITY {
                    format!("{left} left in the event")
                } else {
                    format!("{left} left in tier {tier}")
                })
            })
            .collect::<Vec<_>>()
            .join(", "),
        Err(_) => String::new(),
    };
    ApiError::SoldOut(format!("sold out ({detail})"))
}
