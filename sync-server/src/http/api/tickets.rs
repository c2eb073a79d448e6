//! Tickets for organizers and holders (`/api/tickets`, `/m`), through
//! [`crate::services::minting`] and [`crate::services::tickets`]:
//!
//! - `POST /api/tickets/mint` and `/api/tickets/batch-mint` (the event's
//!   organizer; rate limited): NFTs to wallets, paid off chain, all or
//!   nothing; answers their QR code text.
//! - `GET /api/tickets/my` (logged in): the wallet's tickets with their codes.
//! - `GET /api/tickets/{event}/{ticket}` and `.../qr?format=png|svg` (holder
//!   or the event's organizer): the signed credential, as text or image.
//! - `GET /m/{event}/{ticket}` and `.../image.svg` (public): the NFT's
//!   metadata and picture.
//! - Transfers, to a wallet or to an email address: [`super::transfers`].

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shared::PublicKeyBytes;
use shared::wire::CachedTicket;
use solana_sdk::pubkey::Pubkey;

use super::auth::{AuthUser, Role};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::state::AppState;
use crate::http::validation::{
    ValidJson, Validate, check_count, check_id, field_error, parse_wallet,
};
use crate::services::organizer::IssuedTicket;
use crate::services::{Services, events, minting, tickets};

pub use crate::services::tickets::qr_png;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TicketView {
    #[serde(flatten)]
    pub ticket: CachedTicket,
    /// The signed credential a QR code carries.
    pub code: String,
}

impl From<IssuedTicket> for TicketView {
    fn from(t: IssuedTicket) -> Self {
        Self {
            code: t.credential.encode(),
            ticket: t.ticket,
        }
    }
}

/// The ticket, or 404 naming it.
async fn ticket_or_404(
    state: &Services,
    event_id: u64,
    ticket_id: u32,
) -> Result<CachedTicket, ApiError> {
    Ok(tickets::ticket(state, event_id, ticket_id).await?)
}

/// The ticket, if `user` holds it or organizes its event.
async fn ticket_for_holder_or_organizer(
    state: &Services,
    user: &AuthUser,
    event_id: u64,
    ticket_id: u32,
) -> Result<CachedTicket, ApiError> {
    let ticket = ticket_or_404(state, event_id, ticket_id).await?;
    if ticket.owner != user.wallet {
        events::require_organizer(state, &user.wallet, event_id).await?;
    }
    Ok(ticket)
}

/// Refuses anyone but the organizer of `event_id` (with that role).
async fn require_organizer_of(
    state: &Services,
    user: &AuthUser,
    event_id: u64,
) -> Result<(), ApiError> {
    user.require_role(&[Role::Organizer])?;
    Ok(events::require_organizer(state, &user.wallet, event_id).await?)
}

