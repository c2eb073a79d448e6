//! Events for organizers and buyers (`/api/events`), through
//! [`crate::services::events`]:
//!
//! - `POST /api/events` (organizer): created on chain, then published.
//! - `GET /api/events` (public): active and upcoming, paginated, filtered;
//!   `GET /api/events/{id}`.
//! - `PUT /api/events/{id}` (the event's organizer): changed on chain, then
//!   here, then at the gates.
//!
//! Both creating and changing take the event's check-in rules (`rules`),
//! which `PUT /api/events/{id}/rules` also sets (see `super::manage`).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::auth::{AuthUser, Role};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::state::AppState;
use crate::http::validation::{
    ValidJson, Validate, check_chain_text, check_count, check_range, check_text, check_tier_names,
    field_error,
};
use crate::services::events::{self, EventChanges, EventDraft};
use crate::services::organizer::NewTier;
use crate::services::rules::{EventRules, RulesChange};
use crate::store::{EventFilter, EventRecord};
use ticketing::constants::{MAX_EVENT_NAME_LEN, MAX_VENUE_LEN};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierBody {
    /// 1 to 16 characters, at most 16 bytes in UTF-8 (the chain's limit).
    #[schema(min_length = 1, max_length = 16)]
    pub name: String,
    /// Price in SOL purchases, in lamports (>= 0), paid on chain.
    #[schema(minimum = 0)]
    pub price_lamports: i64,
    /// 1 to 100000 tickets.
    #[schema(minimum = 1, maximum = 100_000)]
    pub supply: u32,
    /// Price in card purchases, in the smallest unit of `[api] currency`
    /// (cents), 50 to 99999999 (the card processor's smallest and largest
    /// charge); omit to not sell this tier by card.
    #[serde(default)]
    #[schema(minimum = 50, maximum = 99_999_999)]
    pub card_price: Option<i64>,
}

/// A new event: name 3 to 32 characters (at most 32 bytes), capacity 1 to 100000, ends after
/// it starts and not in the past, prices >= 0.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEventBody {
    /// 3 to 32 characters, at most 32 bytes in UTF-8 (the chain's limit).
    #[schema(min_length = 3, max_length = 32)]
    pub name: String,
    /// At most 1000 characters; line breaks allowed.
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub description: String,
    /// 1 to 32 characters, at most 32 bytes in UTF-8 (the chain's limit).
    #[schema(min_length = 1, max_length = 32)]
    pub venue: String,
    /// Unix seconds.
    pub starts_at: i64,
    /// Unix seconds, after `starts_at` and in the future; doors close then
    /// (plus the rules' `end_grace_secs`).
    pub ends_at: i64,
    /// Doors open this long before the start (default 1 h).
    #[serde(default)]
    pub doors_open_secs_before: Option<u32>,
    /// 1 to 100000.
    #[schema(minimum = 1, maximum = 100_000)]
    pub capacity: u32,
    /// 1 to 4 tiers; a ticket names its tier by index.
    #[schema(min_items = 1, max_items = 4)]
    pub tiers: Vec<TierBody>,
    /// Whether holders may transfer tickets (default true).
    #[serde(default)]
    pub transferable: Option<bool>,
    /// The NFT each ticket comes with (default `spl_token`); fixed once a
    /// ticket is sold.
    #[serde(default)]
    pub nft: crate::services::organizer::NftStandard,
    /// The check-in rules; each one not given takes its default: no
    /// re-entry, unknown tickets refused, no holder proof, any tier at any
    /// gate, no grace after the end.
    #[serde(default)]
    pub rules: RulesChange,
}

