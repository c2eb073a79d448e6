//! Events and tickets for organizers and holders (`/api/events`,
//! `/api/tickets`), on the chain through [`crate::services::organizer`]:
//!
//! - `POST /api/events` (organizer): created on chain, then published.
//! - `GET /api/events` (public): active and upcoming, paginated;
//!   `GET /api/events/{id}`.
//! - `POST /api/tickets/mint` (the event's organizer; 10 per minute):
//!   one NFT to a wallet, paid off chain; returns its QR code text.
//! - `GET /api/tickets/my` (logged in): the wallet's tickets with their codes.
//! - `GET /api/tickets/{event}/{ticket}/qr?format=png|svg` (holder or the
//!   event's organizer): the signed credential as a QR image.
//! - `POST /api/tickets/{event}/{ticket}/transfer` (the holder): an unsigned
//!   transfer for the holder's wallet, to a wallet or (through
//!   [`super::claims`]) to an email address; `.../transfer/submit` sends it
//!   signed.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shared::wire::CachedTicket;
use shared::{PublicKeyBytes, ReentryPolicy};
use solana_sdk::pubkey::Pubkey;
use sqlx::Row;

use super::auth::{AuthUser, Role};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::state::AppState;
use crate::http::validation::{
    ValidJson, Validate, check_count, check_email, check_range, check_text, field_error,
    parse_wallet,
};
use crate::services::Services;
use crate::services::organizer::{self, NewEvent, NewTier};
use crate::store::StoreError;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierBody {
    /// 1 to 32 characters.
    pub name: String,
    /// Price in SOL purchases, in lamports (>= 0), paid on chain.
    pub price_lamports: i64,
    /// 1 to 100000 tickets.
    pub supply: u32,
    /// Price in card purchases, in the smallest unit of `[api] currency`
    /// (cents); omit to not sell this tier by card.
    #[serde(default)]
    pub card_price: Option<i64>,
}

/// A new event: name 3 to 64 characters, capacity 1 to 100000, ends after
/// it starts, prices >= 0.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEventBody {
    /// 3 to 64 characters.
    pub name: String,
    /// At most 1000 characters.
    #[serde(default)]
    pub description: String,
    /// 1 to 64 characters.
    pub venue: String,
    /// Unix seconds.
    pub starts_at: i64,
    /// Unix seconds, after `starts_at`; doors close then.
    pub ends_at: i64,
    /// Doors open this long before the start (default 1 h).
    #[serde(default)]
    pub doors_open_secs_before: Option<u32>,
    /// 1 to 100000.
    pub capacity: u32,
    /// 1 to 4 tiers; a ticket names its tier by index.
    pub tiers: Vec<TierBody>,
    /// Whether holders may transfer tickets (default true).
    #[serde(default)]
    pub transferable: Option<bool>,
    /// The NFT each ticket comes with (default `spl_token`); fixed once a
    /// ticket is sold.
    #[serde(default)]
    pub nft: crate::services::organizer::NftStandard,
}