/// `GET /api/tickets/{event}/{ticket}` (its holder, with the QR code text;
/// the event's organizer, also with it).
#[utoipa::path(
    get,
    path = "/api/tickets/{event}/{ticket}",
    tag = "tickets",
    params(crate::http::openapi::responses::TicketPath),
    security(("wallet_session" = [])),
    responses(
        (status = 200, description = "The ticket and its QR code text", body = TicketView),
        (status = 403, description = "`forbidden`: neither its holder nor the event's organizer", body = ErrorBody),
        (status = 404, description = "`not_found`: no such ticket", body = ErrorBody),
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::ChainOrStorageDown,
        crate::http::openapi::responses::Internal,
    )
)]
pub async fn get_ticket(
    State(state): State<AppState>,
    user: AuthUser,
    Path((event_id, ticket_id)): Path<(u64, u32)>,
) -> Result<Json<TicketView>, ApiError> {
    let ticket = ticket_for_holder_or_organizer(&state, &user, event_id, ticket_id).await?;
    Ok(Json(tickets::issued(&state, ticket)?.into()))
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
        check_id("event_id", self.event_id)?;
        parse_wallet("wallet", &self.wallet).map(|_| ())
    }
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
        (status = 403, description = "`role_required` (not an organizer), `forbidden` (not this event's organizer) or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event (in the database or on chain)", body = ErrorBody),
        (status = 422, description = "`invalid_field` (with `field`), or `chain_refused` (e.g. the tier is sold out)", body = ErrorBody),
        (status = 429, description = "`rate_limited`: the wallet spent its mint budget (`api.rate_limits.mint`)", body = ErrorBody, headers(("Retry-After" = u64, description = "Whole seconds to wait before trying again"))),
        crate::http::openapi::responses::JsonBodyRefusals,
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::ChainOrStorageDown,
        crate::http::openapi::responses::Internal,
    )
)]
pub async fn mint(
    State(state): State<AppState>,
    user: AuthUser,
    ValidJson(body): ValidJson<MintBody>,
) -> Result<(StatusCode, Json<TicketView>), ApiError> {
    require_organizer_of(&state, &user, body.event_id).await?;
    crate::http::limits::check_mint(&state, &user).await?;
    let wallet = wallet_of(&body.wallet)?;
    let recipient = [(Pubkey::new_from_array(wallet.0), body.tier)];
    let ticket = minting::mint(&state, body.event_id, &recipient)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::Internal("mint returned nothing".into()))?;
    Ok((StatusCode::CREATED, Json(ticket.into())))
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
        check_id("event_id", self.event_id)?;
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
        (status = 403, description = "`role_required` (not an organizer), `forbidden` (not this event's organizer) or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event (in the database or on chain)", body = ErrorBody),
        (status = 409, description = "`conflict`: sold out, or a tier has fewer tickets left than asked", body = ErrorBody),
        (status = 422, description = "`invalid_field` (with `field`; e.g. `recipients[3].tier`: no such tier), or `chain_refused`", body = ErrorBody),
        (status = 429, description = "`rate_limited`: the wallet spent its mint budget (`api.rate_limits.mint`)", body = ErrorBody, headers(("Retry-After" = u64, description = "Whole seconds to wait before trying again"))),
        crate::http::openapi::responses::JsonBodyRefusals,
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::ChainOrStorageDown,
    )
)]
pub async fn batch_mint(
    State(state): State<AppState>,
    user: AuthUser,
    ValidJson(body): ValidJson<BatchMintBody>,
) -> Result<(StatusCode, Json<Vec<TicketView>>), ApiError> {
    require_organizer_of(&state, &user, body.event_id).await?;
    crate::http::limits::check_mint(&state, &user).await?;
    let tiers = body.recipients.iter().map(|r| r.tier);
    if let Some(i) = minting::unknown_tier(&state, body.event_id, tiers).await? {
        return Err(field_error(format!("recipients[{i}].tier"), "no such tier"));
    }
    let recipients: Vec<(Pubkey, u8)> = body
        .recipients
        .iter()
        .map(|r| {
            let wallet = wallet_of(&r.wallet)?;
            Ok((Pubkey::new_from_array(wallet.0), r.tier))
        })
        .collect::<Result<_, ApiError>>()?;
    // Seats are taken for the whole batch at once, or none (409 sold_out),
    // counting buyers who are paying right now as well as what is minted.
    let issued = minting::mint(&state, body.event_id, &recipients).await?;
    Ok((
        StatusCode::CREATED,
        Json(issued.into_iter().map(TicketView::from).collect()),
    ))
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
        (status = 403, description = "`login_disabled`", body = ErrorBody),
        (status = 503, description = "`storage_unavailable` or `chain_unavailable` (no issuer key)", body = ErrorBody),
        crate::http::openapi::responses::SessionRefusals,
    )
)]
pub async fn my_tickets(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Vec<TicketView>>, ApiError> {
    let issued = tickets::of_holder(&state, &user.wallet).await?;
    Ok(Json(issued.into_iter().map(TicketView::from).collect()))
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
        (status = 400, description = "`bad_request`: an id or the query string does not parse", body = ErrorBody),
        (status = 403, description = "`forbidden`: neither the holder nor the event's organizer; or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such ticket or event", body = ErrorBody),
        (status = 422, description = "`invalid_field`: `format` is neither `png` nor `svg`", body = ErrorBody),
        (status = 503, description = "`storage_unavailable` or `chain_unavailable` (no issuer key)", body = ErrorBody),
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::Internal,
    )
)]
pub async fn qr(
    State(state): State<AppState>,
    user: AuthUser,
    Path((event_id, ticket_id)): Path<(u64, u32)>,
    Query(query): Query<QrQuery>,
) -> Result<Response, ApiError> {
    let ticket = ticket_for_holder_or_organizer(&state, &user, event_id, ticket_id).await?;
    let code = tickets::issued(&state, ticket)?.credential.encode();
    match query.format.as_deref().unwrap_or("png") {
        "svg" => Ok((
            [(header::CONTENT_TYPE, "image/svg+xml")],
            tickets::qr_svg(&code)?,
        )
            .into_response()),
        "png" => Ok(([(header::CONTENT_TYPE, "image/png")], qr_png(&code)?).into_response()),
        other => Err(field_error("format", format!("{other:?}: use png or svg"))),
    }
}

/// Parses a wallet the way the API does everywhere.
pub fn wallet_of(text: &str) -> Result<PublicKeyBytes, ApiError> {
    parse_wallet("wallet", text)
}