impl Validate for CreateEventBody {
    fn validate(&self) -> Result<(), ApiError> {
        check_chain_text("name", &self.name, 3..=32, MAX_EVENT_NAME_LEN)?;
        check_chain_text("venue", &self.venue, 1..=32, MAX_VENUE_LEN)?;
        check_text("description", &self.description, 0..=1000, true)?;
        check_range("capacity", self.capacity, 1..=100_000)?;
        if self.ends_at <= self.starts_at {
            return Err(field_error("ends_at", "must be after starts_at"));
        }
        check_count("tiers", self.tiers.len(), 1..=4)?;
        check_tier_names(self.tiers.iter().map(|t| t.name.as_str()))?;
        for (i, tier) in self.tiers.iter().enumerate() {
            if tier.price_lamports < 0 {
                return Err(field_error(
                    format!("tiers[{i}].price_lamports"),
                    "must be >= 0",
                ));
            }
            check_range(&format!("tiers[{i}].supply"), tier.supply, 1..=100_000)?;
            if let Some(price) = tier.card_price {
                // Stripe's smallest charge is 50 cents; its largest 99,999,999.
                check_range(&format!("tiers[{i}].card_price"), price, 50..=99_999_999)?;
            }
        }
        Ok(())
    }
}

/// An event as buyers see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventView {
    pub event_id: u64,
    pub name: String,
    pub description: String,
    pub venue: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub capacity: u64,
    /// The organizer's wallet (base58).
    pub organizer: String,
    /// `active` or `cancelled`.
    pub status: String,
    /// Tier names, by index.
    pub tiers: Vec<String>,
    /// `spl_token` or `token_2022_metadata`: the NFT each ticket comes with.
    pub nft: String,
    /// The check-in rules the gates apply.
    pub rules: EventRules,
}

impl From<EventRecord> for EventView {
    fn from(r: EventRecord) -> Self {
        let rules = EventRules::from(&r);
        Self {
            event_id: r.event_id,
            name: r.name,
            description: r.description,
            venue: r.venue,
            starts_at: r.starts_at,
            ends_at: r.ends_at,
            capacity: r.capacity,
            organizer: r.organizer,
            status: match r.status {
                shared::EventStatus::Active => "active",
                shared::EventStatus::Cancelled => "cancelled",
            }
            .to_owned(),
            rules,
            tiers: r.tiers.into_iter().map(|t| t.name).collect(),
            nft: r.nft,
        }
    }
}

/// Create an event
///
/// `POST /api/events` (organizer): the event is created on chain with the
/// calling wallet as its organizer, then published to its gates with its
/// check-in rules. The server picks the event id.
#[utoipa::path(
    post,
    path = "/api/events",
    tag = "events",
    request_body = CreateEventBody,
    security(("wallet_session" = [])),
    responses(
        (status = 201, description = "Created", body = EventView),
        (status = 403, description = "`role_required`: the wallet is not an organizer; or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 422, description = "`invalid_field` (with `field`: an unknown field, `ends_at` before `starts_at` or in the past, a rule out of range, ...), or `chain_refused`", body = ErrorBody),
        crate::http::openapi::responses::JsonBodyRefusals,
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::ChainOrStorageDown,
        crate::http::openapi::responses::Internal,
    )
)]
pub async fn create_event(
    State(state): State<AppState>,
    user: AuthUser,
    ValidJson(body): ValidJson<CreateEventBody>,
) -> Result<(StatusCode, Json<EventView>), ApiError> {
    user.require_role(&[Role::Organizer])?;
    let event = events::create(&state, user.wallet, &draft_of(body)).await?;
    Ok((StatusCode::CREATED, Json(event.into())))
}

