//! Tickets as CSV files, through [`crate::services::ticket_files`]:
//!
//! - `POST /api/events/{event}/tickets/import` (the event's organizer; a
//!   `text/csv` body of `wallet or email, tier` rows): every row checked
//!   first, then one mint of them all; email rows get a claim link by mail.
//! - `GET /api/events/{event}/attendees.csv` (the event's organizer, or the
//!   admin token): every ticket with its holder, status and presence.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::auth::{AuthUser, Role};
use super::manage::EventManager;
use super::mints;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::state::AppState;
use crate::services::ticket_files::{self, ImportReport, RowProblem};
use crate::services::{Services, events};

/// The refusal of a file with bad rows: nothing was minted.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImportRefusal {
    /// `invalid_file`.
    pub error: String,
    /// Every problem in words, line by line.
    pub message: String,
    /// Each bad line (0: the file as a whole) and what is wrong with it.
    pub rows: Vec<RowProblem>,
}

/// Whether the request says its body is CSV (or plain text).
fn is_csv(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| {
            let media = media.trim();
            media.eq_ignore_ascii_case("text/csv") || media.eq_ignore_ascii_case("text/plain")
        })
}

/// The refusal answer of a file with bad rows.
pub fn refusal(problems: Vec<RowProblem>) -> Response {
    let message = ticket_files::FileRefused(problems.clone()).to_string();
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(ImportRefusal {
            error: "invalid_file".into(),
            message,
            rows: problems,
        }),
    )
        .into_response()
}

/// Checks a file for `event_id` and imports it, recorded as made by
/// `caller` (the organizer's wallet in base58, or `admin` for the admin
/// token).
pub async fn import_file(
    services: &Services,
    caller: &str,
    event_id: u64,
    file: &[u8],
    key: Option<&str>,
) -> Result<Result<ImportReport, Vec<RowProblem>>, ApiError> {
    let tiers = ticket_files::tier_names(services, event_id).await?;
    let rows = match ticket_files::parse(file, &tiers) {
        Ok(rows) => rows,
        Err(refused) => return Ok(Err(refused.0)),
    };
    Ok(Ok(ticket_files::import(
        services, caller, event_id, &rows, key,
    )
    .await?))
}

/// Import tickets from a CSV file
///
/// `POST /api/events/{event}/tickets/import` (the event's organizer; rate
/// limited like minting; `Idempotency-Key`): a `text/csv` body, one ticket
/// per line: `wallet or email, tier` (the tier by index or by name; an
/// optional header line `wallet or email,tier`), at most 100 lines. Every
/// line is checked before anything is minted: a file with a bad line mints
/// nothing and the answer names each bad line (422 `invalid_file`). Then
/// all the tickets are one mint request (all or nothing on chain); wallet
/// rows go to the wallet, email rows to the server's wallet, which sends
/// each by email (the claim flow of `POST /api/tickets/claim`). A retry
/// with the same key and the same file answers the same import (and
/// finishes mails that did not go out) without minting again.
#[utoipa::path(
    post,
    path = "/api/events/{event}/tickets/import",
    tag = "tickets",
    params(
        ("event" = u64, Path, description = "The event id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Any 1 to 200 visible ASCII characters; the same key with the same file answers the same import"),
    ),
    request_body(content = String, content_type = "text/csv", description = "`wallet or email,tier` lines"),
    security(("wallet_session" = [])),
    responses(
        (status = 200, description = "Imported (`state` `completed`), or recorded and still minting (`minting`: send again later to finish the mails); each row's ticket and state", body = ImportReport),
        (status = 400, description = "`bad_request`: the event id does not parse; or email rows for an event whose tickets cannot be transferred", body = ErrorBody),
        (status = 403, description = "`role_required` (not an organizer), `forbidden` (not this event's organizer) or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event", body = ErrorBody),
        (status = 409, description = "`sold_out`: fewer seats left than rows (nothing minted)", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: send the file as `text/csv`", body = ErrorBody),
        (status = 422, description = "`invalid_file`: bad lines (nothing minted); besides `error` and `message` (every problem in words) the body has `rows`: `[{\"line\", \"problem\"}]`, each bad line (0: the file as a whole) and what is wrong with it (`ImportRefusal`). Or `chain_refused`", body = ErrorBody),
        (status = 429, description = "`rate_limited`: the wallet spent its mint budget", body = ErrorBody),
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::ChainOrStorageDown,
        crate::http::openapi::responses::Internal,
    )
)]
pub async fn import(
    State(state): State<AppState>,
    user: AuthUser,
    Path(event_id): Path<u64>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    user.require_role(&[Role::Organizer])?;
    events::require_organizer(&state, &user.wallet, event_id).await?;
    if !is_csv(&headers) {
        return Ok((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Json(ErrorBody {
                error: "unsupported_media_type".into(),
                message: "send the file as text/csv".into(),
                field: None,
            }),
        )
            .into_response());
    }
    let key = mints::idempotency_key(&headers)?;
    if key
        .as_deref()
        .is_some_and(|k| k.is_empty() || k.len() > 200)
    {
        return Err(crate::http::validation::field_error(
            "Idempotency-Key",
            "1 to 200 visible ASCII characters",
        ));
    }
    crate::http::limits::check_mint(&state, &user).await?;
    let caller = user.wallet.to_base58();
    match import_file(&state, &caller, event_id, &body, key.as_deref()).await? {
        Ok(report) => Ok(Json(report).into_response()),
        Err(problems) => Ok(refusal(problems)),
    }
}

/// An event's tickets and attendees as CSV
///
/// `GET /api/events/{event}/attendees.csv` (the event's organizer, or the
/// admin token): a header line, then one line per ticket:
/// `ticket_id,tier,tier_name,holder,status,inside,admissions` (status
/// `valid`, `frozen`, `revoked` or `refunded`; inside `inside`, `left` or
/// `not yet`).
#[utoipa::path(
    get,
    path = "/api/events/{event}/attendees.csv",
    tag = "events",
    params(("event" = u64, Path, description = "The event id")),
    security(("wallet_session" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "The tickets", body = String, content_type = "text/csv"),
        (status = 400, description = "`bad_request`: the event id does not parse", body = ErrorBody),
        (status = 403, description = "`role_required`, `forbidden` (not this event's organizer) or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event", body = ErrorBody),
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::StorageDown,
    )
)]
pub async fn export(
    State(state): State<AppState>,
    manager: EventManager,
    Path(event_id): Path<u64>,
) -> Result<Response, ApiError> {
    manager.require(&state, event_id).await?;
    csv_answer(&state, event_id).await
}

/// The CSV download of an event's attendees.
pub async fn csv_answer(services: &Services, event_id: u64) -> Result<Response, ApiError> {
    let csv = ticket_files::export(services, event_id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"event-{event_id}-attendees.csv\""),
            ),
        ],
        csv,
    )
        .into_response())
}
