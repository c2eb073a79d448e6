//! An organizer's actions on chain for one of its events (its organizer's
//! wallet, or the admin token: [`EventManager`]):
//!
//! - `POST /api/events/{event}/tickets/{ticket}/freeze` and `/unfreeze`:
//!   the security hold, published to the gates;
//! - `POST /api/events/{event}/cancellation`, `GET` the same: cancel the
//!   event (tickets revoked, card purchases refunded, buyers mailed, in the
//!   background) and read how far it is;
//! - `POST /api/events/{event}/withdraw`: the SOL proceeds to the treasury;
//! - `POST /api/events/{event}/tickets/close` and `POST
//!   /api/events/{event}/close`: the rent back after the event.
//!
//! Validators are removed on chain by `DELETE
//! /api/events/{event}/validators/{wallet}` ([`super::manage`]). The work is
//! `crate::services::{ticket_holds, cancellation, settlement}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use shared::wire::CachedTicket;

use super::manage::EventManager;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::state::AppState;
use crate::services::cancellation::{self, CancellationProgress};
use crate::services::settlement::{self, EventClosed, TicketsClosed, Withdrawal};
use crate::services::ticket_holds::{self, Hold};

/// Freeze a ticket
///
/// `POST /api/events/{event}/tickets/{ticket}/freeze` (the event's
/// organizer, or the admin token): a security hold on chain
/// (`freeze_ticket`); gates refuse the ticket from their next delta and it
/// cannot be transferred. Freezing a frozen ticket changes nothing.
#[utoipa::path(
    post,
    path = "/api/events/{event}/tickets/{ticket}/freeze",
    operation_id = "freeze_ticket",
    tag = "events",
    params(crate::http::openapi::responses::TicketPath),
    security(("wallet_session" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "Frozen; the ticket as the gates now see it", body = CachedTicket),
        (status = 400, description = "`bad_request`: an id does not parse", body = ErrorBody),
        (status = 403, description = "`role_required`, `forbidden` (not this event's organizer) or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event, or no such ticket on chain", body = ErrorBody),
        (status = 409, description = "`conflict`: the ticket is revoked or refunded", body = ErrorBody),
        (status = 422, description = "`chain_refused`: the program refused the operation", body = ErrorBody),
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::ChainOrStorageDown,
    )
)]
pub async fn freeze(
    State(state): State<AppState>,
    manager: EventManager,
    Path((event_id, ticket_id)): Path<(u64, u32)>,
) -> Result<Json<CachedTicket>, ApiError> {
    manager.require(&state, event_id).await?;
    Ok(Json(
        ticket_holds::set_hold(&state, event_id, ticket_id, Hold::Freeze).await?,
    ))
}

/// Release a frozen ticket
///
/// `POST /api/events/{event}/tickets/{ticket}/unfreeze` (the event's
/// organizer, or the admin token): the hold lifted on chain
/// (`unfreeze_ticket`); gates admit the ticket again from their next delta.
/// Releasing an active ticket changes nothing.
#[utoipa::path(
    post,
    path = "/api/events/{event}/tickets/{ticket}/unfreeze",
    operation_id = "unfreeze_ticket",
    tag = "events",
    params(crate::http::openapi::responses::TicketPath),
    security(("wallet_session" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "Released; the ticket as the gates now see it", body = CachedTicket),
        (status = 400, description = "`bad_request`: an id does not parse", body = ErrorBody),
        (status = 403, description = "`role_required`, `forbidden` (not this event's organizer) or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event, or no such ticket on chain", body = ErrorBody),
        (status = 409, description = "`conflict`: the ticket is revoked or refunded", body = ErrorBody),
        (status = 422, description = "`chain_refused`: the program refused the operation", body = ErrorBody),
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::ChainOrStorageDown,
    )
)]
pub async fn unfreeze(
    State(state): State<AppState>,
    manager: EventManager,
    Path((event_id, ticket_id)): Path<(u64, u32)>,
) -> Result<Json<CachedTicket>, ApiError> {
    manager.require(&state, event_id).await?;
    Ok(Json(
        ticket_holds::set_hold(&state, event_id, ticket_id, Hold::Release).await?,
    ))
}

/// Cancel an event
///
/// `POST /api/events/{event}/cancellation` (the event's organizer, or the
/// admin token): the event is cancelled on chain (`cancel_event`) and for
/// the gates before the answer; then, in the background and resumed after a
/// restart, every ticket is revoked on chain in batches (a price paid in SOL
/// goes back to the holder), every card purchase is refunded through the
/// payment provider once, and buyers who gave an address are mailed the
/// refund notice. Asking again answers the progress and changes nothing.
#[utoipa::path(
    post,
    path = "/api/events/{event}/cancellation",
    operation_id = "cancel_event",
    tag = "events",
    params(("event" = u64, Path, description = "The event id")),
    security(("wallet_session" = []), ("admin_token" = [])),
    responses(
        (status = 202, description = "Cancelled on chain; the rest under way: read `GET` of the same path", body = CancellationProgress),
        (status = 400, description = "`bad_request`: the event id does not parse", body = ErrorBody),
        (status = 403, description = "`role_required`, `forbidden` (not this event's organizer) or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event", body = ErrorBody),
        (status = 409, description = "`conflict`: the event account is closed on chain", body = ErrorBody),
        (status = 422, description = "`chain_refused`: the program refused the operation", body = ErrorBody),
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::ChainOrStorageDown,
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    manager: EventManager,
    Path(event_id): Path<u64>,
) -> Result<(StatusCode, Json<CancellationProgress>), ApiError> {
    manager.require(&state, event_id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(cancellation::cancel(&state, event_id).await?),
    ))
}