/// What the events service creates from a checked body (also the
/// console's new-event form).
pub fn draft_of(body: CreateEventBody) -> EventDraft {
    EventDraft {
        name: body.name,
        description: body.description,
        venue: body.venue,
        starts_at: body.starts_at,
        ends_at: body.ends_at,
        doors_open_secs_before: body.doors_open_secs_before,
        capacity: body.capacity,
        tiers: body
            .tiers
            .iter()
            .map(|t| NewTier {
                name: t.name.clone(),
                price_lamports: u64::try_from(t.price_lamports).unwrap_or_default(),
                supply: t.supply,
            })
            .collect(),
        card_prices: body
            .tiers
            .iter()
            .map(|t| t.card_price.map(|p| u64::try_from(p).unwrap_or_default()))
            .collect(),
        transferable: body.transferable.unwrap_or(true),
        nft: body.nft,
        rules: body.rules,
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// From 1 (the default); 0 reads as 1.
    #[serde(default)]
    pub page: Option<u32>,
    /// Events per page: 1 to 100 (default 20); a number outside reads as
    /// the nearest of the two.
    #[serde(default)]
    pub limit: Option<u32>,
    /// Part of the name, any case: up to 64 characters (empty: any name).
    #[serde(default)]
    #[param(max_length = 64)]
    pub q: Option<String>,
    /// Part of the venue, any case: up to 64 characters (empty: any venue).
    #[serde(default)]
    #[param(max_length = 64)]
    pub venue: Option<String>,
    /// Only events starting at or after this time (Unix seconds).
    #[serde(default)]
    pub starts_after: Option<i64>,
    /// Only events starting before this time (Unix seconds).
    #[serde(default)]
    pub starts_before: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventPage {
    pub events: Vec<EventView>,
    pub page: u32,
    pub limit: u32,
    /// Events on all pages.
    pub total: u64,
}

/// Events not yet ended
///
/// `GET /api/events?page=1&limit=20&q=&venue=&starts_after=&starts_before=`:
/// active events not yet ended, soonest first. Public.
#[utoipa::path(
    get,
    path = "/api/events",
    tag = "events",
    params(ListQuery),
    responses(
        (status = 200, description = "One page of events", body = EventPage),
        (status = 400, description = "`bad_request`: the query string does not parse", body = ErrorBody),
        (status = 422, description = "`invalid_field` (with `field`): `q` or `venue` longer than 64 characters or holding control characters", body = ErrorBody),
        crate::http::openapi::responses::StorageDown,
        crate::http::openapi::responses::Internal,
    )
)]
pub async fn list_events(
    State(state): State<AppState>,
    Query(mut query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    // Checked before the read cache keys on them: a filter is at most 64
    // characters of printable text, and an empty one filters nothing.
    for (field, text) in [("q", &mut query.q), ("venue", &mut query.venue)] {
        if text.as_deref().is_some_and(str::is_empty) {
            *text = None;
        }
        if let Some(text) = text {
            check_text(field, text, 1..=64, false)?;
        }
    }
    let key = format!(
        "list:{:?}:{:?}:{:?}:{:?}:{:?}:{:?}",
        query.page, query.limit, query.q, query.venue, query.starts_after, query.starts_before
    );
    let cache = state.read_cache.clone();
    cache
        .json(key, async {
            let page = list_events_page(&state, &query).await?;
            serde_json::to_vec(&page).map_err(|e| ApiError::Internal(e.to_string()))
        })
        .await
}

async fn list_events_page(state: &AppState, query: &ListQuery) -> Result<EventPage, ApiError> {
    let page = query.page.unwrap_or(1).max(1);
    let limit = query.limit.unwrap_or(20).clamp(1, 100);
    let filter = EventFilter {
        name: query.q.clone(),
        venue: query.venue.clone(),
        starts_after: query.starts_after,
        starts_before: query.starts_before,
        ..EventFilter::default()
    };
    let list = events::list(state, filter, page, limit).await?;
    Ok(EventPage {
        events: list.events.into_iter().map(EventView::from).collect(),
        page,
        limit,
        total: list.total,
    })
}

/// One event
///
/// `GET /api/events/{id}`. Public.
#[utoipa::path(
    get,
    path = "/api/events/{event}",
    tag = "events",
    params(("event" = u64, Path, description = "The event id")),
    responses(
        (status = 200, description = "The event", body = EventView),
        (status = 400, description = "`bad_request`: the id does not parse", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        crate::http::openapi::responses::StorageDown,
        crate::http::openapi::responses::Internal,
    )
)]
pub async fn get_event(
    State(state): State<AppState>,
    Path(event_id): Path<u64>,
) -> Result<Response, ApiError> {
    let cache = state.read_cache.clone();
    cache
        .json(format!("event:{event_id}"), async {
            let view = EventView::from(events::record(&state, event_id).await?);
            serde_json::to_vec(&view).map_err(|e| ApiError::Internal(e.to_string()))
        })
        .await
}

