//! Seats for sale. A seat is *taken* when a buyer's reservation holds it or
//! a ticket was minted for it; purchases and organizer mints take seats in
//! the database (one conditional UPDATE per counter, `crate::store`) before
//! anything goes to the chain, and the chain checks the same limits again.
//!
//! Counters start from the chain: the first time an event is sold through
//! this server its supply and sold counts are read from the event account.

use super::organizer::event_on_chain;
use super::{ServiceError, Services};
use crate::store::{EVENT_CAPACITY, SeatCounter};

pub use crate::store::{CardPrice, seats_of};

fn known_id(event_id: u64) -> Result<u64, ServiceError> {
    if i64::try_from(event_id).is_err() {
        return Err(ServiceError::NotFound(format!("no event {event_id}")));
    }
    Ok(event_id)
}

/// Makes sure `event_id` has its counters, creating them from the event
/// account on chain when it has none yet.
pub async fn ensure(services: &Services, event_id: u64) -> Result<(), ServiceError> {
    if services.store.has_inventory(known_id(event_id)?).await? {
        return Ok(());
    }
    let event = event_on_chain(services, event_id).await?;
    let mut counters = vec![SeatCounter {
        tier: EVENT_CAPACITY,
        supply: i64::from(event.capacity),
        taken: i64::from(event.minted),
    }];
    for (index, tier) in event.tiers.iter().enumerate() {
        counters.push(SeatCounter {
            tier: i64::try_from(index).unwrap_or(i64::MAX),
            supply: i64::from(tier.supply),
            taken: i64::from(tier.sold),
        });
    }
    services.store.create_inventory(event_id, &counters).await?;
    Ok(())
}

/// Records the card prices of an event's tiers (`None`: not sold by card).
pub async fn set_card_prices(
    services: &Services,
    event_id: u64,
    prices: &[Option<CardPrice>],
) -> Result<(), ServiceError> {
    ensure(services, event_id).await?;
    services.store.set_card_prices(event_id, prices).await?;
    Ok(())
}

/// The card price of a tier, if it is sold by card.
pub async fn card_price(
    services: &Services,
    event_id: u64,
    tier: u8,
) -> Result<Option<CardPrice>, ServiceError> {
    Ok(services.store.card_price(known_id(event_id)?, tier).await?)
}

/// Takes seats in a transaction of their own (organizer mints), or
/// [`ServiceError::SoldOut`] naming what is left.
pub async fn take_now(
    services: &Services,
    event_id: u64,
    seats: &[(u8, u32)],
) -> Result<(), ServiceError> {
    ensure(services, event_id).await?;
    if !services.store.take_seats(event_id, seats).await? {
        return Err(sold_out(services, event_id).await);
    }
    Ok(())
}

/// Gives seats back in a transaction of their own; failures are logged,
/// since the caller is already handling another error.
pub async fn release_now(services: &Services, event_id: u64, seats: &[(u8, u32)]) {
    if let Err(e) = services.store.release_seats(event_id, seats).await {
        tracing::error!(event = event_id, error = %e, "could not give seats back; inventory shows fewer left than there are");
    }
}

/// The refusal for seats that did not fit, with what is left.
pub async fn sold_out(services: &Services, event_id: u64) -> ServiceError {
    let detail = match services.store.seats_left(event_id).await {
        Ok(rows) => rows
            .iter()
            .map(|(tier, left)| {
                if *tier == EVENT_CAPACITY {
                    format!("{left} left in the event")
                } else {
                    format!("{left} left in tier {tier}")
                }
            })
            .collect::<Vec<_>>()
            .join(", "),
        Err(_) => String::new(),
    };
    ServiceError::SoldOut(format!("sold out ({detail})"))
}
