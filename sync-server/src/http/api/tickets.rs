//! Tickets for organizers and holders (`/api/tickets`, `/m`), through
//! [`crate::services::minting`] and [`crate::services::tickets`]:
//!
//! - `POST /api/tickets/mint` and `/api/tickets/batch-mint` (the event's
//!   organizer; rate limited; `Idempotency-Key`): NFTs to wallets, paid off
//!   chain, recorded before they go to chain, all or nothing; answers their
//!   QR code text (the shared answers and `GET /api/mints/{request}`:
//!   [`super::mints`]).
//! - `GET /api/tickets/my` (logged in): the wallet's tickets with their codes.
//! - `GET /api/tickets/{event}/{ticket}` and `.../qr?format=png|svg` (holder
//!   or the event's organizer): the signed credential, as text or image.
//! - `GET /m/{event}/{ticket}` and `.../image.svg` (public): the NFT's
//!   metadata and picture.
//! - Transfers, to a wallet or to an email address: [`super::transfers`].

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shared::PublicKeyBytes;
use shared::wire::CachedTicket;
use solana_sdk::pubkey::Pubkey;

use super::auth::{AuthUser, Role};
use super::mints;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::state::AppState;
use crate::http::validation::{
    ValidJson, Validate, check_count, check_id, field_error, parse_wallet,
};
use crate::services::minting::{self, MintKind, MintOrder, MintOutcome, MintRequestView};
use crate::services::organizer::IssuedTicket;
use crate::services::{Services, events, tickets};

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
    /// At most 2^63-1: the server's event ids are signed 64-bit.
    #[schema(maximum = 9_223_372_036_854_775_807_u64)]
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

/// The idempotency key's header, as the mint endpoints document it.
const IDEMPOTENCY_DOC: &str = "Any 1 to 255 visible ASCII characters the caller picks per request (a UUID is fine). A retry with the same key and the same body answers the first request's outcome and never mints again: 201 with the same tickets, 202 while it is still minting, or its refusal. The same key with another body is 422 naming `Idempotency-Key`. Keys are kept per wallet.";

