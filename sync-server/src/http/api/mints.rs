//! Mint requests as HTTP: the `Idempotency-Key` every mint endpoint takes,
//! the answers they share (201 with the tickets, 202 while the request is
//! still minting, the `Mint-Request-Id` header on both and on a refusal of
//! the chain), and where a request's state is read:
//! `GET /api/mints/{request}` (the organizer wallet that asked) and
//! `GET /api/admin/mints/{request}` (admin token). The work itself is
//! [`crate::services::minting`].

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::auth::AuthUser;
use crate::http::admin::Admin;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::state::AppState;
use crate::http::validation::field_error;
use crate::services::minting::{self, IDEMPOTENCY_FIELD, MintOutcome, MintRequestView};
use crate::services::organizer::IssuedTicket;

/// The request header that makes a mint safe to retry.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The answer header naming the mint request.
pub const MINT_REQUEST_ID: HeaderName = HeaderName::from_static("mint-request-id");

/// The `Idempotency-Key` of a request, if it sent one.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get(&IDEMPOTENCY_KEY) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(|v| Some(v.to_owned()))
            .map_err(|_| field_error(IDEMPOTENCY_FIELD, "visible ASCII characters only")),
    }
}

/// The HTTP answer of a mint's outcome: `completed` makes the 201 body of
/// the endpoint's tickets; a request still minting is 202 with its state
/// and where to read it (`status_path`/id); a refused one is 422
/// `chain_refused`. Each carries `Mint-Request-Id`.
pub async fn answer(
    state: &AppState,
    outcome: MintOutcome,
    status_path: &str,
    completed: impl FnOnce(Vec<IssuedTicket>) -> Response,
) -> Result<Response, ApiError> {
    let id = outcome.request().request_id.clone();
    let mut response = match outcome {
        MintOutcome::Completed(_, tickets) => {
            let mut response = completed(tickets);
            *response.status_mut() = StatusCode::CREATED;
            response
        }
        MintOutcome::InProgress(request) => {
            let view = minting::view(state, &request).await?;
            let location = HeaderValue::from_str(&format!("{status_path}/{id}"))
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            (
                StatusCode::ACCEPTED,
                [(header::LOCATION, location)],
                Json(view),
            )
                .into_response()
        }
        MintOutcome::Failed(request) => ApiError::ChainRefused(
            request
                .error
                .unwrap_or_else(|| "the chain refused the mint".into()),
        )
        .into_response(),
    };
    let value = HeaderValue::from_str(&id).map_err(|e| ApiError::Internal(e.to_string()))?;
    response.headers_mut().insert(MINT_REQUEST_ID, value);
    Ok(response)
}

/// A mint request of the calling organizer
///
/// `GET /api/mints/{request}`: where a mint request stands (the id is in
/// the `Mint-Request-Id` header of every mint answer): `minting`,
/// `voiding`, `completed` or `failed`, and each ticket's state, id and QR
/// code text once it landed. Only the wallet that asked sees it.
#[utoipa::path(
    get,
    path = "/api/mints/{request}",
    tag = "tickets",
    params(("request" = String, Path, description = "The mint request id (`Mint-Request-Id`)")),
    security(("wallet_session" = [])),
    responses(
        (status = 200, description = "The request and its tickets", body = MintRequestView),
        (status = 403, description = "`login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such request of this wallet", body = ErrorBody),
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::ChainOrStorageDown,
        crate::http::openapi::responses::Internal,
    )
)]
pub async fn get_mint(
    State(state): State<AppState>,
    user: AuthUser,
    Path(request_id): Path<String>,
) -> Result<Json<MintRequestView>, ApiError> {
    let caller = user.wallet.to_base58();
    Ok(Json(
        minting::request_of(&state, &caller, &request_id).await?,
    ))
}

/// Any mint request
///
/// `GET /api/admin/mints/{request}`: any mint request, made through the
/// admin API or by an organizer's wallet.
#[utoipa::path(
    get,
    path = "/api/admin/mints/{request}",
    operation_id = "admin_get_mint",
    tag = "admin",
    params(("request" = String, Path, description = "The mint request id (`Mint-Request-Id`)")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The request and its tickets", body = MintRequestView),
        (status = 404, description = "`not_found`: no such request", body = ErrorBody),
        crate::http::openapi::responses::AdminRefusals,
        crate::http::openapi::responses::ChainOrStorageDown,
        crate::http::openapi::responses::Internal,
    )
)]
pub async fn admin_get_mint(
    _: Admin,
    State(state): State<AppState>,
    Path(request_id): Path<String>,
) -> Result<Json<MintRequestView>, ApiError> {
    Ok(Json(minting::request_for_admin(&state, &request_id).await?))
}
