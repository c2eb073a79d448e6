//! The NFT side of a ticket, public (`/m/{event}/{ticket}`): the metadata
//! JSON wallets and marketplaces read and the card picture they show,
//! through [`crate::services::tickets`]. Neither carries the QR credential.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::http::error::{ApiError, ErrorBody};
use crate::http::state::AppState;
use crate::services::tickets;

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
    params(crate::http::openapi::responses::TicketPath),
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
        (status = 400, description = "`bad_request`: an id does not parse", body = ErrorBody),
        (status = 404, description = "`not_found`: no such ticket or event", body = ErrorBody),
        crate::http::openapi::responses::StorageDown,
        crate::http::openapi::responses::Internal,
    )
)]
pub async fn metadata(
    State(state): State<AppState>,
    Path((event_id, ticket_id)): Path<(u64, u32)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(
        tickets::nft_metadata(&state, event_id, ticket_id).await?,
    ))
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
    params(crate::http::openapi::responses::TicketPath),
    responses(
        (status = 200, description = "The ticket card", body = String, content_type = "image/svg+xml"),
        (status = 400, description = "`bad_request`: an id does not parse", body = ErrorBody),
        (status = 404, description = "`not_found`: no such ticket or event", body = ErrorBody),
        crate::http::openapi::responses::StorageDown,
    )
)]
pub async fn card_image(
    State(state): State<AppState>,
    Path((event_id, ticket_id)): Path<(u64, u32)>,
) -> Result<Response, ApiError> {
    let svg = tickets::card_svg(&state, event_id, ticket_id).await?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}
