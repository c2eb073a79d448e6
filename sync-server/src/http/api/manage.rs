//! An event's management by its organizer, or by the holder of the admin
//! token ([`EventManager`]):
//!
//! - `PUT /api/events/{event}/rules`: the check-in rules, which reach the
//!   running gates through their cache feed;
//! - `GET /api/events/{event}/validators`, `PUT` and `DELETE
//!   /api/events/{event}/validators/{wallet}`: the wallets that may validate
//!   (scan) the event's tickets besides its organizer;
//! - `GET /api/events/{event}/incidents`: conflicts (double admissions) and
//!   incidents (admissions the server would have refused).
//!
//! The work is `crate::services::{rules, staff, incidents}`.

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::auth::{AuthUser, Role};
use crate::http::admin::Admin;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::state::AppState;
use crate::http::validation::{ValidJson, Validate, parse_wallet};
use crate::services::incidents::{self, IncidentReport};
use crate::services::rules::{self, EventRules, RulesChange};
use crate::services::staff::{self, Manager};
use crate::store::ValidatorAssignment;

/// A request from the admin token's holder or from a wallet with the
/// organizer role; which event it may manage is checked per event.
pub enum EventManager {
    Admin,
    Organizer(AuthUser),
}

impl FromRequestParts<AppState> for EventManager {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if Admin::from_request_parts(parts, state).await.is_ok() {
            return Ok(EventManager::Admin);
        }
        let user = AuthUser::from_request_parts(parts, state).await?;
        user.require_role(&[Role::Organizer])?;
        Ok(EventManager::Organizer(user))
    }
}

impl EventManager {
    /// Refuses unless this caller manages `event_id`.
    pub(super) async fn require(&self, state: &AppState, event_id: u64) -> Result<(), ApiError> {
        let manager = match self {
            EventManager::Admin => Manager::Admin,
            EventManager::Organizer(user) => Manager::Organizer(&user.wallet),
        };
        Ok(staff::require_manager(state, manager, event_id).await?)
    }
}

impl Validate for RulesChange {
    /// The ranges depend on the event (its tiers): the service checks them.
    fn validate(&self) -> Result<(), ApiError> {
        Ok(())
    }
}

/// Set an event's check-in rules
///
/// `PUT /api/events/{event}/rules` (the event's organizer, or the admin
/// token): the rules given replace the current ones, the others stay. The
/// gates apply them from their next delta.
#[utoipa::path(
    put,
    path = "/api/events/{event}/rules",
    tag = "events",
    params(("event" = u64, Path, description = "The event id")),
    request_body = RulesChange,
    security(("wallet_session" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "The event's rules now, as its gates receive them", body = EventRules),
        (status = 403, description = "`role_required`, `forbidden` (not this event's organizer) or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event", body = ErrorBody),
        (status = 422, description = "`invalid_field` (with `field`): a rule out of range, a tier the event does not have, or an unknown field", body = ErrorBody),
        crate::http::openapi::responses::JsonBodyRefusals,
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::StorageDown,
    )
)]
pub async fn put_rules(
    State(state): State<AppState>,
    manager: EventManager,
    Path(event_id): Path<u64>,
    ValidJson(change): ValidJson<RulesChange>,
) -> Result<Json<EventRules>, ApiError> {
    manager.require(&state, event_id).await?;
    Ok(Json(rules::set(&state, event_id, &change).await?))
}

/// The wallets that may validate an event
///
/// `GET /api/events/{event}/validators` (the event's organizer, or the
/// admin token).
#[utoipa::path(
    get,
    path = "/api/events/{event}/validators",
    tag = "events",
    params(("event" = u64, Path, description = "The event id")),
    security(("wallet_session" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "The assigned wallets, oldest assignment first", body = Vec<ValidatorAssignment>),
        (status = 400, description = "`bad_request`: the event id does not parse or is too large", body = ErrorBody),
        (status = 403, description = "`role_required`, `forbidden` (not this event's organizer) or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event", body = ErrorBody),
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::StorageDown,
    )
)]
pub async fn validators(
    State(state): State<AppState>,
    manager: EventManager,
    Path(event_id): Path<u64>,
) -> Result<Json<Vec<ValidatorAssignment>>, ApiError> {
    manager.require(&state, event_id).await?;
    Ok(Json(staff::validators(&state, event_id).await?))
}

