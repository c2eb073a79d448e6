//! Events organizers create and change through the ticketing API, and the
//! public listing. Every change goes to the chain first, then to the
//! database, then to the gates, so a chain refusal leaves nothing behind
//! but the event's invisible details.

use shared::{DoorsWindow, PublicKeyBytes};
use solana_sdk::signature::Signer;
use ticketing::client::{EventParams, TierParams};

use super::inventory::{self, CardPrice};
use super::organizer::{self, NewEvent, NewTier, NftStandard, OrganizerError};
use super::rules::{self, EventRules, RulesChange};
use super::{ServiceError, Services};
use crate::store::{DetailsChange, EventDetails, EventFilter, EventRecord};

/// Doors open this long before the start unless the organizer says.
const DEFAULT_DOORS_BEFORE_SECS: u32 = 3600;

/// A new event as an organizer describes it; the server picks its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDraft {
    pub name: String,
    pub description: String,
    pub venue: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub doors_open_secs_before: Option<u32>,
    pub capacity: u32,
    pub tiers: Vec<NewTier>,
    /// Per tier, its card price in the smallest unit of the configured
    /// currency; `None`: not sold by card.
    pub card_prices: Vec<Option<u64>>,
    pub transferable: bool,
    pub nft: NftStandard,
    /// The check-in rules; those not given are [`EventRules::default`].
    pub rules: RulesChange,
}

/// What an organizer changes of a live event; `None` keeps the current
/// value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub venue: Option<String>,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub doors_open_secs_before: Option<u32>,
    pub capacity: Option<u32>,
    pub transferable: Option<bool>,
    /// Check-in rules to change.
    pub rules: Option<RulesChange>,
}

/// One page of the public listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventList {
    pub events: Vec<EventRecord>,
    /// Events on all pages.
    pub total: u64,
}

/// `event_id` if the database can hold it; larger ids name no event.
fn storable(event_id: u64) -> Result<u64, ServiceError> {
    i64::try_from(event_id)
        .map(|_| event_id)
        .map_err(|_| ServiceError::NotFound(format!("no event {event_id}")))
}

/// The event with its details, or not found.
pub async fn record(services: &Services, event_id: u64) -> Result<EventRecord, ServiceError> {
    services
        .store
        .event_record(storable(event_id)?)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no event {event_id}")))
}

/// One page (from 1) of active events not yet ended, soonest first.
pub async fn list(
    services: &Services,
    mut filter: EventFilter,
    page: u32,
    limit: u32,
) -> Result<EventList, ServiceError> {
    filter.now = services.clock.now();
    let offset = page.saturating_sub(1).saturating_mul(limit);
    let (events, total) = services.store.list_events(&filter, limit, offset).await?;
    Ok(EventList { events, total })
}

/// The wallet recorded as an event's organizer; not found for an unknown
/// event.
pub async fn organizer_of(
    services: &Services,
    event_id: u64,
) -> Result<PublicKeyBytes, ServiceError> {
    let recorded = services
        .store
        .event_organizer(storable(event_id)?)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no event {event_id}")))?;
    recorded
        .parse()
        .map_err(|_| ServiceError::Internal(format!("event {event_id}: organizer {recorded:?}")))
}

/// Refuses anyone but the wallet recorded as the event's organizer.
pub async fn require_organizer(
    services: &Services,
    wallet: &PublicKeyBytes,
    event_id: u64,
) -> Result<(), ServiceError> {
    let organizer = services
        .store
        .event_organizer(storable(event_id)?)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no event {event_id}")))?;
    if organizer != wallet.to_base58() {
        return Err(ServiceError::Forbidden(
            "only the event's organizer may do this",
        ));
    }
    Ok(())
}

/// Creates an event on chain for `organizer`'s wallet, publishes it to its
/// gates with its check-in rules and records its card prices. Its doors
/// close at its end plus the grace its rules give latecomers.
pub async fn create(
    services: &Services,
    organizer: PublicKeyBytes,
    draft: &EventDraft,
) -> Result<EventRecord, ServiceError> {
    rules::check_times(
        draft.starts_at,
        draft.ends_at,
        services.clock.now(),
        "ends_at",
    )?;
    draft.rules.check("rules.", draft.tiers.len())?;
    let event_rules = draft.rules.applied_to(&EventRules::default());
    // Ids are the server's: time-ordered, unique across restarts.
    let event_id = u64::try_from(uuid::Uuid::now_v7().as_u128() >> 80)
        .map_err(|_| ServiceError::Internal("event id".into()))?;
    let doors_before = draft
        .doors_open_secs_before
        .unwrap_or(DEFAULT_DOORS_BEFORE_SECS);
    let spec = NewEvent {
        event_id,
        name: draft.name.trim().to_owned(),
        venue: draft.venue.trim().to_owned(),
        starts_at: draft.starts_at,
        ends_at: draft.ends_at,
        doors_open_at: draft.starts_at - i64::from(doors_before),
        doors_close_at: rules::doors_close_at(draft.ends_at, &event_rules),
        capacity: draft.capacity,
        tiers: draft.tiers.clone(),
        reentry: event_rules.reentry,
        transferable: draft.transferable,
        nft: draft.nft,
        unknown_tickets: event_rules.unknown_tickets,
        holder_proof: event_rules.holder_proof,
        tier_gates: event_rules.tier_gates.clone(),
        end_grace_secs: event_rules.end_grace_secs,
        undo_window_secs: event_rules.undo_window_secs,
    };
    // Details first (invisible until the event row exists), then chain, then
    // the event itself with the requesting wallet as its organizer.
    let details = EventDetails {
        description: draft.description.clone(),
        venue: spec.venue.clone(),
        starts_at: spec.starts_at,
        ends_at: spec.ends_at,
        capacity: spec.capacity,
        nft: draft.nft.as_str(),
    };
    services
        .store
        .insert_event_details(storable(event_id)?, &details, services.clock.now())
        .await?;
    organizer::create_event_for(services, &spec, Some(organizer)).await?;
    let prices: Vec<Option<CardPrice>> = draft
        .card_prices
        .iter()
        .map(|price| {
            price.map(|amount| CardPrice {
                amount,
                currency: services.config.api.currency.clone(),
            })
        })
        .collect();
    inventory::set_card_prices(services, event_id, &prices).await?;
    services
        .store
        .event_record(event_id)
        .await?
        .ok_or_else(|| ServiceError::Internal("event vanished after creation".into()))
}