/// What an organizer may change of a live event; absent fields stay.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEventBody {
    /// 3 to 32 characters, at most 32 bytes in UTF-8 (the chain's limit).
    #[serde(default)]
    #[schema(min_length = 3, max_length = 32)]
    pub name: Option<String>,
    /// At most 1000 characters; line breaks allowed.
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub description: Option<String>,
    /// 1 to 32 characters, at most 32 bytes in UTF-8 (the chain's limit).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 32)]
    pub venue: Option<String>,
    #[serde(default)]
    pub starts_at: Option<i64>,
    #[serde(default)]
    pub ends_at: Option<i64>,
    #[serde(default)]
    pub doors_open_secs_before: Option<u32>,
    /// 1 to 100000, and not below what is sold or held.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100_000)]
    pub capacity: Option<u32>,
    #[serde(default)]
    pub transferable: Option<bool>,
    /// Check-in rules to change (see `PUT /api/events/{event}/rules`).
    #[serde(default)]
    pub rules: Option<RulesChange>,
}

impl Validate for UpdateEventBody {
    fn validate(&self) -> Result<(), ApiError> {
        if let Some(name) = &self.name {
            check_chain_text("name", name, 3..=32, MAX_EVENT_NAME_LEN)?;
        }
        if let Some(venue) = &self.venue {
            check_chain_text("venue", venue, 1..=32, MAX_VENUE_LEN)?;
        }
        if let Some(description) = &self.description {
            check_text("description", description, 0..=1000, true)?;
        }
        if let Some(capacity) = self.capacity {
            check_range("capacity", capacity, 1..=100_000)?;
        }
        if let (Some(starts), Some(ends)) = (self.starts_at, self.ends_at)
            && ends <= starts
        {
            return Err(field_error("ends_at", "must be after starts_at"));
        }
        Ok(())
    }
}

/// `PUT /api/events/{id}` (the event's organizer): changes it on chain
/// first (the program keeps capacity at or above what is sold), then here,
/// then at the gates (name, doors, end, rules). New times must make sense:
/// the end after the start and not in the past.
#[utoipa::path(
    put,
    path = "/api/events/{event}",
    tag = "events",
    params(
        ("event" = u64, Path, description = "The event id"),
    ),
    request_body = UpdateEventBody,
    security(("wallet_session" = [])),
    responses(
        (status = 200, description = "Changed on chain, here and at the gates", body = EventView),
        (status = 403, description = "`role_required`, `forbidden` (not this event's organizer) or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event", body = ErrorBody),
        (status = 422, description = "`invalid_field` (capacity below what is sold or held, ends before it starts or in the past, a rule out of range, an unknown field, ...) or `chain_refused`", body = ErrorBody),
        crate::http::openapi::responses::JsonBodyRefusals,
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::ChainOrStorageDown,
        crate::http::openapi::responses::Internal,
    )
)]
pub async fn update_event(
    State(state): State<AppState>,
    user: AuthUser,
    Path(event_id): Path<u64>,
    ValidJson(body): ValidJson<UpdateEventBody>,
) -> Result<Json<EventView>, ApiError> {
    user.require_role(&[Role::Organizer])?;
    events::require_organizer(&state, &user.wallet, event_id).await?;
    let changes = EventChanges {
        name: body.name,
        description: body.description,
        venue: body.venue,
        starts_at: body.starts_at,
        ends_at: body.ends_at,
        doors_open_secs_before: body.doors_open_secs_before,
        capacity: body.capacity,
        transferable: body.transferable,
        rules: body.rules,
    };
    let event = events::update(&state, &user.wallet, event_id, &changes).await?;
    Ok(Json(event.into()))
}