/// Mint one ticket to a wallet
///
/// `POST /api/tickets/mint` (the event's organizer): one NFT to a wallet,
/// paid off chain, published to the gates; answers its QR code text. The
/// request is recorded (with its seat) before anything goes to chain, so a
/// crash or a chain outage never loses it: it is finished in the background
/// and its state read at `GET /api/mints/{request}`.
#[utoipa::path(
    post,
    path = "/api/tickets/mint",
    tag = "tickets",
    request_body = MintBody,
    params(("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY_DOC)),
    security(("wallet_session" = [])),
    responses(
        (status = 201, description = "Minted", body = TicketView, headers(("Mint-Request-Id" = String, description = "The mint request; read it at `GET /api/mints/{request}`"))),
        (status = 202, description = "Recorded and still minting (the chain did not answer in time, or the first request with this `Idempotency-Key` still runs); it is finished in the background: read `Location`", body = MintRequestView, headers(("Mint-Request-Id" = String, description = "The mint request"), ("Location" = String, description = "`/api/mints/{request}`"))),
        (status = 403, description = "`role_required` (not an organizer), `forbidden` (not this event's organizer) or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event (in the database or on chain)", body = ErrorBody),
        (status = 409, description = "`sold_out`: no seat left in the tier or the event (nothing recorded)", body = ErrorBody),
        (status = 422, description = "`invalid_field` (with `field`: `tier` when the event has no such tier, `Idempotency-Key` when the key was used for another body), or `chain_refused` (with `Mint-Request-Id`; its seat went back on sale)", body = ErrorBody),
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
    headers: HeaderMap,
    ValidJson(body): ValidJson<MintBody>,
) -> Result<Response, ApiError> {
    require_organizer_of(&state, &user, body.event_id).await?;
    let key = mints::idempotency_key(&headers)?;
    let wallet = wallet_of(&body.wallet)?;
    let recipients = [(Pubkey::new_from_array(wallet.0), body.tier)];
    let caller = user.wallet.to_base58();
    let order = MintOrder {
        event_id: body.event_id,
        caller: &caller,
        kind: MintKind::Single,
        idempotency_key: key.as_deref(),
        recipients: &recipients,
    };
    let outcome = mint_once(&state, &user, &order).await?;
    mints::answer(&state, outcome, "/api/mints", |tickets| {
        match tickets.into_iter().next() {
            Some(ticket) => Json(TicketView::from(ticket)).into_response(),
            None => ApiError::Internal("mint returned nothing".into()).into_response(),
        }
    })
    .await
}

/// Answers a retry from its first request without spending the mint
/// budget; mints anew otherwise.
async fn mint_once(
    state: &AppState,
    user: &AuthUser,
    order: &MintOrder<'_>,
) -> Result<MintOutcome, ApiError> {
    if let Some(outcome) = minting::replay(state, order).await? {
        return Ok(outcome);
    }
    crate::http::limits::check_mint(state, user).await?;
    Ok(minting::mint(state, order).await?)
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
    /// At most 2^63-1: the server's event ids are signed 64-bit.
    #[schema(maximum = 9_223_372_036_854_775_807_u64)]
    pub event_id: u64,
    /// 1 to 100 recipients.
    // 100 is `MAX_BATCH_MINT`: utoipa takes literals only.
    #[schema(min_items = 1, max_items = 100)]
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

/// Mint up to 100 tickets
///
/// `POST /api/tickets/batch-mint`: up to 100 tickets.
///
/// The batch's seats are taken at once with the request's record, before
/// anything goes to chain, so a batch that does not fit mints nothing (409).
/// The mint itself takes several transactions, each recorded before it is
/// sent: if the server dies or the chain stops answering part way, the
/// batch is finished in the background (202 until then; read
/// `GET /api/mints/{request}`, or retry with the same `Idempotency-Key`).
/// If the chain refuses part way, the tickets this batch already minted are
/// revoked on chain (void at every gate), the seats of the rest go back on
/// sale and the request fails (422 `chain_refused`), so a batch never
/// half-succeeds.
#[utoipa::path(
    post,
    path = "/api/tickets/batch-mint",
    tag = "tickets",
    request_body = BatchMintBody,
    params(("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY_DOC)),
    security(("wallet_session" = [])),
    responses(
        (status = 201, description = "All minted", body = Vec<TicketView>, headers(("Mint-Request-Id" = String, description = "The mint request; read it at `GET /api/mints/{request}`"))),
        (status = 202, description = "Recorded and still minting; finished in the background: read `Location`", body = MintRequestView, headers(("Mint-Request-Id" = String, description = "The mint request"), ("Location" = String, description = "`/api/mints/{request}`"))),
        (status = 403, description = "`role_required` (not an organizer), `forbidden` (not this event's organizer) or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event (in the database or on chain)", body = ErrorBody),
        (status = 409, description = "`sold_out`: a tier or the event has fewer seats left than asked (nothing recorded)", body = ErrorBody),
        (status = 422, description = "`invalid_field` (with `field`; e.g. `recipients[3].tier`: no such tier, or `Idempotency-Key` used for another body), or `chain_refused` (with `Mint-Request-Id`)", body = ErrorBody),
        (status = 429, description = "`rate_limited`: the wallet spent its mint budget (`api.rate_limits.mint`)", body = ErrorBody, headers(("Retry-After" = u64, description = "Whole seconds to wait before trying again"))),
        crate::http::openapi::responses::JsonBodyRefusals,
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::ChainOrStorageDown,
        crate::http::openapi::responses::Internal,
    )
)]
pub async fn batch_mint(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    ValidJson(body): ValidJson<BatchMintBody>,
) -> Result<Response, ApiError> {
    require_organizer_of(&state, &user, body.event_id).await?;
    let key = mints::idempotency_key(&headers)?;
    let recipients: Vec<(Pubkey, u8)> = body
        .recipients
        .iter()
        .map(|r| {
            let wallet = wallet_of(&r.wallet)?;
            Ok((Pubkey::new_from_array(wallet.0), r.tier))
        })
        .collect::<Result<_, ApiError>>()?;
    let caller = user.wallet.to_base58();
    let order = MintOrder {
        event_id: body.event_id,
        caller: &caller,
        kind: MintKind::Batch,
        idempotency_key: key.as_deref(),
        recipients: &recipients,
    };
    let outcome = mint_once(&state, &user, &order).await?;
    mints::answer(&state, outcome, "/api/mints", |tickets| {
        Json(
            tickets
                .into_iter()
                .map(TicketView::from)
                .collect::<Vec<_>>(),
        )
        .into_response()
    })
    .await
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
