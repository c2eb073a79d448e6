//! Organizer endpoints that act on chain (`/api/admin`, admin token):
//! create an event, mint tickets to wallets, revoke a ticket, pick up
//! holders' transfers, and watch the replay of gate scans.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shared::wire::{CachedEvent, CachedTicket};
use solana_sdk::pubkey::Pubkey;
use solana_sdk::signature::Signer;

use crate::http::admin::Admin;
use crate::http::api::mints;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::state::AppState;
use crate::http::validation::{
    ValidJson, Validate, check_chain_text, check_count, check_id, check_tier_names, parse_wallet,
};
use crate::services::minting::{self, MintKind, MintOrder, MintRequestView};
use crate::services::organizer::{self, NewEvent};
use crate::store::{ReplaySummary, ScanReplay};
use ticketing::constants::{MAX_EVENT_NAME_LEN, MAX_VENUE_LEN};

/// Most tickets one mint request may ask for.
pub const MAX_MINT_PER_REQUEST: usize = 100;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedEvent {
    pub event: CachedEvent,
    /// The event account on chain (base58).
    pub address: String,
    /// The event's organizer on chain (base58).
    pub organizer: String,
    /// The key the replay worker records this event's entries with.
    pub validator: String,
}

/// Create an event on chain
///
/// `POST /api/admin/events`: create (or finish creating) an event on chain
/// and publish it to its gates with its check-in rules. Repeating it repairs
/// a half-done creation.
#[utoipa::path(
    post,
    path = "/api/admin/events",
    operation_id = "admin_create_event",
    tag = "admin",
    request_body = NewEvent,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "Created (or found complete) and published", body = CreatedEvent),
        (status = 400, description = "`malformed_json`: the body is not JSON", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not sent as `application/json`", body = ErrorBody),
        (status = 422, description = "`invalid_field` (with `field`): `event_id` above 2^63-1, a field out of range (name, venue, capacity, tiers, a rule), missing, unknown or of the wrong type, text holding control characters, `ends_at` before `starts_at` or in the past, `doors_close_at` before `doors_open_at`; `chain_refused`: the program refused the operation", body = ErrorBody),
        (status = 503, description = "`chain_unavailable` (no chain configured, or it does not answer) or `storage_unavailable`", body = ErrorBody),
        crate::http::openapi::responses::AdminRefusals,
    )
)]
pub async fn create_event(
    _: Admin,
    State(state): State<AppState>,
    ValidJson(spec): ValidJson<NewEvent>,
) -> Result<(StatusCode, Json<CreatedEvent>), ApiError> {
    // The rules that need the clock (an event must not lie in the past).
    organizer::check_new_event(&spec, state.clock.now())?;
    let event = organizer::create_event(&state, &spec).await?;
    let row = state
        .store
        .event_chain(spec.event_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("event {} vanished", spec.event_id)))?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedEvent {
            event,
            address: row.address,
            organizer: row.organizer,
            validator: row.validator_public,
        }),
    ))
}

