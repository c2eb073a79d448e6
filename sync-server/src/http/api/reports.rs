//! An event's reports for its organizer (its organizer's wallet, or the
//! admin token: [`EventManager`]), read-only:
//!
//! - `GET /api/events/{event}/sales`: purchases by status, refunds, revenue
//!   per tier by SOL and by card;
//! - `GET /api/events/{event}/attendance.csv`: every ticket with its
//!   holder, status and entries, for a spreadsheet;
//! - `GET /api/events/{event}/settlement`: the event account on chain and
//!   what withdrawing and closing returned.
//!
//! The work is `crate::services::{sales, settlement}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::manage::EventManager;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::state::AppState;
use crate::services::sales::{self, SalesReport};
use crate::services::settlement::{self, SettlementStatus};

/// An event's sales
///
/// `GET /api/events/{event}/sales` (the event's organizer, or the admin
/// token): its purchases counted by status and method; card refunds owed,
/// refused for good and made; and per tier the tickets that exist and the
/// revenue kept, in lamports for SOL purchases (fulfilled) and per currency
/// for card purchases (paid, being minted or fulfilled).
#[utoipa::path(
    get,
    path = "/api/events/{event}/sales",
    operation_id = "event_sales",
    tag = "events",
    params(("event" = u64, Path, description = "The event id")),
    security(("wallet_session" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "The event's sales", body = SalesReport),
        (status = 400, description = "`bad_request`: the event id does not parse", body = ErrorBody),
        (status = 403, description = "`role_required`, `forbidden` (not this event's organizer) or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event", body = ErrorBody),
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::StorageDown,
    )
)]
pub async fn sales(
    State(state): State<AppState>,
    manager: EventManager,
    Path(event_id): Path<u64>,
) -> Result<Json<SalesReport>, ApiError> {
    manager.require(&state, event_id).await?;
    Ok(Json(sales::report(&state, event_id).await?))
}

/// An event's attendance as CSV
///
/// `GET /api/events/{event}/attendance.csv` (the event's organizer, or the
/// admin token): one line per ticket in id order under the header
/// `ticket_id,tier,tier_name,holder,status,entered_at,entry_gate,entries,exits`:
/// the holder's wallet, the status (`valid`, `frozen`, `revoked`,
/// `refunded`), the first admission (RFC 3339 UTC, by the gate's clock;
/// empty if never admitted) and its gate number, and the admissions and
/// exits recorded. Fields follow RFC 4180.
#[utoipa::path(
    get,
    path = "/api/events/{event}/attendance.csv",
    operation_id = "event_attendance_csv",
    tag = "events",
    params(("event" = u64, Path, description = "The event id")),
    security(("wallet_session" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "The attendance, a download named `event-{event}-attendance.csv`", body = String, content_type = "text/csv"),
        (status = 400, description = "`bad_request`: the event id does not parse", body = ErrorBody),
        (status = 403, description = "`role_required`, `forbidden` (not this event's organizer) or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event", body = ErrorBody),
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::StorageDown,
    )
)]
pub async fn attendance_csv(
    State(state): State<AppState>,
    manager: EventManager,
    Path(event_id): Path<u64>,
) -> Result<Response, ApiError> {
    manager.require(&state, event_id).await?;
    let csv = sales::attendance_csv(&state, event_id).await?;
    Ok(csv_download(event_id, csv))
}

/// The attendance CSV as a download.
pub(crate) fn csv_download(event_id: u64, csv: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"event-{event_id}-attendance.csv\""),
            ),
        ],
        csv,
    )
        .into_response()
}

/// Where settling an event stands
///
/// `GET /api/events/{event}/settlement` (the event's organizer, or the
/// admin token): its account on chain (the chain's clock, whether it ended
/// or was cancelled, the proceeds not yet withdrawn, the ticket accounts
/// still open; `null` once the account is closed) and what was recorded of
/// the withdrawals and closings: the lamports each moved or gave back.
#[utoipa::path(
    get,
    path = "/api/events/{event}/settlement",
    operation_id = "event_settlement",
    tag = "events",
    params(("event" = u64, Path, description = "The event id")),
    security(("wallet_session" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "Where settling the event stands", body = SettlementStatus),
        (status = 400, description = "`bad_request`: the event id does not parse", body = ErrorBody),
        (status = 403, description = "`role_required`, `forbidden` (not this event's organizer) or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event", body = ErrorBody),
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::ChainOrStorageDown,
    )
)]
pub async fn settlement_status(
    State(state): State<AppState>,
    manager: EventManager,
    Path(event_id): Path<u64>,
) -> Result<Json<SettlementStatus>, ApiError> {
    manager.require(&state, event_id).await?;
    Ok(Json(settlement::status(&state, event_id).await?))
}