impl Validate for CreateEventBody {
    fn validate(&self) -> Result<(), ApiError> {
        check_text("name", &self.name, 3..=64, false)?;
        check_text("venue", &self.venue, 1..=64, false)?;
        check_text("description", &self.description, 0..=1000, true)?;
        check_range("capacity", self.capacity, 1..=100_000)?;
        if self.ends_at <= self.starts_at {
            return Err(field_error("ends_at", "must be after starts_at"));
        }
        check_count("tiers", self.tiers.len(), 1..=4)?;
        for (i, tier) in self.tiers.iter().enumerate() {
            check_text(&format!("tiers[{i}].name"), &tier.name, 1..=32, false)?;
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
}

fn store_err(e: sqlx::Error) -> ApiError {
    ApiError::Store(StoreError::from(e))
}

fn i64_of(v: u64) -> Result<i64, ApiError> {
    i64::try_from(v).map_err(|_| ApiError::BadRequest(format!("{v} is too large")))
}

/// The columns of an [`EventView`]; callers add the WHERE clause.
const EVENT_VIEW: &str = "SELECT e.event_id, e.name, e.organizer, e.status, e.tiers,
        d.description, d.venue, d.starts_at, d.ends_at, d.capacity, d.nft
     FROM events e JOIN event_details d ON d.event_id = e.event_id";

/// The ticket, or 404 naming it.
async fn ticket_or_404(
    state: &Services,
    event_id: u64,
    ticket_id: u32,
) -> Result<CachedTicket, ApiError> {
    state
        .store
        .ticket(event_id, ticket_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no ticket {ticket_id} in event {event_id}")))
}

async fn event_view(state: &Services, event_id: u64) -> Result<Option<EventView>, ApiError> {
    let sql = format!("{EVENT_VIEW} WHERE e.event_id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(i64_of(event_id)?)
        .fetch_optional(state.store.pool())
        .await
        .map_err(store_err)?;
    row.as_ref().map(view_from_row).transpose()
}

fn view_from_row(r: &sqlx::any::AnyRow) -> Result<EventView, ApiError> {
    let tiers: Vec<shared::wire::TierInfo> =
        serde_json::from_str(&r.try_get::<String, _>("tiers").map_err(store_err)?)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    let get_i64 = |col: &str| r.try_get::<i64, _>(col).map_err(store_err);
    Ok(EventView {
        event_id: u64::try_from(get_i64("event_id")?).unwrap_or_default(),
        name: r.try_get("name").map_err(store_err)?,
        description: r.try_get("description").map_err(store_err)?,
        venue: r.try_get("venue").map_err(store_err)?,
        starts_at: get_i64("starts_at")?,
        ends_at: get_i64("ends_at")?,
        capacity: u64::try_from(get_i64("capacity")?).unwrap_or_default(),
        organizer: r.try_get("organizer").map_err(store_err)?,
        status: r.try_get("status").map_err(store_err)?,
        tiers: tiers.into_iter().map(|t| t.name).collect(),
        nft: r.try_get("nft").map_err(store_err)?,
    })
}

/// Create an event
///
/// `POST /api/events` (organizer): the event is created on chain with the
/// calling wallet as its organizer, then published to its gates. The
/// server picks the event id. Re-entry is forbidden.
#[utoipa::path(
    post,
    path = "/api/events",
    tag = "events",
    request_body = CreateEventBody,
    security(("wallet_session" = [])),
    responses(
        (status = 201, description = "Created", body = EventView),
        (status = 400, description = "`malformed_json`: the body is not JSON", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: send the body as `application/json`", body = ErrorBody),
        (status = 401, description = "`missing_token`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`role_required`: the wallet is not an organizer; or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 422, description = "`invalid_field` (with `field`), or `chain_refused`", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`chain_unavailable` or `storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn create_event(
    State(state): State<AppState>,
    user: AuthUser,
    ValidJson(body): ValidJson<CreateEventBody>,
) -> Result<(StatusCode, Json<EventView>), ApiError> {
    user.require_role(&[Role::Organizer])?;
    let now = state.clock.now();
    // Ids are the server's: time-ordered, unique across restarts.
    let event_id = u64::try_from(uuid::Uuid::now_v7().as_u128() >> 80)
        .map_err(|_| ApiError::Internal("event id".into()))?;
    let doors_before = i64::from(body.doors_open_secs_before.unwrap_or(3600));
    let spec = NewEvent {
        event_id,
        name: body.name.trim().to_owned(),
        venue: body.venue.trim().to_owned(),
        starts_at: body.starts_at,
        ends_at: body.ends_at,
        doors_open_at: body.starts_at - doors_before,
        doors_close_at: body.ends_at,
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
        reentry: ReentryPolicy::Forbidden,
        transferable: body.transferable.unwrap_or(true),
        nft: body.nft,
    };
    // Details first (invisible until the event row exists), then chain, then
    // the event itself with the requesting wallet as its organizer.
    sqlx::query(
        "INSERT INTO event_details (event_id, description, venue, starts_at, ends_at, capacity, created_at, nft)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(i64_of(event_id)?)
    .bind(body.description.clone())
    .bind(spec.venue.clone())
    .bind(spec.starts_at)
    .bind(spec.ends_at)
    .bind(i64::from(spec.capacity))
    .bind(now)
    .bind(body.nft.as_str())
    .execute(state.store.pool())
    .await
    .map_err(store_err)?;
    organizer::create_event_for(&state, &spec, Some(user.wallet)).await?;
    let prices: Vec<Option<crate::services::inventory::CardPrice>> = body
        .tiers
        .iter()
        .map(|t| {
            t.card_price
                .map(|amount| crate::services::inventory::CardPrice {
                    amount: u64::try_from(amount).unwrap_or_default(),
                    currency: state.config.api.currency.clone(),
                })
        })
        .collect();
    crate::services::inventory::set_card_prices(&state, event_id, &prices).await?;
    let view = event_view(&state, event_id)
        .await?
        .ok_or_else(|| ApiError::Internal("event vanished after creation".into()))?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// From 1 (the default).
    #[serde(default)]
    pub page: Option<u32>,
    /// Events per page: 1 to 100 (default 20).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Part of the name, any case.
    #[serde(default)]
    pub q: Option<String>,
    /// Part of the venue, any case.
    #[serde(default)]
    pub venue: Option<String>,
    /// Only events starting at or after this time (Unix seconds).
    #[serde(default)]
    pub starts_after: Option<i64>,
    /// Only events starting before this time (Unix seconds).
    #[serde(default)]
    pub starts_before: Option<i64>,
}

/// `%text%` for LIKE, with the pattern characters in `text` taken
/// literally (escaped with `\`).
fn contains_pattern(text: &str) -> String {
    let escaped = text
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
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
        (status = 400, description = "(plain text) the query string does not parse", body = String, content_type = "text/plain"),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn list_events(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
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

async fn list_events_page(state: &Services, query: &ListQuery) -> Result<EventPage, ApiError> {
    let page = query.page.unwrap_or(1).max(1);
    let limit = query.limit.unwrap_or(20).clamp(1, 100);
    for (field, text) in [("q", &query.q), ("venue", &query.venue)] {
        if let Some(text) = text {
            check_text(field, text, 1..=64, false)?;
        }
    }
    // Every filter is always bound; an absent one matches everything.
    let filters = "d.ends_at > $1 AND e.status = 'active'
         AND LOWER(e.name) LIKE $2 ESCAPE '\\' AND LOWER(d.venue) LIKE $3 ESCAPE '\\'
         AND d.starts_at >= $4 AND d.starts_at < $5";
    let bind = |sql: String| {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(state.clock.now())
            .bind(contains_pattern(query.q.as_deref().unwrap_or("")))
            .bind(contains_pattern(query.venue.as_deref().unwrap_or("")))
            .bind(query.starts_after.unwrap_or(i64::MIN))
            .bind(query.starts_before.unwrap_or(i64::MAX))
    };
    let rows = bind(format!(
        "{EVENT_VIEW} WHERE {filters} ORDER BY d.starts_at, e.event_id LIMIT $6 OFFSET $7"
    ))
    .bind(i64::from(limit))
    .bind(i64::from((page - 1) * limit))
    .fetch_all(state.store.pool())
    .await
    .map_err(store_err)?;
    let total = bind(format!(
        "SELECT COUNT(*) AS n FROM events e JOIN event_details d ON d.event_id = e.event_id
         WHERE {filters}"
    ))
    .fetch_one(state.store.pool())
    .await
    .map_err(store_err)?
    .try_get::<i64, _>("n")
    .map_err(store_err)?;
    Ok(EventPage {
        events: rows.iter().map(view_from_row).collect::<Result<_, _>>()?,
        page,
        limit,
        total: u64::try_from(total).unwrap_or_default(),
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
        (status = 400, description = "`bad_request`: the id is too large; or (plain text) it does not parse", content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn get_event(
    State(state): State<AppState>,
    Path(event_id): Path<u64>,
) -> Result<Response, ApiError> {
    let cache = state.read_cache.clone();
    cache
        .json(format!("event:{event_id}"), async {
            let view = event_view(&state, event_id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("no event {event_id}")))?;
            serde_json::to_vec(&view).map_err(|e| ApiError::Internal(e.to_string()))
        })
        .await
}

/// What an organizer may change of a live event; absent fields stay.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEventBody {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub venue: Option<String>,
    #[serde(default)]
    pub starts_at: Option<i64>,
    #[serde(default)]
    pub ends_at: Option<i64>,
    #[serde(default)]
    pub doors_open_secs_before: Option<u32>,
    #[serde(default)]
    pub capacity: Option<u32>,
    #[serde(default)]
    pub transferable: Option<bool>,
}

impl Validate for UpdateEventBody {
    fn validate(&self) -> Result<(), ApiError> {
        if let Some(name) = &self.name {
            check_text("name", name, 3..=64, false)?;
        }
        if let Some(venue) = &self.venue {
            check_text("venue", venue, 1..=64, false)?;
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
/// then at the gates (name, doors).
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
        (status = 400, description = "`malformed_json`: the body is not JSON", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: send the body as `application/json`", body = ErrorBody),
        (status = 401, description = "`missing_token`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`role_required`, `forbidden` (not this event's organizer) or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event", body = ErrorBody),
        (status = 422, description = "`invalid_field` (capacity below what is sold or held, ends before it starts, ...) or `chain_refused`", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`chain_unavailable` or `storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn update_event(
    State(state): State<AppState>,
    user: AuthUser,
    Path(event_id): Path<u64>,
    ValidJson(body): ValidJson<UpdateEventBody>,
) -> Result<Json<EventView>, ApiError> {
    use solana_sdk::signature::Signer;
    user.require_role(&[Role::Organizer])?;
    require_organizer_of(&state, &user, event_id).await?;
    let ctx = state
        .chain
        .as_ref()
        .ok_or_else(|| ApiError::ChainUnavailable("no chain configured".into()))?;
    let current = crate::services::organizer::event_on_chain(&state, event_id).await?;
    let starts_at = body.starts_at.unwrap_or(current.starts_at);
    let ends_at = body.ends_at.unwrap_or(current.ends_at);
    if ends_at <= starts_at {
        return Err(field_error("ends_at", "must be after starts_at"));
    }
    let doors_open_at = match body.doors_open_secs_before {
        Some(before) => starts_at - i64::from(before),
        // Doors keep their distance to the start when only the start moves.
        None => current.doors_open_at + (starts_at - current.starts_at),
    };
    let capacity = body.capacity.unwrap_or(current.capacity);
    if capacity < current.minted {
        return Err(field_error(
            "capacity",
            format!("{} tickets are already minted", current.minted),
        ));
    }
    let transferable = body.transferable.unwrap_or(current.transferable);
    let params = ticketing::client::EventParams {
        name: body
            .name
            .as_deref()
            .map_or_else(|| current.name.clone(), |n| n.trim().to_owned()),
        venue: body
            .venue
            .as_deref()
            .map_or_else(|| current.venue.clone(), |v| v.trim().to_owned()),
        symbol: current.symbol.clone(),
        uri_base: current.uri_base.clone(),
        starts_at,
        ends_at,
        doors_open_at,
        doors_close_at: ends_at,
        capacity,
        tiers: current
            .tiers
            .iter()
            .map(|t| ticketing::client::TierParams {
                name: t.name.clone(),
                price: t.price,
                supply: t.supply,
            })
            .collect(),
        issuer: current.issuer,
        treasury: current.treasury,
        minter: current.minter,
        transferable,
        transfer_until: if body.starts_at.is_some() {
            starts_at
        } else {
            current.transfer_until
        },
        token_standard: current.token_standard,
    };
    // The database's seat counter must allow the new capacity too (seats
    // held by paying buyers count).
    crate::services::inventory::ensure(&state, event_id).await?;
    let moved = sqlx::query(
        "UPDATE inventory SET supply = $2 WHERE event_id = $1 AND tier = -1 AND taken <= $2",
    )
    .bind(i64_of(event_id)?)
    .bind(i64::from(capacity))
    .execute(state.store.pool())
    .await
    .map_err(store_err)?;
    if moved.rows_affected() != 1 {
        return Err(field_error(
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
        let _ = sqlx::query("UPDATE inventory SET supply = $2 WHERE event_id = $1 AND tier = -1")
            .bind(i64_of(event_id)?)
            .bind(i64::from(current.capacity))
            .execute(state.store.pool())
            .await;
        return Err(crate::services::organizer::OrganizerError::from(e).into());
    }
    sqlx::query(
        "UPDATE event_details SET description = COALESCE($2, description), venue = $3,
             starts_at = $4, ends_at = $5, capacity = $6
         WHERE event_id = $1",
    )
    .bind(i64_of(event_id)?)
    .bind(body.description.clone())
    .bind(params.venue.clone())
    .bind(starts_at)
    .bind(ends_at)
    .bind(i64::from(capacity))
    .execute(state.store.pool())
    .await
    .map_err(store_err)?;
    if let Some(mut cached) = state.store.event(event_id).await? {
        cached.name = params.name.clone();
        cached.doors = shared::DoorsWindow {
            opens_at: doors_open_at,
            closes_at: ends_at,
        };
        state.publish_event(&cached, &user.wallet).await?;
    }
    event_view(&state, event_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no event {event_id}")))
}

/// `GET /api/tickets/{event}/{ticket}` (its holder, with the QR code text;
/// the event's organizer, also with it).
#[utoipa::path(
    get,
    path = "/api/tickets/{event}/{ticket}",
    tag = "tickets",
    params(
        ("event" = u64, Path, description = "The event id"),
        ("ticket" = u32, Path, description = "The ticket id within the event"),
    ),
    security(("wallet_session" = [])),
    responses(
        (status = 200, description = "The ticket and its QR code text", body = TicketView),
        (status = 401, description = "`missing_token`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: neither its holder nor the event's organizer", body = ErrorBody),
        (status = 404, description = "`not_found`: no such ticket", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`chain_unavailable` or `storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn get_ticket(
    State(state): State<AppState>,
    user: AuthUser,
    Path((event_id, ticket_id)): Path<(u64, u32)>,
) -> Result<Json<TicketView>, ApiError> {
    let ticket = ticket_or_404(&state, event_id, ticket_id).await?;
    if ticket.owner != user.wallet {
        require_organizer_of(&state, &user, event_id).await?;
    }
    Ok(Json(TicketView {
        code: organizer::credential_for(&state, &ticket)?.encode(),
        ticket,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintBody {
    pub event_id: u64,
    /// The holder's wallet (base58).
    pub wallet: String,
    /// The tier's index (default 0).
    #[serde(default)]
    pub tier: u8,
}

impl Validate for MintBody {
    fn validate(&self) -> Result<(), ApiError> {
        parse_wallet("wallet", &self.wallet).map(|_| ())
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TicketView {
    #[serde(flatten)]
    pub ticket: CachedTicket,
    /// The signed credential a QR code carries.
    pub code: String,
}

async fn require_organizer_of(
    state: &Services,
    user: &AuthUser,
    event_id: u64,
) -> Result<(), ApiError> {
    let row = sqlx::query("SELECT organizer FROM events WHERE event_id = $1")
        .bind(i64_of(event_id)?)
        .fetch_optional(state.store.pool())
        .await
        .map_err(store_err)?
        .ok_or_else(|| ApiError::NotFound(format!("no event {event_id}")))?;
    let organizer: String = row.try_get("organizer").map_err(store_err)?;
    if organizer != user.wallet.to_base58() {
        return Err(ApiError::Forbidden(
            "only the event's organizer may do this",
        ));
    }
    Ok(())
}

/// Mint one ticket to a wallet
///
/// `POST /api/tickets/mint` (the event's organizer): one NFT to a wallet,
/// paid off chain, published to the gates; answers its QR code text.
#[utoipa::path(
    post,
    path = "/api/tickets/mint",
    tag = "tickets",
    request_body = MintBody,
    security(("wallet_session" = [])),
    responses(
        (status = 201, description = "Minted", body = TicketView),
        (status = 400, description = "`malformed_json`: the body is not JSON", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: send the body as `application/json`", body = ErrorBody),
        (status = 401, description = "`missing_token`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`role_required` (not an organizer), `forbidden` (not this event's organizer) or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event (in the database or on chain)", body = ErrorBody),
        (status = 422, description = "`invalid_field` (with `field`), or `chain_refused` (e.g. the tier is sold out)", body = ErrorBody),
        (status = 429, description = "`rate_limited`: the wallet spent its mint budget (`api.rate_limits.mint`)", body = ErrorBody, headers(("Retry-After" = u64, description = "Whole seconds to wait before trying again"))),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`chain_unavailable` or `storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn mint(
    State(state): State<AppState>,
    user: AuthUser,
    ValidJson(body): ValidJson<MintBody>,
) -> Result<(StatusCode, Json<TicketView>), ApiError> {
    user.require_role(&[Role::Organizer])?;
    require_organizer_of(&state, &user, body.event_id).await?;
    crate::http::limits::check_mint(&state, &user).await?;
    let wallet = parse_wallet("wallet", &body.wallet)?;
    let seats = [(body.tier, 1)];
    crate::services::inventory::take_now(&state, body.event_id, &seats).await?;
    let mut landed = false;
    let issued = match organizer::mint_tickets(
        &state,
        body.event_id,
        &[(Pubkey::new_from_array(wallet.0), body.tier)],
        |_| landed = true,
    )
    .await
    {
        Ok(issued) => issued,
        Err(e) => {
            if !landed {
                crate::services::inventory::release_now(&state, body.event_id, &seats).await;
            }
            return Err(e.into());
        }
    };
    let ticket = issued
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::Internal("mint returned nothing".into()))?;
    Ok((
        StatusCode::CREATED,
        Json(TicketView {
            code: ticket.credential.encode(),
            ticket: ticket.ticket,
        }),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRecipient {
    /// The holder's wallet (base58).
    pub wallet: String,
    /// The tier's index (default 0).
    #[serde(default)]
    pub tier: u8,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchMintBody {
    pub event_id: u64,
    /// 1 to 100 recipients.
    pub recipients: Vec<BatchRecipient>,
}

/// Most tickets one batch may mint.
pub const MAX_BATCH_MINT: usize = 100;

impl Validate for BatchMintBody {
    fn validate(&self) -> Result<(), ApiError> {
        check_count("recipients", self.recipients.len(), 1..=MAX_BATCH_MINT)?;
        for (i, r) in self.recipients.iter().enumerate() {
            parse_wallet(&format!("recipients[{i}].wallet"), &r.wallet)?;
        }
        Ok(())
    }
}

/// Mint up to 100 tickets, all or nothing
///
/// `POST /api/tickets/batch-mint`: up to 100 tickets, all or nothing.
///
/// Inventory is checked against the chain first (event capacity and each
/// tier's supply), so a batch that does not fit mints nothing (409). The
/// mint itself takes several transactions; if the chain fails part way,
/// the tickets this batch already minted are revoked on chain (void at every
/// gate) and the request fails, so a batch never half-succeeds.
#[utoipa::path(
    post,
    path = "/api/tickets/batch-mint",
    tag = "tickets",
    request_body = BatchMintBody,
    security(("wallet_session" = [])),
    responses(
        (status = 201, description = "All minted", body = Vec<TicketView>),
        (status = 400, description = "`malformed_json`: the body is not JSON", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: send the body as `application/json`", body = ErrorBody),
        (status = 401, description = "`missing_token`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`role_required` (not an organizer), `forbidden` (not this event's organizer) or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event (in the database or on chain)", body = ErrorBody),
        (status = 409, description = "`conflict`: sold out, or a tier has fewer tickets left than asked", body = ErrorBody),
        (status = 422, description = "`invalid_field` (with `field`; e.g. `recipients[3].tier`: no such tier), or `chain_refused`", body = ErrorBody),
        (status = 429, description = "`rate_limited`: the wallet spent its mint budget (`api.rate_limits.mint`)", body = ErrorBody, headers(("Retry-After" = u64, description = "Whole seconds to wait before trying again"))),
        (status = 503, description = "`chain_unavailable` or `storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn batch_mint(
    State(state): State<AppState>,
    user: AuthUser,
    ValidJson(body): ValidJson<BatchMintBody>,
) -> Result<(StatusCode, Json<Vec<TicketView>>), ApiError> {
    user.require_role(&[Role::Organizer])?;
    require_organizer_of(&state, &user, body.event_id).await?;
    crate::http::limits::check_mint(&state, &user).await?;
    let on_chain = crate::services::organizer::event_on_chain(&state, body.event_id).await?;
    if let Some(i) = body
        .recipients
        .iter()
        .position(|r| usize::from(r.tier) >= on_chain.tiers.len())
    {
        return Err(field_error(format!("recipients[{i}].tier"), "no such tier"));
    }
    // Seats are taken for the whole batch at once, or none (409 sold_out),
    // counting buyers who are paying right now as well as what is minted.
    let seats = crate::services::inventory::seats_of(body.recipients.iter().map(|r| r.tier));
    crate::services::inventory::take_now(&state, body.event_id, &seats).await?;
    let recipients: Vec<(Pubkey, u8)> = body
        .recipients
        .iter()
        .map(|r| {
            let wallet = wallet_of(&r.wallet)?;
            Ok((Pubkey::new_from_array(wallet.0), r.tier))
        })
        .collect::<Result<_, ApiError>>()?;
    let mut landed: Vec<u32> = Vec::new();
    let outcome = organizer::mint_tickets(&state, body.event_id, &recipients, |ids| {
        landed.extend_from_slice(ids)
    })
    .await;
    match outcome {
        Ok(issued) => Ok((
            StatusCode::CREATED,
            Json(
                issued
                    .into_iter()
                    .map(|t| TicketView {
                        code: t.credential.encode(),
                        ticket: t.ticket,
                    })
                    .collect(),
            ),
        )),
        Err(error) => {
            // Seats of tickets never minted go back on sale; the voided
            // ones stay sold (the chain counts them).
            // Tickets land in the recipients' order.
            let unminted = crate::services::inventory::seats_of(
                body.recipients.iter().skip(landed.len()).map(|r| r.tier),
            );
            if !unminted.is_empty() {
                crate::services::inventory::release_now(&state, body.event_id, &unminted).await;
            }
            // Void exactly what this batch minted before the failure.
            for &ticket_id in &landed {
                if let Err(e) = organizer::revoke_ticket(&state, body.event_id, ticket_id).await {
                    tracing::error!(event = body.event_id, ticket_id, error = %e,
                        "could not void a ticket of a failed batch; revoke it by hand");
                }
            }
            Err(error.into())
        }
    }
}

/// The calling wallet's tickets
///
/// `GET /api/tickets/my`: the wallet's tickets (at most 1000) with their QR
/// code text.
#[utoipa::path(
    get,
    path = "/api/tickets/my",
    tag = "tickets",
    security(("wallet_session" = [])),
    responses(
        (status = 200, description = "The wallet's tickets", body = Vec<TicketView>),
        (status = 401, description = "`missing_token`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`login_disabled`", body = ErrorBody),
        (status = 503, description = "`storage_unavailable` or `chain_unavailable` (no issuer key)", body = ErrorBody),
    )
)]
pub async fn my_tickets(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Vec<TicketView>>, ApiError> {
    let rows = sqlx::query(
        "SELECT * FROM tickets WHERE owner = $1 ORDER BY event_id, ticket_id LIMIT 1000",
    )
    .bind(user.wallet.to_base58())
    .fetch_all(state.store.pool())
    .await
    .map_err(store_err)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let ticket = crate::store::ticket_of_row(row)?;
        out.push(TicketView {
            code: organizer::credential_for(&state, &ticket)?.encode(),
            ticket,
        });
    }
    Ok(Json(out))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QrQuery {
    /// `png` (the default) or `svg`.
    #[serde(default)]
    pub format: Option<String>,
}

/// A ticket's QR code as an image
///
/// `GET /api/tickets/{event}/{ticket}/qr?format=png|svg` (the holder or the
/// event's organizer): the signed credential as a QR image.
#[utoipa::path(
    get,
    path = "/api/tickets/{event}/{ticket}/qr",
    tag = "tickets",
    params(
        ("event" = u64, Path, description = "The event id"),
        ("ticket" = u32, Path, description = "The ticket id within the event"),
        QrQuery,
    ),
    security(("wallet_session" = [])),
    responses(
        (status = 200, description = "The QR code", content(
            (inline(crate::http::openapi::BinaryBody) = "image/png"),
            (String = "image/svg+xml"),
        )),
        (status = 400, description = "(plain text) an id or the query string does not parse", body = String, content_type = "text/plain"),
        (status = 401, description = "`missing_token`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: neither the holder nor the event's organizer; or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such ticket or event", body = ErrorBody),
        (status = 422, description = "`invalid_field`: `format` is neither `png` nor `svg`", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`storage_unavailable` or `chain_unavailable` (no issuer key)", body = ErrorBody),
    )
)]
pub async fn qr(
    State(state): State<AppState>,
    user: AuthUser,
    Path((event_id, ticket_id)): Path<(u64, u32)>,
    Query(query): Query<QrQuery>,
) -> Result<Response, ApiError> {
    let ticket = ticket_or_404(&state, event_id, ticket_id).await?;
    if ticket.owner != user.wallet {
        require_organizer_of(&state, &user, event_id).await?;
    }
    let code = organizer::credential_for(&state, &ticket)?.encode();
    let qr = qrcode::QrCode::with_error_correction_level(code.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| ApiError::Internal(format!("QR: {e}")))?;
    match query.format.as_deref().unwrap_or("png") {
        "svg" => {
            let svg = qr
                .render::<qrcode::render::svg::Color>()
                .min_dimensions(256, 256)
                .build();
            Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
        }
        "png" => Ok(([(header::CONTENT_TYPE, "image/png")], qr_png(&code)?).into_response()),
        other => Err(field_error("format", format!("{other:?}: use png or svg"))),
    }
}

/// `code` as a QR code PNG (rendered as the confirmation mail does).
pub fn qr_png(code: &str) -> Result<Vec<u8>, ApiError> {
    crate::adapters::mail::qr_png(code).map_err(ApiError::Internal)
}

/// Parses a wallet the way the API does everywhere.
pub fn wallet_of(text: &str) -> Result<PublicKeyBytes, ApiError> {
    parse_wallet("wallet", text)
}

/// A ticket NFT's metadata
///
/// `GET /m/{event}/{ticket}` (the NFT's metadata URI) and
/// `GET /api/tickets/{event}/{ticket}/metadata`: the metadata JSON wallets
/// and marketplaces read (name, symbol, description, image, external_url,
/// attributes). Public; it never contains the QR credential.
#[utoipa::path(
    get,
    path = "/m/{event}/{ticket}",
    tag = "metadata",
    params(
        ("event" = u64, Path, description = "The event id"),
        ("ticket" = u32, Path, description = "The ticket id within the event"),
    ),
    responses(
        (status = 200, description = "Metaplex-style NFT metadata", body = Object, example = json!({
            "name": "Summer Festival #7",
            "symbol": "TIX",
            "description": "Three days by the lake",
            "image": "https://tickets.example/m/42/7/image.svg",
            "external_url": "https://tickets.example/api/events/42",
            "attributes": [
                {"trait_type": "Event", "value": "Summer Festival"},
                {"trait_type": "Tier", "value": "VIP"},
                {"trait_type": "Ticket", "value": 7},
                {"trait_type": "Status", "value": "Active"}
            ]
        })),
        (status = 400, description = "`bad_request`: the event id is too large; or (plain text) an id does not parse", content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 404, description = "`not_found`: no such ticket or event", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn metadata(
    State(state): State<AppState>,
    Path((event_id, ticket_id)): Path<(u64, u32)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let ticket = ticket_or_404(&state, event_id, ticket_id).await?;
    let event = state
        .store
        .event(event_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no event {event_id}")))?;
    let details = event_view(&state, event_id).await?;
    let tier = event
        .tiers
        .iter()
        .find(|t| t.index == ticket.tier)
        .map_or_else(|| format!("tier {}", ticket.tier), |t| t.name.clone());
    let base = state.config.api.public_url.trim_end_matches('/');
    let mut attributes = vec![
        serde_json::json!({ "trait_type": "Event", "value": event.name }),
        serde_json::json!({ "trait_type": "Tier", "value": tier }),
        serde_json::json!({ "trait_type": "Ticket", "value": ticket_id }),
        serde_json::json!({ "trait_type": "Status", "value": format!("{:?}", ticket.status) }),
    ];
    if let Some(d) = &details {
        attributes.push(serde_json::json!({ "trait_type": "Venue", "value": d.venue }));
        attributes.push(serde_json::json!({ "trait_type": "Starts", "display_type": "date", "value": d.starts_at }));
    }
    Ok(Json(serde_json::json!({
        "name": format!("{} #{ticket_id}", event.name),
        "symbol": "TIX",
        "description": details.map(|d| d.description).unwrap_or_default(),
        "image": format!("{base}/m/{event_id}/{ticket_id}/image.svg"),
        "external_url": format!("{base}/api/events/{event_id}"),
        "attributes": attributes,
    })))
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A ticket NFT's picture
///
/// `GET /m/{event}/{ticket}/image.svg`: the picture wallets show, a ticket
/// card with the event, tier and number (not the QR code: that is the
/// holder's alone). Public.
#[utoipa::path(
    get,
    path = "/m/{event}/{ticket}/image.svg",
    tag = "metadata",
    params(
        ("event" = u64, Path, description = "The event id"),
        ("ticket" = u32, Path, description = "The ticket id within the event"),
    ),
    responses(
        (status = 200, description = "The ticket card", body = String, content_type = "image/svg+xml"),
        (status = 400, description = "(plain text) an id does not parse", body = String, content_type = "text/plain"),
        (status = 404, description = "`not_found`: no such ticket or event", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn card_image(
    State(state): State<AppState>,
    Path((event_id, ticket_id)): Path<(u64, u32)>,
) -> Result<Response, ApiError> {
    let ticket = ticket_or_404(&state, event_id, ticket_id).await?;
    let event = state
        .store
        .event(event_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no event {event_id}")))?;
    let tier = event
        .tiers
        .iter()
        .find(|t| t.index == ticket.tier)
        .map_or_else(String::new, |t| t.name.clone());
    let svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"600\" height=\"300\" viewBox=\"0 0 600 300\">\
<rect width=\"600\" height=\"300\" rx=\"24\" fill=\"#14213d\"/>\
<text x=\"40\" y=\"90\" font-family=\"sans-serif\" font-size=\"36\" fill=\"#fca311\">{}</text>\
<text x=\"40\" y=\"160\" font-family=\"sans-serif\" font-size=\"28\" fill=\"#e5e5e5\">{}</text>\
<text x=\"40\" y=\"240\" font-family=\"monospace\" font-size=\"44\" fill=\"#ffffff\">#{ticket_id}</text></svg>",
        xml_escape(&event.name),
        xml_escape(&tier),
    );
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    /// The new owner's wallet (base58): a direct transfer.
    #[serde(default)]
    pub to_wallet: Option<String>,
    /// Or an email address: the recipient claims it with the mailed link
    /// ([`super::claims`]).
    #[serde(default)]
    pub to_email: Option<String>,
    /// How long the claim link works (`to_email` only; default 72 h).
    #[serde(default)]
    pub expires_in_secs: Option<u32>,
}

impl Validate for TransferBody {
    fn validate(&self) -> Result<(), ApiError> {
        use super::claims::{MAX_CLAIM_SECS, MIN_CLAIM_SECS};
        match (&self.to_wallet, &self.to_email) {
            (Some(_), Some(_)) => Err(field_error(
                "to_email",
                "give to_wallet or to_email, not both",
            )),
            (None, None) => Err(field_error("to_wallet", "missing field (or to_email)")),
            (Some(wallet), None) => {
                if self.expires_in_secs.is_some() {
                    return Err(field_error("expires_in_secs", "only with to_email"));
                }
                parse_wallet("to_wallet", wallet).map(|_| ())
            }
            (None, Some(email)) => {
                if let Some(secs) = self.expires_in_secs {
                    check_range("expires_in_secs", secs, MIN_CLAIM_SECS..=MAX_CLAIM_SECS)?;
                }
                check_email("to_email", email)
            }
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TransferRequest {
    /// The unsigned legacy transaction (base64, bincode), fee payer and
    /// signer the current owner: sign it in the wallet and send it back to
    /// `POST /api/tickets/{event}/{ticket}/transfer/submit` (or to any RPC).
    pub transaction: String,
    /// What the wallet should show its owner.
    pub message: String,
    /// When an email transfer's claim link stops working (chain time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// Prepare a transfer for the holder's wallet to sign
///
/// `POST /api/tickets/{event}/{ticket}/transfer` (the ticket's holder):
/// a transfer the holder's wallet signs, in the style of a Solana Pay
/// transaction request. The server never holds the holder's key.
#[utoipa::path(
    post,
    path = "/api/tickets/{event}/{ticket}/transfer",
    tag = "tickets",
    params(
        ("event" = u64, Path, description = "The event id"),
        ("ticket" = u32, Path, description = "The ticket id within the event"),
    ),
    request_body = TransferBody,
    security(("wallet_session" = [])),
    responses(
        (status = 200, description = "The unsigned transaction", body = TransferRequest),
        (status = 400, description = "`malformed_json`: the body is not JSON; or (plain text) a path id does not parse", content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: send the body as `application/json`", body = ErrorBody),
        (status = 401, description = "`missing_token`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not the ticket's holder; or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such ticket", body = ErrorBody),
        (status = 409, description = "`conflict`: the ticket already has an open email transfer", body = ErrorBody),
        (status = 422, description = "`invalid_field`: give exactly one of `to_wallet` and `to_email`; a wallet that is not one or is the holder already; a bad address or `expires_in_secs`", body = ErrorBody),
        (status = 503, description = "`chain_unavailable` or `storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn transfer(
    State(state): State<AppState>,
    user: AuthUser,
    Path((event_id, ticket_id)): Path<(u64, u32)>,
    ValidJson(body): ValidJson<TransferBody>,
) -> Result<Json<TransferRequest>, ApiError> {
    use solana_sdk::signature::Signer;
    let to_wallet = match (&body.to_wallet, &body.to_email) {
        (Some(wallet), _) => wallet,
        (None, Some(email)) => {
            return super::claims::prepare_email_transfer(
                &state,
                &user,
                event_id,
                ticket_id,
                email,
                body.expires_in_secs,
            )
            .await
            .map(Json);
        }
        (None, None) => return Err(field_error("to_wallet", "missing field")),
    };
    let ticket = ticket_or_404(&state, event_id, ticket_id).await?;
    if ticket.owner != user.wallet {
        return Err(ApiError::Forbidden(
            "only the ticket's holder may transfer it",
        ));
    }
    let to = parse_wallet("to_wallet", to_wallet)?;
    if to == user.wallet {
        return Err(field_error("to_wallet", "is already the holder"));
    }
    let ctx = state
        .chain
        .as_ref()
        .ok_or_else(|| ApiError::ChainUnavailable("no chain configured".into()))?;
    let event_address = ticketing::client::event_address(&ctx.authority.pubkey(), event_id).0;
    let standard = crate::services::organizer::event_on_chain(&state, event_id)
        .await?
        .token_standard;
    let owner = Pubkey::new_from_array(user.wallet.0);
    let instruction = ticketing::client::transfer_ticket(
        &owner,
        &Pubkey::new_from_array(to.0),
        &event_address,
        ticket_id,
        standard,
    );
    Ok(Json(TransferRequest {
        transaction: super::claims::unsigned_transaction(ctx, &owner, instruction).await?,
        message: format!("Transfer ticket #{ticket_id} to {}", to.to_base58()),
        expires_at: None,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedTransferBody {
    /// The transaction from `transfer` or `transfer/cancel`, signed by the
    /// holder (base64).
    pub transaction: String,
}

impl Validate for SignedTransferBody {
    fn validate(&self) -> Result<(), ApiError> {
        check_text("transaction", &self.transaction, 1..=4096, false)
    }
}

/// Send the holder-signed transfer
///
/// `POST /api/tickets/{event}/{ticket}/transfer/submit` (the holder): sends
/// the holder-signed transaction, then publishes the ticket as it is on chain
/// (after a transfer the old owner's code is refused). Only a lone
/// `transfer_ticket`, `open_email_transfer` or `cancel_email_transfer` of
/// this very ticket by its holder is accepted; see
/// [`super::claims::submit_signed`].
#[utoipa::path(
    post,
    path = "/api/tickets/{event}/{ticket}/transfer/submit",
    tag = "tickets",
    params(
        ("event" = u64, Path, description = "The event id"),
        ("ticket" = u32, Path, description = "The ticket id within the event"),
    ),
    request_body = SignedTransferBody,
    security(("wallet_session" = [])),
    responses(
        (status = 200, description = "Sent; the ticket as it is now on chain (after a transfer: its new owner and generation) and the email transfer it opened or cancelled", body = super::claims::SubmittedTransfer),
        (status = 400, description = "`malformed_json`: the body is not JSON; or (plain text) a path id does not parse", content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: send the body as `application/json`", body = ErrorBody),
        (status = 401, description = "`missing_token`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: the event is not on chain", body = ErrorBody),
        (status = 422, description = "`invalid_field`: `transaction` is not base64, not a legacy transaction, not exactly the `transfer_ticket`, `open_email_transfer` or `cancel_email_transfer` of this ticket by the caller, or not signed; or `chain_refused`", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`chain_unavailable` or `storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn submit_transfer(
    State(state): State<AppState>,
    user: AuthUser,
    Path((event_id, ticket_id)): Path<(u64, u32)>,
    ValidJson(body): ValidJson<SignedTransferBody>,
) -> Result<Json<super::claims::SubmittedTransfer>, ApiError> {
    super::claims::submit_signed(&state, &user, event_id, ticket_id, &body.transaction)
        .await
        .map(Json)
}