/// The rules of an admin event body that need no clock.
impl Validate for NewEvent {
    fn validate(&self) -> Result<(), ApiError> {
        check_id("event_id", self.event_id)?;
        check_chain_text("name", &self.name, 1..=32, MAX_EVENT_NAME_LEN)?;
        check_chain_text("venue", &self.venue, 0..=32, MAX_VENUE_LEN)?;
        check_tier_names(self.tiers.iter().map(|t| t.name.as_str()))
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    /// The holder's wallet (base58).
    pub wallet: String,
    /// The tier's index (default 0).
    #[serde(default)]
    pub tier: u8,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintRequest {
    /// 1 to 100 recipients.
    // 100 is `MAX_MINT_PER_REQUEST`: utoipa takes literals only.
    #[schema(min_items = 1, max_items = 100)]
    pub recipients: Vec<Recipient>,
}

impl Validate for MintRequest {
    fn validate(&self) -> Result<(), ApiError> {
        check_count(
            "recipients",
            self.recipients.len(),
            1..=MAX_MINT_PER_REQUEST,
        )?;
        for (i, r) in self.recipients.iter().enumerate() {
            parse_wallet(&format!("recipients[{i}].wallet"), &r.wallet)?;
        }
        Ok(())
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MintedTicket {
    #[serde(flatten)]
    pub ticket: CachedTicket,
    /// The signed credential the QR code carries.
    pub code: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MintResponse {
    pub tickets: Vec<MintedTicket>,
}

/// Mint tickets to wallets
///
/// `POST /api/admin/events/{event}/tickets`: mint tickets to wallets (paid
/// off chain), publish them to the gates, return their QR credentials. The
/// request and its seats are recorded before anything goes to chain; a
/// crash or a chain outage part way is finished in the background (202;
/// `GET /api/admin/mints/{request}`). All or nothing: if the chain refuses
/// part way, the tickets already minted are revoked and the request fails.
#[utoipa::path(
    post,
    path = "/api/admin/events/{event}/tickets",
    operation_id = "admin_mint",
    tag = "admin",
    params(
        ("event" = u64, Path, description = "The event id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Any 1 to 255 visible ASCII characters picked per request. A retry with the same key and body answers the first request's outcome (201 with the same tickets, 202 while it still mints, or its refusal) and never mints again; the same key with another body is 422 naming `Idempotency-Key`."),
    ),
    request_body = MintRequest,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "Minted and published", body = MintResponse, headers(("Mint-Request-Id" = String, description = "The mint request; read it at `GET /api/admin/mints/{request}`"))),
        (status = 202, description = "Recorded and still minting; finished in the background: read `Location`", body = MintRequestView, headers(("Mint-Request-Id" = String, description = "The mint request"), ("Location" = String, description = "`/api/admin/mints/{request}`"))),
        (status = 400, description = "`bad_request`: the event id does not parse; `malformed_json`: the body is not JSON", body = ErrorBody),
        (status = 404, description = "`not_found`: the event is not on chain", body = ErrorBody),
        (status = 409, description = "`sold_out`: a tier or the event has fewer seats left than asked (nothing recorded)", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not sent as `application/json`", body = ErrorBody),
        (status = 422, description = "`invalid_field` (with `field`): no recipients or more than 100 (`recipients`), a wallet that is not a base58 ed25519 key (`recipients[3].wallet`), a tier the event does not have (`recipients[3].tier`), a field missing, unknown or of the wrong type, `Idempotency-Key` when the key was used for another body; `chain_refused` (with `Mint-Request-Id`)", body = ErrorBody),
        (status = 503, description = "`chain_unavailable` (no chain configured, or it does not answer) or `storage_unavailable`", body = ErrorBody),
        crate::http::openapi::responses::AdminRefusals,
    )
)]
pub async fn mint(
    _: Admin,
    State(state): State<AppState>,
    Path(event_id): Path<u64>,
    headers: HeaderMap,
    ValidJson(request): ValidJson<MintRequest>,
) -> Result<Response, ApiError> {
    let mut recipients = Vec::with_capacity(request.recipients.len());
    for (i, r) in request.recipients.iter().enumerate() {
        let wallet = parse_wallet(&format!("recipients[{i}].wallet"), &r.wallet)?;
        recipients.push((Pubkey::new_from_array(wallet.0), r.tier));
    }
    let key = mints::idempotency_key(&headers)?;
    // Organizer mints take seats like purchases do, so a buyer who is
    // paying keeps the seat they hold.
    let order = MintOrder {
        event_id,
        caller: minting::ADMIN_CALLER,
        kind: MintKind::Admin,
        idempotency_key: key.as_deref(),
        recipients: &recipients,
    };
    let outcome = minting::mint(&state, &order).await?;
    mints::answer(&state, outcome, "/api/admin/mints", |tickets| {
        Json(MintResponse {
            tickets: tickets
                .into_iter()
                .map(|t| MintedTicket {
                    ticket: t.ticket,
                    code: t.credential.encode(),
                })
                .collect(),
        })
        .into_response()
    })
    .await
}

/// Revoke a ticket on chain
///
/// `POST /api/admin/events/{event}/tickets/{ticket}/revoke`: the ticket is
/// refused at every gate once they sync.
#[utoipa::path(
    post,
    path = "/api/admin/events/{event}/tickets/{ticket}/revoke",
    operation_id = "admin_revoke_ticket",
    tag = "admin",
    params(crate::http::openapi::responses::TicketPath),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Revoked; the ticket as gates now see it", body = CachedTicket),
        (status = 400, description = "`bad_request`: an id does not parse", body = ErrorBody),
        (status = 404, description = "`not_found`: the event is not on chain", body = ErrorBody),
        (status = 422, description = "`chain_refused`: the program refused the operation", body = ErrorBody),
        (status = 503, description = "`chain_unavailable` (no chain configured, or it does not answer) or `storage_unavailable`", body = ErrorBody),
        crate::http::openapi::responses::AdminRefusals,
    )
)]
pub async fn revoke(
    _: Admin,
    State(state): State<AppState>,
    Path((event_id, ticket_id)): Path<(u64, u32)>,
) -> Result<Json<CachedTicket>, ApiError> {
    Ok(Json(
        organizer::revoke_ticket(&state, event_id, ticket_id).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// 1 to 1000 ticket ids.
    #[schema(min_items = 1, max_items = 1000)]
    pub ticket_ids: Vec<u32>,
}

impl Validate for RefreshRequest {
    fn validate(&self) -> Result<(), ApiError> {
        check_count("ticket_ids", self.ticket_ids.len(), 1..=1000)
    }
}

/// Read tickets from chain again
///
/// `POST /api/admin/events/{event}/tickets/refresh`: read tickets from
/// chain again (holders transfer without the server) and publish changes.
#[utoipa::path(
    post,
    path = "/api/admin/events/{event}/tickets/refresh",
    tag = "admin",
    params(("event" = u64, Path, description = "The event id")),
    request_body = RefreshRequest,
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The tickets as now published", body = Vec<CachedTicket>),
        (status = 400, description = "`bad_request`: the event id does not parse; `malformed_json`: the body is not JSON", body = ErrorBody),
        (status = 404, description = "`not_found`: the event is not on chain", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not sent as `application/json`", body = ErrorBody),
        (status = 422, description = "`invalid_field` (with `field`): no ticket ids or more than 1000 (`ticket_ids`), a field missing, unknown or of the wrong type; `chain_refused`: the program refused the operation", body = ErrorBody),
        (status = 503, description = "`chain_unavailable` (no chain configured, or it does not answer) or `storage_unavailable`", body = ErrorBody),
        crate::http::openapi::responses::AdminRefusals,
    )
)]
pub async fn refresh(
    _: Admin,
    State(state): State<AppState>,
    Path(event_id): Path<u64>,
    ValidJson(request): ValidJson<RefreshRequest>,
) -> Result<Json<Vec<CachedTicket>>, ApiError> {
    Ok(Json(
        organizer::refresh_tickets(&state, event_id, &request.ticket_ids).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReplayQuery {
    /// Include every scan's replay state.
    #[serde(default)]
    pub scans: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReplayStatus {
    #[serde(flatten)]
    pub summary: ReplaySummary,
    /// Every scan's replay state, with `?scans=true` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scans: Option<Vec<ScanReplay>>,
}

/// How far an event's scans are on chain
///
/// `GET /api/admin/events/{event}/replay[?scans=true]`: how far the
/// event's gate scans are on chain, and what they cost.
#[utoipa::path(
    get,
    path = "/api/admin/events/{event}/replay",
    tag = "admin",
    params(("event" = u64, Path, description = "The event id"), ReplayQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The replay figures", body = ReplayStatus),
        (status = 400, description = "`bad_request`: the event id or the query string does not parse", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event", body = ErrorBody),
        crate::http::openapi::responses::AdminRefusals,
        crate::http::openapi::responses::StorageDown,
    )
)]
pub async fn replay_status(
    _: Admin,
    State(state): State<AppState>,
    Path(event_id): Path<u64>,
    Query(query): Query<ReplayQuery>,
) -> Result<Json<ReplayStatus>, ApiError> {
    if state.store.event(event_id).await?.is_none() {
        return Err(ApiError::NotFound(format!("no event {event_id}")));
    }
    let summary = state.store.replay_summary(event_id).await?;
    let scans = if query.scans {
        Some(state.store.scan_replays(event_id).await?)
    } else {
        None
    };
    Ok(Json(ReplayStatus { summary, scans }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChainInfo {
    /// `embedded (FILE)` or `rpc (URL)`.
    pub chain: String,
    /// The key that organizes the events the server creates and pays fees
    /// (base58).
    pub authority: String,
    /// The key that signs QR credentials (base58).
    pub issuer: String,
}

/// Which chain the server uses, with which keys
///
/// `GET /api/admin/chain`: which chain this server uses, with which keys.
#[utoipa::path(
    get,
    path = "/api/admin/chain",
    tag = "admin",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The chain and the server's keys for it", body = ChainInfo),
        (status = 503, description = "`chain_unavailable`: no chain configured", body = ErrorBody),
        crate::http::openapi::responses::AdminRefusals,
    )
)]
pub async fn chain_info(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<ChainInfo>, ApiError> {
    let ctx = state
        .chain
        .as_ref()
        .ok_or_else(|| ApiError::ChainUnavailable("this server has no chain configured".into()))?;
    Ok(Json(ChainInfo {
        chain: ctx.chain.describe(),
        authority: ctx.authority.pubkey().to_string(),
        issuer: shared::PublicKeyBytes::from(&ctx.issuer.verifying_key()).to_base58(),
    }))
}