/// Changes a live event on chain first (the program keeps capacity at or
/// above what is minted), then here, then at the gates (name, doors, end,
/// rules). Its times must still make sense (see [`rules::check_times`]).
/// `organizer` is recorded again as the event's organizer.
pub async fn update(
    services: &Services,
    organizer: &PublicKeyBytes,
    event_id: u64,
    changes: &EventChanges,
) -> Result<EventRecord, ServiceError> {
    let ctx = services
        .chain
        .as_ref()
        .ok_or_else(|| ServiceError::ChainUnavailable("no chain configured".into()))?;
    let current = organizer::event_on_chain(services, event_id).await?;
    let starts_at = changes.starts_at.unwrap_or(current.starts_at);
    let ends_at = changes.ends_at.unwrap_or(current.ends_at);
    if changes.starts_at.is_some() || changes.ends_at.is_some() {
        let moved = if changes.ends_at.is_some() {
            "ends_at"
        } else {
            "starts_at"
        };
        rules::check_times(starts_at, ends_at, services.clock.now(), moved)?;
    }
    let cached_now = services
        .store
        .event(event_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no event {event_id}")))?;
    let event_rules = match &changes.rules {
        Some(change) => {
            change.check("rules.", cached_now.tiers.len())?;
            change.applied_to(&EventRules::of(&cached_now))
        }
        None => EventRules::of(&cached_now),
    };
    let doors_close_at = rules::doors_close_at(ends_at, &event_rules);
    let doors_open_at = match changes.doors_open_secs_before {
        Some(before) => starts_at - i64::from(before),
        // Doors keep their distance to the start when only the start moves.
        None => current.doors_open_at + (starts_at - current.starts_at),
    };
    let capacity = changes.capacity.unwrap_or(current.capacity);
    if capacity < current.minted {
        return Err(ServiceError::invalid(
            "capacity",
            format!("{} tickets are already minted", current.minted),
        ));
    }
    let params = EventParams {
        name: changes
            .name
            .as_deref()
            .map_or_else(|| current.name.clone(), |n| n.trim().to_owned()),
        venue: changes
            .venue
            .as_deref()
            .map_or_else(|| current.venue.clone(), |v| v.trim().to_owned()),
        symbol: current.symbol.clone(),
        uri_base: current.uri_base.clone(),
        starts_at,
        ends_at,
        doors_open_at,
        doors_close_at,
        capacity,
        tiers: current
            .tiers
            .iter()
            .map(|t| TierParams {
                name: t.name.clone(),
                price: t.price,
                supply: t.supply,
            })
            .collect(),
        issuer: current.issuer,
        treasury: current.treasury,
        minter: current.minter,
        transferable: changes.transferable.unwrap_or(current.transferable),
        transfer_until: if changes.starts_at.is_some() {
            starts_at
        } else {
            current.transfer_until
        },
        token_standard: current.token_standard,
    };
    // The database's seat counter must allow the new capacity too (seats
    // held by paying buyers count).
    inventory::ensure(services, event_id).await?;
    if !services.store.resize_capacity(event_id, capacity).await? {
        return Err(ServiceError::invalid(
            "capacity",
            "below the seats sold and held for buyers who are paying",
        ));
    }
    let event_address = ticketing::client::event_address(&ctx.authority.pubkey(), event_id).0;
    let sent = crate::chain::ops::send(
        ctx.chain.as_ref(),
        &ctx.authority,
        &[ticketing::client::update_event(
            &ctx.authority.pubkey(),
            &event_address,
            params.clone(),
        )],
        &[],
    )
    .await;
    if let Err(e) = sent {
        // Put the seat counter back as the chain still has it.
        if let Err(undo) = services
            .store
            .restore_capacity(event_id, current.capacity)
            .await
        {
            tracing::error!(event = event_id, error = %undo,
                "could not put the capacity counter back after the chain refused a change");
        }
        return Err(OrganizerError::from(e).into());
    }
    let change = DetailsChange {
        description: changes.description.clone(),
        venue: params.venue.clone(),
        starts_at,
        ends_at,
        capacity,
    };
    services
        .store
        .update_event_details(event_id, &change)
        .await?;
    let mut cached = cached_now;
    cached.name = params.name.clone();
    cached.doors = DoorsWindow {
        opens_at: doors_open_at,
        closes_at: doors_close_at,
    };
    cached.ends_at = ends_at;
    rules::apply(&mut cached, &event_rules);
    services.publish_event(&cached, organizer).await?;
    record(services, event_id).await
}
