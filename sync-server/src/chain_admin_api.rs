//! Organizer endpoints that act on chain (`/api/admin`, admin token):
//! create an event, mint tickets to wallets, revoke a ticket, pick up
//! holders' transfers, and watch the replay of gate scans.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use shared::wire::{CachedEvent, CachedTicket};
use solana_sdk::pubkey::Pubkey;
use solana_sdk::signature::Signer;

use crate::AppState;
use crate::admin_api::Admin;
use crate::error::ApiError;
use crate::organizer::{self, NewEvent};
use crate::store::{ReplaySummary, ScanReplay};

/// Most tickets one mint request may ask for.
pub const MAX_MINT_PER_REQUEST: usize = 100;

#[derive(Debug, Serialize)]
pub struct CreatedEvent {
    pub event: CachedEvent,
    /// The event account on chain (base58).
    pub address: String,
    pub organizer: String,
    /// The key the replay worker records this event's entries with.
    pub validator: String,
}

/// `POST /api/admin/events`: create (or finish creating) an event on chain
/// and publish it to its gates.
pub async fn create_event(
    _: Admin,
    State(state): State<AppState>,
    Json(spec): Json<NewEvent>,
) -> Result<(StatusCode, Json<CreatedEvent>), ApiError> {
    if spec.name.trim().is_empty() || spec.name.len() > 64 {
        return Err(ApiError::BadRequest("name: 1 to 64 characters".into()));
    }
    if spec.venue.len() > 64 {
        return Err(ApiError::BadRequest("venue: at most 64 characters".into()));
    }
    if !(1..=100_000).contains(&spec.capacity) {
        return Err(ApiError::BadRequest("capacity: 1 to 100000".into()));
    }
    if spec.ends_at <= spec.starts_at || spec.doors_close_at <= spec.doors_open_at {
        return Err(ApiError::BadRequest(
            "ends_at must be after starts_at, doors_close_at after doors_open_at".into(),
        ));
    }
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    /// The holder's wallet (base58).
    pub wallet: String,
    #[serde(default)]
    pub tier: u8,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MintRequest {
    pub recipients: Vec<Recipient>,
}

#[derive(Debug, Serialize)]
pub struct MintedTicket {
    #[serde(flatten)]
    pub ticket: CachedTicket,
    /// The signed credential the QR code carries.
    pub code: String,
}

#[derive(Debug, Serialize)]
pub struct MintResponse {
    pub tickets: Vec<MintedTicket>,
}

/// `POST /api/admin/events/{event}/tickets`: mint tickets to wallets (paid
/// off chain), publish them to the gates, return their QR credentials.
pub async fn mint(
    _: Admin,
    State(state): State<AppState>,
    Path(event_id): Path<u64>,
    Json(request): Json<MintRequest>,
) -> Result<(StatusCode, Json<MintResponse>), ApiError> {
    if request.recipients.is_empty() || request.recipients.len() > MAX_MINT_PER_REQUEST {
        return Err(ApiError::BadRequest(format!(
            "recipients: 1 to {MAX_MINT_PER_REQUEST}"
        )));
    }
    let mut recipients = Vec::with_capacity(request.recipients.len());
    for (i, r) in request.recipients.iter().enumerate() {
        let wallet: Pubkey = r.wallet.parse().map_err(|_| {
            ApiError::BadRequest(format!("recipients[{i}].wallet: not a base58 public key"))
        })?;
        recipients.push((wallet, r.tier));
    }
    // Organizer mints take seats like purchases do, so a buyer who is
    // paying keeps the seat they hold.
    let seats = crate::api::inventory::seats_of(recipients.iter().map(|(_, tier)| *tier));
    crate::api::inventory::take_now(&state, event_id, &seats).await?;
    let mut landed = 0;
    let issued =
        match organizer::mint_tickets(&state, event_id, &recipients, |ids| landed += ids.len())
            .await
        {
            Ok(issued) => issued,
            Err(e) => {
                let unminted = crate::api::inventory::seats_of(
                    recipients.iter().skip(landed).map(|(_, t)| *t),
                );
                if !unminted.is_empty() {
                    crate::api::inventory::release_now(&state, event_id, &unminted).await;
                }
                return Err(e.into());
            }
        };
    Ok((
        StatusCode::CREATED,
        Json(MintResponse {
            tickets: issued
                .into_iter()
                .map(|t| MintedTicket {
                    ticket: t.ticket,
                    code: t.credential.encode(),
                })
                .collect(),
        }),
    ))
}

/// `POST /api/admin/events/{event}/tickets/{ticket}/revoke`
pub async fn revoke(
    _: Admin,
    State(state): State<AppState>,
    Path((event_id, ticket_id)): Path<(u64, u32)>,
) -> Result<Json<CachedTicket>, ApiError> {
    Ok(Json(
        organizer::revoke_ticket(&state, event_id, ticket_id).await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub ticket_ids: Vec<u32>,
}

/// `POST /api/admin/events/{event}/tickets/refresh`: read tickets from
/// chain again (holders transfer without the server) and publish changes.
pub async fn refresh(
    _: Admin,
    State(state): State<AppState>,
    Path(event_id): Path<u64>,
    Json(request): Json<RefreshRequest>,
) -> Result<Json<Vec<CachedTicket>>, ApiError> {
    if request.ticket_ids.is_empty() || request.ticket_ids.len() > 1000 {
        return Err(ApiError::BadRequest("ticket_ids: 1 to 1000".into()));
    }
    Ok(Json(
        organizer::refresh_tickets(&state, event_id, &request.ticket_ids).await?,
    ))
}

#[derive(Debug, Deserialize)]
pub struct ReplayQuery {
    /// Include every scan's replay state.
    #[serde(default)]
    pub scans: bool,
}

#[derive(Debug, Serialize)]
pub struct ReplayStatus {
    #[serde(flatten)]
    pub summary: ReplaySummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scans: Option<Vec<ScanReplay>>,
}

/// `GET /api/admin/events/{event}/replay[?scans=true]`: how far the
/// event's gate scans are on chain, and what they cost.
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

#[derive(Debug, Serialize)]
pub struct ChainInfo {
    pub chain: String,
    pub authority: String,
    pub issuer: String,
}

/// `GET /api/admin/chain`: which chain this server uses, with which keys.
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