/// How far an event's cancellation is
///
/// `GET /api/events/{event}/cancellation` (the event's organizer, or the
/// admin token): done and total per step (the event, tickets revoked, card
/// refunds, refund notices), the phase, and the last error if an attempt
/// stopped short (it is tried again).
#[utoipa::path(
    get,
    path = "/api/events/{event}/cancellation",
    operation_id = "event_cancellation",
    tag = "events",
    params(("event" = u64, Path, description = "The event id")),
    security(("wallet_session" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "The cancellation's progress", body = CancellationProgress),
        (status = 400, description = "`bad_request`: the event id does not parse", body = ErrorBody),
        (status = 403, description = "`role_required`, `forbidden` (not this event's organizer) or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event, or it was not cancelled", body = ErrorBody),
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::StorageDown,
    )
)]
pub async fn cancellation_progress(
    State(state): State<AppState>,
    manager: EventManager,
    Path(event_id): Path<u64>,
) -> Result<Json<CancellationProgress>, ApiError> {
    manager.require(&state, event_id).await?;
    Ok(Json(cancellation::progress(&state, event_id).await?))
}

/// Withdraw an event's proceeds
///
/// `POST /api/events/{event}/withdraw` (the event's organizer, or the admin
/// token): once the event has ended (on the chain's clock), the SOL paid
/// for its tickets on chain goes to its treasury (`withdraw_proceeds`).
/// With nothing left to withdraw, nothing is sent and `lamports` is 0.
#[utoipa::path(
    post,
    path = "/api/events/{event}/withdraw",
    operation_id = "withdraw_proceeds",
    tag = "events",
    params(("event" = u64, Path, description = "The event id")),
    security(("wallet_session" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "Withdrawn", body = Withdrawal),
        (status = 400, description = "`bad_request`: the event id does not parse", body = ErrorBody),
        (status = 403, description = "`role_required`, `forbidden` (not this event's organizer) or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event", body = ErrorBody),
        (status = 409, description = "`conflict`: the event has not ended, is cancelled (its proceeds refund its tickets) or is closed", body = ErrorBody),
        (status = 422, description = "`chain_refused`: the program refused the operation", body = ErrorBody),
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::ChainOrStorageDown,
    )
)]
pub async fn withdraw(
    State(state): State<AppState>,
    manager: EventManager,
    Path(event_id): Path<u64>,
) -> Result<Json<Withdrawal>, ApiError> {
    manager.require(&state, event_id).await?;
    Ok(Json(settlement::withdraw(&state, event_id).await?))
}

/// Close an event's ticket accounts
///
/// `POST /api/events/{event}/tickets/close` (the event's organizer, or the
/// admin token): once the event has ended (on the chain's clock) or was
/// cancelled, and every scan of it is on chain, each ticket account the
/// program lets close (`close_ticket`: not while an email transfer of it is
/// open) is closed in batches and its rent returns to the organizer; the
/// NFTs stay with their holders. Closing again closes what is left.
#[utoipa::path(
    post,
    path = "/api/events/{event}/tickets/close",
    operation_id = "close_tickets",
    tag = "events",
    params(("event" = u64, Path, description = "The event id")),
    security(("wallet_session" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "Closed what could be", body = TicketsClosed),
        (status = 400, description = "`bad_request`: the event id does not parse", body = ErrorBody),
        (status = 403, description = "`role_required`, `forbidden` (not this event's organizer) or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event", body = ErrorBody),
        (status = 409, description = "`conflict`: the event has neither ended nor been cancelled, some of its scans are not on chain yet, or it is closed", body = ErrorBody),
        (status = 422, description = "`chain_refused`: the program refused the operation", body = ErrorBody),
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::ChainOrStorageDown,
    )
)]
pub async fn close_tickets(
    State(state): State<AppState>,
    manager: EventManager,
    Path(event_id): Path<u64>,
) -> Result<Json<TicketsClosed>, ApiError> {
    manager.require(&state, event_id).await?;
    Ok(Json(settlement::close_tickets(&state, event_id).await?))
}

/// Close an event's account
///
/// `POST /api/events/{event}/close` (the event's organizer, or the admin
/// token): once the event has ended or was cancelled and its ticket
/// accounts are closed, the event account is closed (`close_event`): its
/// rent returns to the organizer and any proceeds left go to the treasury.
#[utoipa::path(
    post,
    path = "/api/events/{event}/close",
    operation_id = "close_event",
    tag = "events",
    params(("event" = u64, Path, description = "The event id")),
    security(("wallet_session" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "Closed", body = EventClosed),
        (status = 400, description = "`bad_request`: the event id does not parse", body = ErrorBody),
        (status = 403, description = "`role_required`, `forbidden` (not this event's organizer) or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event", body = ErrorBody),
        (status = 409, description = "`conflict`: the event has neither ended nor been cancelled, ticket accounts are still open, or it is closed already", body = ErrorBody),
        (status = 422, description = "`chain_refused`: the program refused the operation", body = ErrorBody),
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::ChainOrStorageDown,
    )
)]
pub async fn close_event(
    State(state): State<AppState>,
    manager: EventManager,
    Path(event_id): Path<u64>,
) -> Result<Json<EventClosed>, ApiError> {
    manager.require(&state, event_id).await?;
    Ok(Json(settlement::close_event(&state, event_id).await?))
}