/// Let a wallet validate an event
///
/// `PUT /api/events/{event}/validators/{wallet}` (the event's organizer, or
/// the admin token): the wallet may then validate this event's tickets
/// (`/api/validate`, `/api/validate/offline`, `/api/validate/sync`), and no
/// other event's unless assigned there too. Assigning again changes
/// nothing.
#[utoipa::path(
    put,
    path = "/api/events/{event}/validators/{wallet}",
    tag = "events",
    params(
        ("event" = u64, Path, description = "The event id"),
        ("wallet" = String, Path, description = "The validator's wallet (base58)"),
    ),
    security(("wallet_session" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "Assigned", body = ValidatorAssignment),
        (status = 400, description = "`bad_request`: the event id does not parse or is too large", body = ErrorBody),
        (status = 403, description = "`role_required`, `forbidden` (not this event's organizer) or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event", body = ErrorBody),
        (status = 422, description = "`invalid_field`: `wallet` is not a base58 public key", body = ErrorBody),
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::StorageDown,
    )
)]
pub async fn assign_validator(
    State(state): State<AppState>,
    manager: EventManager,
    Path((event_id, wallet)): Path<(u64, String)>,
) -> Result<Json<ValidatorAssignment>, ApiError> {
    let wallet = parse_wallet("wallet", &wallet)?;
    manager.require(&state, event_id).await?;
    Ok(Json(staff::assign(&state, event_id, &wallet).await?))
}

/// Stop a wallet validating an event
///
/// `DELETE /api/events/{event}/validators/{wallet}` (the event's organizer,
/// or the admin token): its next scan for this event is refused, and when
/// the event's validator list on chain has the key, it is taken off there
/// too (`remove_validator`): it can record entries no more.
#[utoipa::path(
    delete,
    path = "/api/events/{event}/validators/{wallet}",
    tag = "events",
    params(
        ("event" = u64, Path, description = "The event id"),
        ("wallet" = String, Path, description = "The validator's wallet (base58)"),
    ),
    security(("wallet_session" = []), ("admin_token" = [])),
    responses(
        (status = 204, description = "No longer assigned"),
        (status = 400, description = "`bad_request`: the event id does not parse or is too large", body = ErrorBody),
        (status = 403, description = "`role_required`, `forbidden` (not this event's organizer) or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event, or the wallet is neither assigned nor listed on chain", body = ErrorBody),
        (status = 409, description = "`conflict`: the key is the one the server records the event's entries with, or the event is cancelled (its list on chain can no longer change)", body = ErrorBody),
        (status = 422, description = "`invalid_field`: `wallet` is not a base58 public key; `chain_refused`: the program refused the removal", body = ErrorBody),
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::ChainOrStorageDown,
    )
)]
pub async fn unassign_validator(
    State(state): State<AppState>,
    manager: EventManager,
    Path((event_id, wallet)): Path<(u64, String)>,
) -> Result<StatusCode, ApiError> {
    let wallet = parse_wallet("wallet", &wallet)?;
    manager.require(&state, event_id).await?;
    staff::unassign(&state, event_id, &wallet).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Conflicts and incidents of an event
///
/// `GET /api/events/{event}/incidents` (the event's organizer, or the admin
/// token): admissions of a ticket whose holder was already inside
/// (`conflicts`), and admissions by offline gates or handhelds that the
/// server, with its fresher data, would have refused (`incidents`: revoked,
/// frozen, refunded, stale generation, unknown ticket, outside the event's
/// time, tier not allowed at that gate), each with its reason, ticket, gate,
/// scan id and time.
#[utoipa::path(
    get,
    path = "/api/events/{event}/incidents",
    tag = "events",
    params(("event" = u64, Path, description = "The event id")),
    security(("wallet_session" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "The conflicts and incidents, oldest first", body = IncidentReport),
        (status = 400, description = "`bad_request`: the event id does not parse or is too large", body = ErrorBody),
        (status = 403, description = "`role_required`, `forbidden` (not this event's organizer) or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event", body = ErrorBody),
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::StorageDown,
    )
)]
pub async fn incident_report(
    State(state): State<AppState>,
    manager: EventManager,
    Path(event_id): Path<u64>,
) -> Result<Json<IncidentReport>, ApiError> {
    manager.require(&state, event_id).await?;
    Ok(Json(incidents::report(&state, event_id).await?))
}
